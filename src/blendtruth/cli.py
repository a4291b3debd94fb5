"""The ``blendtruth`` command line. Errors are one line on stderr with exit code 2."""

from __future__ import annotations

import sys
import time
import warnings
from pathlib import Path

import click
import numpy as np

from blendtruth.errors import BlendtruthError, BlendtruthWarning
from blendtruth.models import check_model_file
from blendtruth.multiview import ViewPlan
from blendtruth.samplers import SAMPLERS
from blendtruth.scene import LIGHTS, MATERIALS, SceneSpec
from blendtruth.settings import DEVICES, ENGINES, NORMAL_SOURCES, RenderSettings


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="blendtruth")
def cli() -> None:
    """Render exact ground truth (RGB, metric depth, normals, masks, cameras) with Blender."""


def _parse_K(text: str | None) -> np.ndarray | None:  # noqa: N802
    if text is None:
        return None
    try:
        fx, fy, cx, cy = (float(x) for x in text.split(","))
    except ValueError:
        raise BlendtruthError(f"--K must be 'fx,fy,cx,cy' in pixels, got {text!r}") from None
    return np.array([[fx, 0.0, cx], [0.0, fy, cy], [0.0, 0.0, 1.0]])


@cli.command()
@click.argument("models", nargs=-1, type=click.Path(path_type=Path))
@click.option(
    "--out",
    type=click.Path(path_type=Path),
    default=Path("out"),
    show_default=True,
    help="Output folder.",
)
@click.option("--width", type=int, default=640, show_default=True, help="Image width, pixels.")
@click.option("--height", type=int, default=360, show_default=True, help="Image height, pixels.")
@click.option(
    "--samples",
    type=int,
    default=64,
    show_default=True,
    help="RGB samples per pixel (ground truth always uses one pixel-centre sample).",
)
@click.option(
    "--engine",
    type=click.Choice(ENGINES),
    default="cycles",
    show_default=True,
    help="Engine for the RGB image; ground truth always comes from Cycles.",
)
@click.option(
    "--device",
    type=click.Choice(DEVICES),
    default="auto",
    show_default=True,
    help="auto uses a GPU (OptiX/CUDA/HIP) when Cycles finds one, else the CPU.",
)
@click.option(
    "--seed",
    type=int,
    default=0,
    show_default=True,
    help="Seed for Cycles sampling and the random camera sampler.",
)
@click.option(
    "--normals",
    "normals_source",
    type=click.Choice(NORMAL_SOURCES),
    default="pass",
    show_default=True,
    help="Source of the tutorial's nmap in d.npz.",
)
@click.option("--no-rgb", is_flag=True, help="Ground truth only: skip the shaded RGB render.")
@click.option("--denoise", is_flag=True, help="Denoise the RGB image with OpenImageDenoise.")
@click.option(
    "--views",
    type=int,
    default=None,
    help="Number of views (default: 1 of the scene camera without MODELS, else 8).",
)
@click.option(
    "--sampler",
    type=click.Choice(SAMPLERS),
    default="sphere",
    show_default=True,
    help="Camera placement around the model centre.",
)
@click.option(
    "--cameras",
    "camera_file",
    type=click.Path(path_type=Path),
    default=None,
    help="cameras.json or transforms.json to render from (implies --sampler file).",
)
@click.option(
    "--fov",
    type=float,
    default=50.0,
    show_default=True,
    help="Horizontal field of view, degrees (ignored with --K).",
)
@click.option("--K", "k_text", default=None, help="Intrinsics 'fx,fy,cx,cy' in pixels.")
@click.option(
    "--radius",
    type=float,
    default=None,
    help="Camera distance from the centre (default: the model fills --fill).",
)
@click.option(
    "--fill",
    type=float,
    default=0.8,
    show_default=True,
    help="Fraction of the half-frame the bounding sphere fills.",
)
@click.option(
    "--elevation",
    type=float,
    default=30.0,
    show_default=True,
    help="Elevation of the orbit sampler, degrees.",
)
@click.option(
    "--normalize/--no-normalize",
    default=True,
    show_default=True,
    help="Centre the models and scale them into the unit sphere.",
)
@click.option("--light", type=click.Choice(LIGHTS), default="studio", show_default=True)
@click.option(
    "--material",
    type=click.Choice(MATERIALS),
    default="keep",
    show_default=True,
    help="clay: one uniform grey diffuse material for shape-only images.",
)
def render(
    models: tuple[Path, ...],
    out: Path,
    width: int,
    height: int,
    samples: int,
    engine: str,
    device: str,
    seed: int,
    normals_source: str,
    no_rgb: bool,
    denoise: bool,
    views: int | None,
    sampler: str,
    camera_file: Path | None,
    fov: float,
    k_text: str | None,
    radius: float | None,
    fill: float,
    elevation: float,
    normalize: bool,
    light: str,
    material: str,
) -> None:
    """Render MODELS (any number of files, one scene) or, without MODELS, the tutorial's
    scene (Blender's factory cube) into --out."""
    settings = RenderSettings(
        width=width,
        height=height,
        samples=samples,
        engine=engine,
        device=device,
        seed=seed,
        denoise=denoise,
        rgb=not no_rgb,
    )
    if views is not None and views < 1:
        raise BlendtruthError(f"--views must be a whole number >= 1, got {views}")
    if camera_file is not None:
        sampler = "file"
        if not camera_file.is_file():
            raise BlendtruthError(f"--cameras {camera_file}: no such file")
    if models:
        for path in models:
            check_model_file(path)
        spec = SceneSpec(models=models, normalize=normalize, light=light, material=material)
    else:
        spec = SceneSpec.parse("default")
    plan = None
    if models or views is not None or camera_file is not None:
        plan = ViewPlan(
            sampler=sampler,
            views=views or 8,
            fov_deg=fov,
            K=_parse_K(k_text),
            radius=radius,
            fill=fill,
            elevation_deg=elevation,
            camera_file=camera_file,
        )
    from blendtruth.output import prepare_out_dir, remove_if_empty, write_single_view

    created = prepare_out_dir(out)
    start = time.perf_counter()
    try:
        if plan is None:
            from blendtruth.api import render_view

            view = render_view(settings=settings)
            written = write_single_view(out, view, normals_source)
            summary = (
                f"rendered 1 view with Blender {view.meta['blender_version']} on "
                f"{view.meta['device']}; {int(view.mask.sum())} pixels hit a surface"
            )
        else:
            from blendtruth.multiview import render_model

            written = render_model(spec, plan, settings, out)
            summary = f"rendered {len(list((out / 'views').glob('*.npz')))} views"
    except BaseException:
        if created:
            remove_if_empty(out)
        raise
    click.echo(f"{summary} in {time.perf_counter() - start:.2f} s")
    for path in written:
        click.echo(f"wrote {path}")


def _one_line_warning(message, category, filename, lineno, file=None, line=None) -> None:
    name = "warning" if issubclass(category, BlendtruthWarning) else category.__name__
    click.echo(f"blendtruth: {name}: {message}", err=True)


def main(argv: list[str] | None = None) -> int:
    """Entry point: run the CLI, turning every expected error into one line and exit 2."""
    warnings.showwarning = _one_line_warning
    try:
        cli.main(args=argv, prog_name="blendtruth", standalone_mode=False)
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


if __name__ == "__main__":
    sys.exit(main())
