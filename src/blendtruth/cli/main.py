"""The ``blendtruth`` command line. Errors are one line on stderr with exit code 2."""

from __future__ import annotations

import os
import sys
import time
import warnings
from pathlib import Path

import click
import numpy as np

from blendtruth.cli.scene import (
    EXTRA_VIEW_OPTIONS,
    build_scene_command,
    lighting_fields,
    plan_fields,
    scene_from_file,
)
from blendtruth.errors import BlendtruthError, BlendtruthWarning
from blendtruth.instances import SEMANTIC_BY, read_semantic_map
from blendtruth.models import check_model_file
from blendtruth.multiview import ViewPlan
from blendtruth.passes import PASSES
from blendtruth.runtime.interrupts import Stopped
from blendtruth.scene import LIGHTS, MATERIALS, PRIMITIVES, SceneSpec
from blendtruth.scenes.lights import HDRI_LIGHTS
from blendtruth.scenes.samplers import SAMPLERS
from blendtruth.settings import DEVICES, ENGINES, NORMAL_SOURCES, TRUTHS, RenderSettings

_PATH = click.Path(path_type=Path)

# Options shared by `render` and `dataset`: how each view is rendered and placed.
_VIEW_OPTIONS = [
    click.option(
        "--out", type=_PATH, default=Path("out"), show_default=True, help="Output folder."
    ),
    click.option("--width", type=int, default=640, show_default=True, help="Image width, px."),
    click.option("--height", type=int, default=360, show_default=True, help="Image height, px."),
    click.option(
        "--samples",
        type=int,
        default=64,
        show_default=True,
        help="RGB samples per pixel (ground truth always uses one pixel-centre ray).",
    ),
    click.option(
        "--engine",
        type=click.Choice(ENGINES),
        default="cycles",
        show_default=True,
        help="Engine for the RGB image (ground truth: see --truth).",
    ),
    click.option(
        "--device",
        type=click.Choice(DEVICES),
        default="auto",
        show_default=True,
        help="auto uses a GPU (OptiX/CUDA/HIP) when Cycles finds one, else the CPU.",
    ),
    click.option(
        "--seed",
        type=int,
        default=0,
        show_default=True,
        help="Seed for Cycles sampling and the random camera sampler.",
    ),
    click.option("--no-rgb", is_flag=True, help="Ground truth only: skip the RGB render."),
    click.option("--denoise", is_flag=True, help="Denoise RGB with OpenImageDenoise."),
    click.option(
        "--threads",
        type=int,
        default=0,
        show_default=True,
        help="Render threads per Blender process (0 = all cores).",
    ),
    click.option(
        "--views",
        type=int,
        default=None,
        help="Views per model (default 8; `render` without MODELS: 1, the scene camera).",
    ),
    click.option(
        "--sampler",
        type=click.Choice(SAMPLERS),
        default="sphere",
        show_default=True,
        help="Camera placement around the model centre.",
    ),
    click.option(
        "--cameras",
        "camera_file",
        type=_PATH,
        default=None,
        help="cameras.json or transforms.json to render from (implies --sampler "
        "file; the resolution comes from the file).",
    ),
    click.option(
        "--fov",
        type=float,
        default=50.0,
        show_default=True,
        help="Horizontal field of view, degrees (ignored with --K).",
    ),
    click.option("--K", "k_text", default=None, help="Intrinsics 'fx,fy,cx,cy' in pixels."),
    click.option(
        "--radius",
        type=float,
        default=None,
        help="Camera distance from the centre (default: the model fills --fill).",
    ),
    click.option(
        "--fill",
        type=float,
        default=0.8,
        show_default=True,
        help="Fraction of the half-frame the model's bounding sphere fills.",
    ),
    click.option(
        "--elevation",
        type=float,
        default=30.0,
        show_default=True,
        help="Elevation of the orbit sampler, degrees.",
    ),
    click.option(
        "--normalize/--no-normalize",
        default=True,
        show_default=True,
        help="Centre models and scale them into the unit sphere.",
    ),
    click.option(
        "--light",
        type=click.Choice(LIGHTS + HDRI_LIGHTS),
        default="studio",
        show_default=True,
        help="Light preset, or hdri:NAME for one of the HDRIs the bpy wheel ships.",
    ),
    click.option(
        "--material",
        type=click.Choice(MATERIALS),
        default="keep",
        show_default=True,
        help="clay: one uniform grey diffuse material for shape-only images.",
    ),
    click.option(
        "--passes",
        "passes_text",
        default="default",
        show_default=True,
        help="Ground-truth passes, comma-separated, or 'all': " + ", ".join(PASSES) + ".",
    ),
    click.option(
        "--semantic",
        type=click.Choice(SEMANTIC_BY),
        default="model",
        show_default=True,
        help="Semantic class ids: one per source model file, per object, or per material.",
    ),
    click.option(
        "--semantic-map",
        type=_PATH,
        default=None,
        help="JSON {glob pattern: class id} matched against file names, objects, materials.",
    ),
    click.option(
        "--alpha-threshold",
        type=float,
        default=0.5,
        show_default=True,
        help="Transparency policy: surfaces with material alpha below this are skipped by "
        "ground truth (0 = every surface counts).",
    ),
    click.option(
        "--amodal",
        is_flag=True,
        help="Also store every instance's full (unoccluded) silhouette, bit-packed.",
    ),
    click.option(
        "--export",
        "export_formats",
        default=None,
        help="Also export the result: colmap, nerfstudio, exr, png16, webdataset "
        "(comma-separated; see `blendtruth export`).",
    ),
    click.option(
        "--pairs",
        type=click.Choice(["none", "consecutive", "all"]),
        default="none",
        show_default=True,
        help="Write flow/NNNN_MMMM.npz (flow, covisible) and pairs.json for view pairs: "
        "consecutive (k -> k+1 and back) or all ordered pairs (at most 64 views).",
    ),
    click.option(
        "--truth",
        type=click.Choice(TRUTHS),
        default="raycast",
        show_default=True,
        help="Ground truth from Blender's triangles ray-cast with Embree (falls back to "
        "Cycles per scene where it cannot match it, e.g. normal maps, transparency, hair) "
        "or from a 1-sample Cycles render.",
    ),
    click.option("--compress", is_flag=True, help="zlib-compress views/*.npz (smaller, slower)."),
    click.option(
        "--previews/--no-previews",
        default=False,
        show_default=True,
        help="Also write preview/NNNN_depth.png and NNNN_normal.png to look at.",
    ),
]
_VIEW_OPTIONS += EXTRA_VIEW_OPTIONS  # light, rig and camera-model options (py)


