"""``blendtruth export``, ``show`` and ``check``: commands on finished render/dataset folders.

Registered on the main click group by :func:`register`; ``--export`` of ``render`` and
``dataset`` runs :func:`run_exports` on their output.
"""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Iterator
from pathlib import Path

import rich_click as click

from blendtruth.errors import BlendtruthError
from blendtruth.exports.colmap import MAX_POINTS
from blendtruth.writers.atomic import prepare_out_dir

_PATH = click.Path(path_type=Path)


@contextlib.contextmanager
def progress(label: str, total: int, enabled: bool = True) -> Iterator:
    """A rich progress bar on stderr (only on a terminal); yields ``advance(name)``."""
    if not enabled or total < 2 or not sys.stderr.isatty():
        yield lambda name: None
        return
    from rich.console import Console
    from rich.progress import BarColumn, Progress, TextColumn, TimeRemainingColumn

    with Progress(
        TextColumn(label),
        BarColumn(),
        TextColumn("{task.completed}/{task.total} {task.fields[name]}"),
        TimeRemainingColumn(),
        console=Console(stderr=True),
        transient=True,
    ) as bar:
        task = bar.add_task("", total=total, name="")
        yield lambda name: bar.update(task, advance=1, name=name)


def _model_count(path: Path) -> int:
    from blendtruth.exports.source import render_folders

    return len(render_folders(path))


def run_exports(
    formats: list[str], path: Path, out: Path | None = None, show_progress: bool = True, **options
) -> list[Path]:
    """Export ``path`` (a render or dataset folder) in every format of ``formats``."""
    from blendtruth.exports import MODEL, export, get_format

    written: list[Path] = []
    total = _model_count(path)
    for fmt in formats:
        spec = get_format(fmt)  # the registry says which options the format takes
        kwargs = {k: v for k, v in options.items() if k in spec.options and v is not None}
        with progress(f"export {fmt}", total, show_progress) as advance:
            if spec.scope == MODEL:
                written += export(fmt, path, out, on_model=advance, **kwargs)
            else:
                written += export(fmt, path, out, **kwargs)
    return written


def _depth_scale(text: str, option: str = "--depth-scale") -> float | str:
    if text == "auto":
        return text
    try:
        return float(text)
    except ValueError:
        raise BlendtruthError(f"{option} must be a number > 0 or 'auto', got {text!r}") from None


@click.command("export")
@click.argument("formats")
@click.argument("folder", type=_PATH)
@click.option("--out", type=_PATH, default=None, help="Output folder (default: in place).")
@click.option(
    "--depth-scale",
    default="auto",
    show_default=True,
    help="png16: scene units per count, or auto (a power of ten that fits).",
)
@click.option(
    "--max-points",
    type=int,
    default=MAX_POINTS,
    show_default=True,
    help="colmap: at most this many 3D points (a pixel-grid stride that fits).",
)
@click.option(
    "--image-factors",
    default="4",
    show_default=True,
    help="colmap: also write images_F/ (images F× smaller) for each F, e.g. 2,4,8, or none.",
)
@click.option(
    "--shard-bytes",
    "max_shard_bytes",
    type=int,
    default=1_000_000_000,
    show_default=True,
    help="webdataset: largest shard size in bytes.",
)
@click.option(
    "--semantic-map", type=_PATH, default=None, help="coco: {glob: class id} JSON -> categories."
)
@click.option(
    "--coco-mask",
    type=click.Choice(["visible", "amodal"]),
    default="visible",
    show_default=True,
    help="coco: which mask is the segmentation.",
)
@click.option(
    "--bop-depth-scale",
    default="auto",
    show_default=True,
    help="bop: millimetres per depth count, or auto (0.1 x a power of ten that fits).",
)
@click.option("--distractors", is_flag=True, help="coco, bop: annotate distractor objects too.")
@click.option("--no-progress", is_flag=True, help="No progress bar.")
def export_command(  # noqa: PLR0913
    formats, folder, out, depth_scale, max_points, image_factors, max_shard_bytes, semantic_map,
    coco_mask, bop_depth_scale, distractors, no_progress,
):  # fmt: skip
    """Export FOLDER (a render or dataset folder) as FORMATS: colmap, nerfstudio, exr,
    png16, webdataset, coco, bop (comma-separated). See `blendtruth docs exports`."""
    from blendtruth.exports import parse_formats

    names = parse_formats(formats)
    if max_points < 1 or max_shard_bytes < 1:
        raise BlendtruthError("--max-points and --shard-bytes must be >= 1")
    if not Path(folder).is_dir():
        raise BlendtruthError(f"{folder}: no such folder")
    if out is not None:
        prepare_out_dir(out)
    else:  # written in place: the folder itself must take files
        prepare_out_dir(folder, "FOLDER")
    written = run_exports(
        names,
        folder,
        out,
        not no_progress,
        depth_scale=_depth_scale(depth_scale),
        max_points=max_points,
        image_factors=_image_factors(image_factors),
        max_shard_bytes=max_shard_bytes,
        **_annotation_options(semantic_map, coco_mask, bop_depth_scale, distractors),
    )
    click.echo(export_summary(names, written))


