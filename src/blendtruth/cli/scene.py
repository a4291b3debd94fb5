"""CLI pieces for light, rigs, camera models and multi-object scenes: the extra view
options (appended to cli.py's shared list), their parsers, and the ``blendtruth scene``
command (registered on the CLI group by cli.py)."""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from pathlib import Path

import rich_click as click

from blendtruth.errors import BlendtruthError
from blendtruth.geometry.projection import CAMERA_MODELS, RAY_DISTANCE_MODELS
from blendtruth.models import check_model_file
from blendtruth.scene import SceneSpec
from blendtruth.scenes.placement import LayoutOptions
from blendtruth.scenes.rigs import RIGS
from blendtruth.writers.atomic import prepare_out_dir

_PATH = click.Path(path_type=Path)

EXTRA_VIEW_OPTIONS = [
    click.option(
        "--rig",
        type=click.Choice(RIGS),
        default=None,
        help="A published dataset's camera set (replaces --sampler; `blendtruth docs scenes`).",
    ),
    click.option(
        "--camera",
        "camera_model",
        type=click.Choice(CAMERA_MODELS),
        default="pinhole",
        show_default=True,
        help="Camera model (`blendtruth docs conventions`, Camera models).",
    ),
    click.option(
        "--ortho-scale",
        type=float,
        default=None,
        help="ortho: view extent across the larger image side, scene units (default: "
        "the bounding sphere fills --fill).",
    ),
    click.option(
        "--fisheye-fov",
        type=float,
        default=180.0,
        show_default=True,
        help="fisheye: full field of view, degrees.",
    ),
    click.option("--hdri", type=_PATH, default=None, help="Light by this .exr/.hdr panorama."),
    click.option(
        "--hdri-strength", type=float, default=1.0, show_default=True, help="HDRI radiance scale."
    ),
    click.option(
        "--hdri-rotation",
        default="0",
        show_default=True,
        help="Degrees about world +Z, or random (one per model) or random-per-view.",
    ),
    click.option(
        "--background",
        default="world",
        show_default=True,
        help="RGB background: world, hdri, transparent (RGBA PNG), '#RRGGBB' or 'r,g,b'.",
    ),
]


def lighting_fields(o: dict) -> dict:
    """The SceneSpec fields of the lighting options."""
    return {
        "light": o["light"],
        "hdri": o["hdri"],
        "hdri_strength": o["hdri_strength"],
        "hdri_rotation": o["hdri_rotation"],
        "background": o["background"],
    }


def id_fields(o: dict) -> dict:
    """The SceneSpec fields of --semantic and --semantic-map."""
    from blendtruth.instances import read_semantic_map

    ids = {"semantic": o["semantic"]}
    if o["semantic_map"] is not None:
        ids["semantic_map"] = tuple(read_semantic_map(o["semantic_map"]).items())
    return ids


def export_formats(o: dict, tutorial: bool = False) -> list[str]:
    """The formats of --export, checked before any work (render, dataset and scene)."""
    from blendtruth.exports import check_render_options, parse_formats

    formats = parse_formats(o["export_formats"])
    if formats and tutorial:
        raise BlendtruthError("--export needs a multi-view render: give MODELS or --views")
    check_render_options(formats, rgb=not o["no_rgb"])  # the registry says what needs RGB
    return formats


def run_export_formats(formats: list[str], out: Path) -> None:
    """--export after a render: export ``out`` and print the summary lines."""
    from blendtruth.cli.tools import export_summary, run_exports

    click.echo(export_summary(formats, run_exports(formats, out)))


def plan_fields(o: dict) -> dict:
    """The ViewPlan fields of the rig and camera-model options."""
    if o["camera_model"] in RAY_DISTANCE_MODELS and o["engine"] != "cycles" and not o["no_rgb"]:
        raise BlendtruthError(
            f"--camera {o['camera_model']}: only Cycles renders panoramic cameras; use "
            "--engine cycles or --no-rgb"
        )
    return {
        "rig": o["rig"],
        "rig_views": o["views"] if o["rig"] else None,
        "camera_model": o["camera_model"],
        "ortho_scale": o["ortho_scale"],
        "fisheye_fov": o["fisheye_fov"],
    }


def scene_from_file(models: tuple, scene_file: Path, o: dict) -> SceneSpec:
    """`render --scene-file`: the saved scene with the command's light and material."""
    from blendtruth.multiscene import scene_spec
    from blendtruth.scenes.placement import read_scene_file

    if models:
        raise BlendtruthError("give MODELS or --scene-file, not both")
    saved = read_scene_file(scene_file)
    for placement in saved.placements:
        check_model_file(placement.model)
    return scene_spec(saved, scene_template(o))