def view_options(func):
    for option in reversed(_VIEW_OPTIONS):
        func = option(func)
    return func


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="blendtruth")
def cli() -> None:
    """Render exact ground truth (RGB, metric depth, normals, masks, cameras) with Blender."""


def _settings(o: dict) -> RenderSettings:
    return RenderSettings(
        width=o["width"],
        height=o["height"],
        samples=o["samples"],
        engine=o["engine"],
        device=o["device"],
        seed=o["seed"],
        denoise=o["denoise"],
        rgb=not o["no_rgb"],
        threads=o["threads"],
        passes=o["passes_text"],
        alpha_threshold=o["alpha_threshold"],
        amodal=o["amodal"],
        truth=o["truth"],
        compress=o["compress"],
        previews=o["previews"],
    )


def _plan(o: dict) -> ViewPlan:
    if o["views"] is not None and o["views"] < 1:
        raise BlendtruthError(f"--views must be a whole number >= 1, got {o['views']}")
    sampler = o["sampler"]
    if o["camera_file"] is not None:
        sampler = "file"
        if not o["camera_file"].is_file():
            raise BlendtruthError(f"--cameras {o['camera_file']}: no such file")
    return ViewPlan(
        sampler=sampler,
        views=o["views"] or 8,
        fov_deg=o["fov"],
        K=_parse_K(o["k_text"]),
        radius=o["radius"],
        fill=o["fill"],
        elevation_deg=o["elevation"],
        camera_file=o["camera_file"],
        **plan_fields(o),
        pairs=o["pairs"],
    )


def _scene(models: tuple[Path, ...], o: dict) -> SceneSpec:
    """Model files, one primitive name (when no such file exists), or the factory scene."""
    ids = {"semantic": o["semantic"]}
    if o["semantic_map"] is not None:
        ids["semantic_map"] = tuple(read_semantic_map(o["semantic_map"]).items())
    if len(models) == 1 and str(models[0]) in PRIMITIVES and not models[0].exists():
        return SceneSpec(
            primitive=str(models[0]),
            normalize=False,
            material=o["material"],
            **lighting_fields(o),
            **ids,
        )
    for path in models:
        check_model_file(path)
    if not models:
        return SceneSpec(light="factory", normalize=False, **ids)
    return SceneSpec(
        models=models,
        normalize=o["normalize"],
        material=o["material"],
        **lighting_fields(o),
        **ids,
    )


def _parse_K(text: str | None) -> np.ndarray | None:  # noqa: N802
    if text is None:
        return None
    try:
        fx, fy, cx, cy = (float(x) for x in text.split(","))
    except ValueError:
        raise BlendtruthError(f"--K must be 'fx,fy,cx,cy' in pixels, got {text!r}") from None
    return np.array([[fx, 0.0, cx], [0.0, fy, cy], [0.0, 0.0, 1.0]])