def export_summary(names: list[str], written: list[Path]) -> str:
    """The lines an export prints: the count, then how consumers read each format."""
    lines = [f"exported {', '.join(names)}: {len(written)} files"]
    lines += [f"{name}: {CONSUMER_NOTES[name]}" for name in names if name in CONSUMER_NOTES]
    return "\n".join(lines)


# One line per format: how the common consumers read it at their defaults (docs/exports.md).
CONSUMER_NOTES = {
    "colmap": "nerfstudio `ns-train splatfacto --data DIR colmap` reads colmap/sparse/0 and "
    "images/; gsplat `simple_trainer.py --data-dir DIR` reads sparse/0 and images_4/ "
    "(its data_factor 4; other factors: --image-factors)",
    "nerfstudio": "`ns-train nerfacto --data DIR/transforms.json` (nerfstudio-data parser, "
    "default depth scale 1e-3 matches nerfstudio_depth/)",
}


def _image_factors(text: str) -> tuple[int, ...]:
    from blendtruth.exports.colmap import parse_image_factors

    return parse_image_factors(text)


def _annotation_options(semantic_map, coco_mask, bop_depth_scale, distractors) -> dict:
    """The coco and bop options of ``export`` (the map read and checked here)."""
    from blendtruth.instances import read_semantic_map

    return {
        "semantic_map": None if semantic_map is None else read_semantic_map(semantic_map),
        "semantic_map_path": None if semantic_map is None else str(semantic_map),
        "mask": coco_mask,
        "bop_depth_scale": _depth_scale(bop_depth_scale, "--bop-depth-scale"),
        "distractors": distractors,
    }


@click.command("show")
@click.argument("folder", type=_PATH)
@click.option("--out", type=_PATH, default=None, help="Output folder (default FOLDER/show).")
@click.option("--views", type=int, default=4, show_default=True, help="Views per model.")
@click.option("--no-progress", is_flag=True, help="No progress bar.")
def show_command(folder, out, views, no_progress):
    """Contact sheets (RGB | depth with a colour bar in scene units | normals | instance ids or
    mask) and a static index.html gallery of a render or dataset folder."""
    from blendtruth.show.gallery import show

    if views < 1:
        raise BlendtruthError(f"--views must be >= 1, got {views}")
    if not Path(folder).is_dir():
        raise BlendtruthError(f"{folder}: no such folder")
    prepare_out_dir(Path(out) if out is not None else Path(folder) / "show")
    from blendtruth.exports.source import dataset_items, is_dataset_folder

    total = len(dataset_items(Path(folder))) if is_dataset_folder(Path(folder)) else 1
    with progress("show", total, not no_progress) as advance:
        written = show(folder, out, views, on_model=advance)
    click.echo(show_summary(written))


def show_summary(written: list[Path]) -> str:
    """One line naming what ``show`` wrote: the contact sheet(s) and the gallery page."""
    sheets = [p for p in written if p.suffix == ".png" and p.parent.name != "thumbs"]
    if len(sheets) == 1:
        return f"wrote contact sheet {sheets[0]} and gallery {written[-1]}"
    where = f" in {sheets[0].parent}" if sheets else ""
    return f"wrote {len(sheets)} contact sheets{where} and gallery {written[-1]}"


@click.command("check")
@click.argument("folder", type=_PATH)
def check_command(folder):
    """Re-derive every view's ground truth from mesh.ply (ray cast) and the other views
    (reprojection); one verdict line per model. Exit code 1 when a threshold is crossed
    (thresholds: blendtruth.check.THRESHOLDS, `blendtruth docs exports`)."""
    from blendtruth.check import check_folder, format_report
    from blendtruth.exports.source import render_folders

    folders = render_folders(folder)
    failed = 0
    with progress("check", len(folders)) as advance:
        for f in folders:
            report = check_folder(f)
            click.echo(format_report(report))
            failed += not report.ok
            advance(f.model_id)
    click.echo(f"{len(folders) - failed} of {len(folders)} models pass")
    if failed:
        raise click.exceptions.Exit(1)


def docs_folder() -> Path | None:
    """Where the docs are: installed with the package (``<prefix>/share/blendtruth/docs``)
    or, in a source checkout, its ``docs/``."""
    for folder in (
        Path(sys.prefix) / "share" / "blendtruth" / "docs",
        Path(__file__).resolve().parents[3] / "docs",
    ):
        if folder.is_dir() and any(folder.glob("*.md")):
            return folder
    return None


@click.command("docs")
@click.argument("topic", required=False)
def docs_command(topic):
    """Print a page of the documentation (conventions, exports, scenes, datasets, cameras,
    inputs, sensors, performance, ...); without TOPIC, list the pages and where they are."""
    folder = docs_folder()
    if folder is None:
        raise BlendtruthError("the documentation is not installed with this copy of blendtruth")
    pages = sorted(p.stem for p in folder.glob("*.md"))
    if topic is None:
        click.echo(f"{folder}: {', '.join(pages)}")
        return
    name = topic.removesuffix(".md").split("#")[0]
    if name not in pages:
        raise BlendtruthError(f"docs: no page {topic!r}; choose from {', '.join(pages)}")
    click.echo((folder / f"{name}.md").read_text(encoding="utf-8"))


def register(group: click.Group) -> None:
    for command in (export_command, show_command, check_command, docs_command):
        group.add_command(command)