LAYOUT_OPTIONS = [
    click.option(
        "--scenes",
        type=int,
        default=None,
        help="Make K multi-object scenes from the models (scenes/NNNN/, resumable).",
    ),
    click.option("--objects", type=int, default=5, show_default=True, help="Models per scene."),
    click.option(
        "--ground/--no-ground",
        default=True,
        show_default=True,
        help="Drop onto a ground plane and settle (Blender rigid body), or float in a volume.",
    ),
    click.option(
        "--ground-size", type=float, default=None, help="Side of the ground plane (default: auto)."
    ),
    click.option(
        "--ground-in-truth/--no-ground-in-truth",
        default=True,
        show_default=True,
        help="Whether the ground plane is part of depth/normals/masks (RGB always shows it).",
    ),
    click.option(
        "--scale",
        "scale_text",
        default="0.5,1.0",
        show_default=True,
        help="'MIN,MAX' bounding radius of each model, scene units.",
    ),
    click.option(
        "--upright", is_flag=True, help="Random turns about +Z only (Y-up files stood up)."
    ),
    click.option(
        "--collision",
        type=click.Choice(["convex", "mesh"]),
        default="convex",
        show_default=True,
        help="Rigid-body collision shape of each model.",
    ),
    click.option(
        "--randomize",
        "randomize_text",
        default=None,
        help="Seeded domain randomisation: materials, lights, hdri, camera or all "
        "(comma-separated; recorded in scene.json; `blendtruth docs scenes`).",
    ),
    click.option(
        "--distractors",
        "distractor_pool",
        default=None,
        help="A pool (file, folder or .txt list) of distractor models dropped onto the "
        "objects; they get their own ids, flagged 'distractor' in instances.json.",
    ),
    click.option(
        "--distractor-count",
        type=int,
        default=3,
        show_default=True,
        help="With --distractors: how many per scene.",
    ),
    click.option(
        "--container",
        is_flag=True,
        help="Drop the models into a square bin (walls in the physics only, not rendered).",
    ),
    click.option(
        "--camera-jitter",
        type=float,
        default=5.0,
        show_default=True,
        help="--randomize camera: largest turn of each view's camera, degrees.",
    ),
    click.option(
        "--light-count", default="1,3", show_default=True, help="--randomize lights: 'MIN,MAX'."
    ),
    click.option(
        "--light-strength",
        default="50,300",
        show_default=True,
        help="--randomize lights: 'MIN,MAX' W (a sun gets 1/200 of it, W/m²).",
    ),
    click.option(
        "--light-types",
        default="point,spot,area,sun",
        show_default=True,
        help="--randomize lights: types drawn from.",
    ),
]
_LAYOUT_NAMES = (
    "scenes", "objects", "ground", "ground_size", "ground_in_truth", "scale_text", "upright",
    "collision", "randomize_text", "light_count", "light_strength", "light_types",
    "distractor_pool", "distractor_count", "camera_jitter", "container",
)  # fmt: skip


def layout_options(fn: Callable) -> Callable:
    for option in reversed(LAYOUT_OPTIONS):
        fn = option(fn)
    return fn


def pop_layout(o: dict) -> dict:
    """Take the layout options out of the command's keyword arguments."""
    return {name: o.pop(name) for name in _LAYOUT_NAMES}


def layout_from_options(lay: dict, o: dict) -> LayoutOptions:
    """The LayoutOptions of the layout options; with a ground and the default sampler,
    cameras are drawn on the upper hemisphere (``o["sampler"]`` is set)."""
    try:
        lo, hi = (float(x) for x in lay["scale_text"].split(","))
    except ValueError:
        raise BlendtruthError(f"--scale must be 'MIN,MAX', got {lay['scale_text']!r}") from None
    if lay["scenes"] is not None and lay["scenes"] < 1:
        raise BlendtruthError(f"--scenes must be a whole number >= 1, got {lay['scenes']}")
    if lay["container"] and not lay["ground"]:
        raise BlendtruthError("--container needs the ground plane (drop it with --no-ground)")
    ctx = click.get_current_context()
    if ctx.get_parameter_source("normalize").name != "DEFAULT":
        raise BlendtruthError(
            "--normalize/--no-normalize do not apply to scenes: each model is scaled to a "
            "bounding radius drawn from --scale"
        )
    if lay["ground"] and ctx.get_parameter_source("sampler").name == "DEFAULT":
        o["sampler"] = "hemisphere"  # cameras above the ground plane
    return LayoutOptions(
        objects=lay["objects"],
        seed=o["seed"],
        scale_range=(lo, hi),
        upright=lay["upright"],
        ground=lay["ground"],
        ground_size=lay["ground_size"],
        ground_in_truth=lay["ground_in_truth"],
        collision=lay["collision"],
        randomize=randomize_from_options(lay),
        container=lay["container"],
        **distractors_from_options(lay),
    )


def distractors_from_options(lay: dict) -> dict:
    """``distractors`` and ``distractor_count`` of LayoutOptions from the options."""
    if lay["distractor_pool"] is None:
        return {}
    from blendtruth.dataset.sources import expand_sources

    if not 1 <= lay["distractor_count"] <= 200:
        raise BlendtruthError(
            f"--distractor-count must be in [1, 200], got {lay['distractor_count']}"
        )
    pool = tuple(expand_sources([lay["distractor_pool"]]))
    if not pool:
        raise BlendtruthError(f"--distractors {lay['distractor_pool']}: no model files")
    return {"distractors": pool, "distractor_count": lay["distractor_count"]}