@cli.command()
@click.argument("models", nargs=-1, type=_PATH)
@view_options
@click.option(
    "--normals",
    "normals_source",
    type=click.Choice(NORMAL_SOURCES),
    default="pass",
    show_default=True,
    help="Source of the tutorial's nmap in d.npz.",
)
@click.option(
    "--scene-file",
    type=_PATH,
    default=None,
    help="Render a scene.json written by `blendtruth scene` (no MODELS).",
)
@click.option(
    "--timeout",
    type=float,
    default=None,
    help="Seconds for the whole import+render before it is stopped (default: no limit).",
)
@click.option(
    "--max-memory",
    default=None,
    help="Memory limit of the rendering process, e.g. 4G (default: 80% of RAM; 'none').",
)
def render(
    models: tuple[Path, ...],
    normals_source: str,
    scene_file: Path | None,
    timeout: float | None,
    max_memory: str | None,
    **o,
) -> None:
    """Render MODELS (any number of files, one scene; or one built-in primitive: cube,
    uv_sphere, monkey, plane) or, without MODELS, the tutorial's scene (Blender's factory
    cube) into --out."""
    from blendtruth.runtime import limits

    timeout = limits.check_seconds(timeout)
    memory = limits.parse_memory(max_memory) if max_memory else limits.default_max_memory(1)
    spec = _scene(models, o) if scene_file is None else scene_from_file(models, scene_file, o)
    ctx = click.get_current_context()
    if spec.ground is not None and ctx.get_parameter_source("sampler").name == "DEFAULT":
        o["sampler"] = "hemisphere"  # as `blendtruth scene` chose: cameras above the ground
    settings = _settings(o)
    tutorial = spec.is_factory and o["views"] is None and o["camera_file"] is None
    plan = None if tutorial else _plan(o)
    exports = _export_formats(o, tutorial)
    from blendtruth.writers.output import prepare_out_dir, remove_if_empty

    out = o["out"]
    created = prepare_out_dir(out)
    start = time.perf_counter()
    try:
        from blendtruth.runtime.child import run_in_child
        from blendtruth.runtime.interrupts import stop_on_signals

        label = " ".join(str(m) for m in models) or str(scene_file or "the tutorial scene")
        with stop_on_signals("stopping the render"):
            summary, written = run_in_child(
                "blendtruth.cli.render_files:render_files",
                (spec, plan, settings, out, normals_source),
                label=label,
                timeout=timeout,
                max_memory=memory,
            )
    except BaseException as exc:
        if created:
            remove_if_empty(out)
        if isinstance(exc, Stopped):  # SIGINT/SIGTERM, announced; the child is gone
            raise click.exceptions.Exit(exc.exit_code) from None
        raise
    click.echo(f"{summary} in {time.perf_counter() - start:.2f} s")
    for path in written:
        click.echo(f"wrote {path}")
    if exports:
        _run_exports(exports, out)


