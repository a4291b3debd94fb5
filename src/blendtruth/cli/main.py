"""The ``blendtruth`` command line. Errors are one line on stderr with exit code 2."""

from __future__ import annotations

import os
import sys
import time
import warnings
from pathlib import Path

import numpy as np
import rich_click as click

from blendtruth.cli.options import (
    PATH,
    option_panels,
    plan_from_options,
    report_summary,
    scene_from_options,
    settings_from_options,
    view_options,
    written_summary,
)
from blendtruth.cli.scene import (
    build_scene_command,
    check_layout_unused,
    export_formats,
    id_fields,
    layout_from_options,
    layout_options,
    lighting_fields,
    pop_layout,
    run_export_formats,
    run_scene_datasets,
    scene_from_file,
)
from blendtruth.errors import BlendtruthError, BlendtruthWarning
from blendtruth.runtime.interrupts import Stopped
from blendtruth.scene import SceneSpec
from blendtruth.settings import NORMAL_SOURCES


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="blendtruth")
def cli() -> None:
    """Render exact ground truth (RGB, metric depth, normals, masks, cameras) with Blender."""


@cli.command()
@option_panels
@click.argument("models", nargs=-1, type=PATH)
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
    type=PATH,
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
@click.option(
    "--frames",
    default=None,
    help="START:END[:STEP] (END included): render every camera at each of these frames of "
    "the file's animation, with flow between consecutive frames (`blendtruth docs motion`).",
)
@click.option("--fps", type=float, default=24.0, show_default=True, help="With --frames.")
@click.option("--animation", default=None, help="glTF/.blend clip: NAME or 0-based INDEX.")
@click.option("--tracks", type=int, default=0, help="With --frames: N point tracks.")
@click.option(
    "--tracks-mode", type=click.Choice(["grid", "random"]), default="grid", show_default=True
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
    spec = (
        scene_from_options(models, o)
        if scene_file is None
        else scene_from_file(models, scene_file, o)
    )
    ctx = click.get_current_context()
    if spec.ground is not None and ctx.get_parameter_source("sampler").name == "DEFAULT":
        o["sampler"] = "hemisphere"  # as `blendtruth scene` chose: cameras above the ground
    settings = settings_from_options(o)
    tutorial = spec.is_factory and o["views"] is None and o["camera_file"] is None
    plan = None if tutorial else plan_from_options(o)
    exports = _export_formats(o, tutorial)
    motion = _motion_options(o, plan)
    from blendtruth.writers.atomic import prepare_out_dir, remove_if_empty

    out = o["out"]
    created = prepare_out_dir(out)
    start = time.perf_counter()
    try:
        from blendtruth.runtime.child import run_in_child
        from blendtruth.runtime.interrupts import stop_on_signals

        label = " ".join(str(m) for m in models) or str(scene_file or "the tutorial scene")
        target, args = "blendtruth.cli.render_files:render_files", (
            spec, plan, settings, out, normals_source)  # fmt: skip
        if motion is not None:
            target, args = "blendtruth.sequence:render_frames_files", (
                spec, plan, settings, out, motion)  # fmt: skip
        with stop_on_signals("stopping the render"):
            summary, written = run_in_child(
                target,
                args,
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
    click.echo(written_summary(out, written))
    if exports:
        _run_exports(exports, out)


def _motion_options(o: dict, plan):
    """The MotionOptions of --frames/--fps/--animation/--tracks, or None without --frames."""
    frames, animation, tracks = o.pop("frames"), o.pop("animation"), o.pop("tracks")
    fps, mode = o.pop("fps"), o.pop("tracks_mode")
    if frames is None:
        if animation is not None or tracks:
            raise BlendtruthError("--animation and --tracks need --frames START:END")
        return None
    from blendtruth.sequence import MotionOptions
    from blendtruth.timeline import parse_frames

    if plan is None:
        raise BlendtruthError("--frames needs a model (or --views) to render")
    if tracks < 0:
        raise BlendtruthError(f"--tracks must be >= 0, got {tracks}")
    return MotionOptions(parse_frames(frames, fps), animation, tracks, mode)


@cli.command()
@option_panels
@click.argument("sources", nargs=-1, required=True)
@view_options
@layout_options
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
    help="Extra attempts after a worker crash or an unexpected error; not after a "
    "timeout, the memory limit or a bad file (those fail the same way again).",
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
    --out/models/<id>/, resumably; with --scenes K, make K multi-object scenes from them
    into --out/scenes/NNNN/ instead. Exit code 1 if any model or scene failed."""
    from blendtruth.dataset.runner import DatasetOptions, default_workers, run_dataset
    from blendtruth.dataset.sources import parse_shard

    lay = pop_layout(o)
    layout = layout_from_options(lay, o) if lay["scenes"] is not None else None
    if layout is None:
        check_layout_unused(lay)

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
    settings = settings_from_options(o)
    plan = plan_from_options(o)
    exports = _export_formats(o)
    # A template: each job puts its own model in.
    spec = SceneSpec(
        normalize=o["normalize"],
        material=o["material"],
        **lighting_fields(o),
        **id_fields(o),
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
        if layout is not None:
            summary = run_scene_datasets(sources, lay["scenes"], layout, o, settings, plan, options)
        else:
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
    failed = report_summary(summary)
    if exports and summary["models_done"] + summary["skipped_already_done"]:
        _run_exports(exports, o["out"])
    if failed:
        raise click.exceptions.Exit(1)


def _export_formats(o: dict, tutorial: bool = False) -> list[str]:
    return export_formats(o, tutorial)


def _run_exports(formats: list[str], out: Path) -> None:
    run_export_formats(formats, out)


from blendtruth.cli.tools import register as _register_tools  # noqa: E402

_register_tools(cli)
from blendtruth.cli.evaluate import eval_command  # noqa: E402

cli.add_command(eval_command)


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


cli.add_command(
    build_scene_command(view_options, settings_from_options, plan_from_options, option_panels)
)

if __name__ == "__main__":
    sys.exit(main())
