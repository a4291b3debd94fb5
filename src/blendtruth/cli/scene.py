"""CLI pieces for light, rigs, camera models and multi-object scenes: the extra view
options (appended to cli.py's shared list), their parsers, and the ``blendtruth scene``
command (registered on the CLI group by cli.py)."""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from pathlib import Path

import click

from blendtruth.errors import BlendtruthError
from blendtruth.geometry.projection import CAMERA_MODELS, RAY_DISTANCE_MODELS
from blendtruth.models import check_model_file
from blendtruth.scene import SceneSpec
from blendtruth.scenes.rigs import RIGS

_PATH = click.Path(path_type=Path)

EXTRA_VIEW_OPTIONS = [
    click.option(
        "--rig",
        type=click.Choice(RIGS),
        default=None,
        help="A published dataset's camera set (replaces --sampler; docs/scenes.md#rigs).",
    ),
    click.option(
        "--camera",
        "camera_model",
        type=click.Choice(CAMERA_MODELS),
        default="pinhole",
        show_default=True,
        help="Camera model (docs/conventions.md#camera-models).",
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
    from blendtruth.scenes.multiscene import scene_spec
    from blendtruth.scenes.placement import read_scene_file

    if models:
        raise BlendtruthError("give MODELS or --scene-file, not both")
    saved = read_scene_file(scene_file)
    for placement in saved.placements:
        check_model_file(placement.model)
    template = SceneSpec(primitive="cube", material=o["material"], **lighting_fields(o))
    return scene_spec(saved, template)


def build_scene_command(
    view_options: Callable, settings_fn: Callable, plan_fn: Callable
) -> click.Command:
    """The command, given the CLI's shared view options and their parsers."""

    @click.command()
    @click.argument("pool", nargs=-1, required=True)
    @view_options
    @click.option("--objects", type=int, default=5, show_default=True, help="Models per scene.")
    @click.option(
        "--ground/--no-ground",
        default=True,
        show_default=True,
        help="Drop onto a ground plane and settle (Blender rigid body), or float in a volume.",
    )
    @click.option(
        "--ground-size", type=float, default=None, help="Side of the ground plane (default: auto)."
    )
    @click.option(
        "--ground-in-truth/--no-ground-in-truth",
        default=True,
        show_default=True,
        help="Whether the ground plane is part of depth/normals/masks (RGB always shows it).",
    )
    @click.option(
        "--scale",
        "scale_text",
        default="0.5,1.0",
        show_default=True,
        help="'MIN,MAX' bounding radius of each model, scene units.",
    )
    @click.option(
        "--upright", is_flag=True, help="Random turns about +Z only (Y-up files stood up)."
    )
    @click.option(
        "--collision",
        type=click.Choice(["convex", "mesh"]),
        default="convex",
        show_default=True,
        help="Rigid-body collision shape of each model.",
    )
    @click.option("--scenes", type=int, default=None, help="Make K scenes into --out/scenes/NNNN/.")
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
        help="With --scenes and --workers > 1: seconds per scene before its worker is killed.",
    )
    def scene(
        pool: tuple[str, ...],
        objects: int,
        ground: bool,
        ground_size: float | None,
        ground_in_truth: bool,
        scale_text: str,
        upright: bool,
        collision: str,
        scenes: int | None,
        workers: int,
        timeout: float,
        **o,
    ) -> None:
        """Place --objects models drawn from POOL (files, folders, .txt lists) with random
        seeded poses and scales, settle them on a ground plane with Blender's rigid-body
        simulation, write scene.json and render its views into --out."""
        from blendtruth.dataset.sources import expand_sources
        from blendtruth.scenes.multiscene import render_scene, render_scenes
        from blendtruth.scenes.placement import LayoutOptions

        try:
            lo, hi = (float(x) for x in scale_text.split(","))
        except ValueError:
            raise BlendtruthError(f"--scale must be 'MIN,MAX', got {scale_text!r}") from None
        if scenes is not None and scenes < 1:
            raise BlendtruthError(f"--scenes must be a whole number >= 1, got {scenes}")
        if workers < 1 or timeout <= 0:
            raise BlendtruthError(
                f"--workers must be >= 1 and --timeout > 0, got {workers}, {timeout}"
            )
        if workers > 1 and o["threads"] == 0:
            o["threads"] = max(1, (os.cpu_count() or 1) // workers)
        ctx = click.get_current_context()
        if ground and ctx.get_parameter_source("sampler").name == "DEFAULT":
            o["sampler"] = "hemisphere"  # cameras above the ground plane
        options = LayoutOptions(
            objects=objects,
            seed=o["seed"],
            scale_range=(lo, hi),
            upright=upright,
            ground=ground,
            ground_size=ground_size,
            ground_in_truth=ground_in_truth,
            collision=collision,
        )
        settings, plan = settings_fn(o), plan_fn(o)
        template = SceneSpec(primitive="cube", material=o["material"], **lighting_fields(o))
        models = expand_sources(list(pool))
        start = time.perf_counter()
        if scenes is None:
            written = render_scene(models, options, template, plan, settings, o["out"])
            click.echo(f"made and rendered 1 scene in {time.perf_counter() - start:.2f} s")
            for path in written:
                click.echo(f"wrote {path}")
            return
        done, failures = render_scenes(
            models, scenes, options, template, plan, settings, o["out"], workers, timeout
        )
        seconds = time.perf_counter() - start
        click.echo(f"{len(done)} scenes in {o['out'] / 'scenes'} ({seconds:.1f} s)")
        for failure in failures:
            click.echo(f"blendtruth: failed: {failure}", err=True)
        if failures:
            raise click.exceptions.Exit(1)

    return scene