@cli.command()
@click.argument("sources", nargs=-1, required=True)
@view_options
@click.option(
    "--workers",
    type=int,
    default=None,
    help="Worker processes (default: one per GPU; else one per core with --no-rgb, one "
    "per 8 cores with RGB; Cycles threads are split between them).",
)
@click.option("--shard", default=None, help="'i/N': render only shard i of N (job arrays).")
@click.option(
    "--retries",
    type=int,
    default=1,
    show_default=True,
    help="Extra attempts after a crash, timeout or error (not for bad files).",
)
@click.option(
    "--timeout",
    type=float,
    default=600.0,
    show_default=True,
    help="Seconds per model before its worker is killed.",
)
@click.option(
    "--executor",
    type=click.Choice(["local", "ray"]),
    default="local",
    show_default=True,
    help="ray: distribute models over a Ray cluster.",
)
@click.option("--address", default=None, help="Ray cluster address (default: start locally).")
@click.option(
    "--recycle-after",
    type=int,
    default=200,
    show_default=True,
    help="Replace a worker process after this many models.",
)
@click.option("--no-progress", is_flag=True, help="No live progress bar.")
@click.option(
    "--max-memory",
    default=None,
    help="Memory limit per worker, e.g. 4G or 'none' (default: 80% of RAM / workers, "
    "at least 1G). A model past it fails and is not retried.",
)
def dataset(
    sources: tuple[str, ...],
    workers: int | None,
    shard: str | None,
    retries: int,
    timeout: float,
    executor: str,
    address: str | None,
    recycle_after: int,
    no_progress: bool,
    max_memory: str | None,
    **o,
) -> None:
    """Render every model in SOURCES (files, folders, globs, or .txt lists of paths) into
    --out/models/<id>/, resumably. Exit code 1 if any model failed."""
    from blendtruth.dataset.runner import DatasetOptions, default_workers, run_dataset
    from blendtruth.dataset.sources import parse_shard

    workers = default_workers(o["device"], not o["no_rgb"]) if workers is None else workers
    if workers < 1:
        raise BlendtruthError(f"--workers must be >= 1, got {workers}")
    if retries < 0 or recycle_after < 1 or timeout <= 0:
        raise BlendtruthError("--retries must be >= 0, --recycle-after >= 1, --timeout > 0")
    from blendtruth.runtime import limits

    limits.check_seconds(timeout)
    if max_memory is not None:
        memory = limits.parse_memory(max_memory)
    elif executor == "ray":
        memory = None  # each Ray task takes its node's default (see RayExecutor)
    else:
        memory = limits.default_max_memory(workers)
    if o["threads"] == 0 and executor == "ray":
        o["threads"] = 1  # each Ray task reserves --threads CPUs of its node
    elif o["threads"] == 0 and workers > 1:
        o["threads"] = max(1, (os.cpu_count() or 1) // workers)
    settings = _settings(o)
    plan = _plan(o)
    exports = _export_formats(o)
    # A template: each job puts its own model in.
    spec = SceneSpec(
        normalize=o["normalize"],
        material=o["material"],
        **lighting_fields(o),
    )
    options = DatasetOptions(
        workers=workers,
        shard=parse_shard(shard),
        retries=retries,
        timeout=timeout,
        executor=executor,
        address=address,
        recycle_after=recycle_after,
        progress=not no_progress,
        max_memory=memory,
    )
    try:
        summary = run_dataset(list(sources), o["out"], spec, plan, settings, options)
    except KeyboardInterrupt as exc:  # SIGINT/SIGTERM: workers are already stopped
        done = getattr(exc, "summary", None)
        if done is not None:
            click.echo(
                f"stopped: {done['models_done']} models done in this run, "
                f"{done['skipped_already_done']} before, {done['models_failed']} failed; "
                "re-run the same command to resume",
                err=True,
            )
        raise click.exceptions.Exit(getattr(exc, "exit_code", 130)) from None
    click.echo(
        f"{summary['models_done']} models done, {summary['models_failed']} failed, "
        f"{summary['skipped_already_done']} already done; {summary['views']} views in "
        f"{summary['seconds']:.1f} s"
    )
    for failure in summary["failures"]:
        click.echo(f"blendtruth: failed: {failure['reason']}", err=True)
    if exports and summary["models_done"] + summary["skipped_already_done"]:
        _run_exports(exports, o["out"])
    if summary["models_failed"]:
        raise click.exceptions.Exit(1)


def _export_formats(o: dict, tutorial: bool = False) -> list[str]:
    from blendtruth.exports import parse_formats

    formats = parse_formats(o["export_formats"])
    if formats and tutorial:
        raise BlendtruthError("--export needs a multi-view render: give MODELS or --views")
    if "nerfstudio" in formats and o["no_rgb"]:
        raise BlendtruthError("--export nerfstudio needs RGB images; drop --no-rgb")
    return formats


def _run_exports(formats: list[str], out: Path) -> None:
    from blendtruth.cli.tools import run_exports

    written = run_exports(formats, out)
    click.echo(f"exported {', '.join(formats)}: {len(written)} files")


from blendtruth.cli.tools import register as _register_tools  # noqa: E402

_register_tools(cli)


def _one_line_warning(message, category, filename, lineno, file=None, line=None) -> None:
    name = "warning" if issubclass(category, BlendtruthWarning) else category.__name__
    click.echo(f"blendtruth: {name}: {message}", err=True)


def main(argv: list[str] | None = None) -> int:
    """Entry point: run the CLI, turning every expected error into one line and exit 2."""
    warnings.showwarning = _one_line_warning
    # Bad data is reported by our own checks in one line; numpy's floating-point
    # RuntimeWarnings on it would only add noise to stderr.
    np.seterr(all="ignore")
    try:
        code = cli.main(args=argv, prog_name="blendtruth", standalone_mode=False)
        if isinstance(code, int):
            return code
    except click.exceptions.Exit as exc:
        return exc.exit_code
    except click.exceptions.UsageError as exc:
        click.echo(f"blendtruth: error: {exc.format_message()}", err=True)
        return 2
    except BlendtruthError as exc:
        click.echo(f"blendtruth: error: {exc}", err=True)
        return 2
    except (click.exceptions.Abort, KeyboardInterrupt):
        click.echo("blendtruth: interrupted", err=True)
        return 130
    except OSError as exc:
        click.echo(f"blendtruth: error: {exc}", err=True)
        return 1
    return 0


cli.add_command(build_scene_command(view_options, _settings, _plan))

if __name__ == "__main__":
    sys.exit(main())