def randomize_from_options(lay: dict):
    """The RandomizeOptions of --randomize and its --light-* options (None without it)."""
    from blendtruth.scenes.randomize import RandomizeOptions, parse_parts

    parts = parse_parts(lay["randomize_text"])
    if not parts:
        return None
    try:
        count = tuple(int(x) for x in lay["light_count"].split(","))
        strength = tuple(float(x) for x in lay["light_strength"].split(","))
    except ValueError:
        raise BlendtruthError(
            f"--light-count / --light-strength must be 'MIN,MAX', got "
            f"{lay['light_count']!r}, {lay['light_strength']!r}"
        ) from None
    if len(count) != 2 or len(strength) != 2:
        raise BlendtruthError("--light-count and --light-strength must be 'MIN,MAX'")
    types = tuple(t.strip() for t in lay["light_types"].split(",") if t.strip())
    return RandomizeOptions(parts, count, strength, types, lay["camera_jitter"])


def check_layout_unused(lay: dict) -> None:
    """``dataset`` without --scenes: a layout option given anyway is an error, not ignored."""
    ctx = click.get_current_context()
    for name in _LAYOUT_NAMES:
        if ctx.get_parameter_source(name).name != "DEFAULT":
            flag = "--scale" if name == "scale_text" else "--" + name.replace("_", "-")
            raise BlendtruthError(f"{flag} is a scene option: it needs --scenes K")


def scene_template(o: dict) -> SceneSpec:
    """The SceneSpec every scene is rendered with (light, material), before placement."""
    return SceneSpec(primitive="cube", material=o["material"], **lighting_fields(o), **id_fields(o))


def build_scene_command(
    view_options: Callable, settings_fn: Callable, plan_fn: Callable, panels: Callable
) -> click.Command:
    """The command, given the CLI's shared view options, their parsers and panels."""

    @click.command()
    @panels
    @click.argument("pool", nargs=-1, required=True)
    @view_options
    @layout_options
    @click.option(
        "--workers",
        type=int,
        default=1,
        show_default=True,
        help="With --scenes: worker processes (Cycles threads are split between them).",
    )
    @click.option(
        "--timeout",
        type=float,
        default=1800.0,
        show_default=True,
        help="With --scenes: seconds per scene before its worker is killed.",
    )
    @click.option("--no-progress", is_flag=True, help="With --scenes: no live progress bar.")
    def scene(pool: tuple[str, ...], workers: int, timeout: float, no_progress: bool, **o) -> None:
        """Place --objects models drawn from POOL (files, folders, .txt lists) with random
        seeded poses and scales, settle them on a ground plane with Blender's rigid-body
        simulation, write scene.json and render its views into --out. With --scenes K:
        K such scenes into --out/scenes/NNNN/ (the same as `dataset POOL --scenes K`)."""
        from blendtruth.dataset.sources import expand_sources
        from blendtruth.multiscene import render_scene

        lay = pop_layout(o)
        if workers < 1 or timeout <= 0:
            raise BlendtruthError(
                f"--workers must be >= 1 and --timeout > 0, got {workers}, {timeout}"
            )
        prepare_out_dir(o["out"])  # before Blender starts or physics runs
        if workers > 1 and o["threads"] == 0:
            o["threads"] = max(1, (os.cpu_count() or 1) // workers)
        options = layout_from_options(lay, o)
        settings, plan = settings_fn(o), plan_fn(o)
        exports = export_formats(o)
        if lay["scenes"] is not None:
            from blendtruth.cli.summary import report_summary
            from blendtruth.dataset.runner import DatasetOptions
            from blendtruth.runtime import limits

            limits.check_seconds(timeout)
            run = DatasetOptions(
                workers=workers,
                timeout=timeout,
                progress=not no_progress,
                max_memory=limits.default_max_memory(workers),  # as `dataset` does
            )
            summary = run_scene_datasets(pool, lay["scenes"], options, o, settings, plan, run)
            failed = report_summary(summary)
            if exports and summary["models_done"] + summary["skipped_already_done"]:
                run_export_formats(exports, o["out"])
            if failed:
                raise click.exceptions.Exit(1)
            return
        start = time.perf_counter()
        models = expand_sources(list(pool))
        written = render_scene(models, options, scene_template(o), plan, settings, o["out"])
        click.echo(f"made and rendered 1 scene in {time.perf_counter() - start:.2f} s")
        from blendtruth.cli.summary import written_summary

        click.echo(written_summary(o["out"], written))
        if exports:
            run_export_formats(exports, o["out"])

    return scene


def run_scene_datasets(pool, count, layout, o, settings, plan, run) -> dict:
    """K scenes through the dataset runner (shared by ``scene`` and ``dataset``)."""
    from blendtruth.dataset.runner import run_scene_dataset

    template = scene_template(o)
    return run_scene_dataset(list(pool), count, layout, o["out"], template, plan, settings, run)
