"""``blendtruth eval``: score predictions against a ground-truth folder (docs/eval.md)."""

from __future__ import annotations

import os
from pathlib import Path

import click

from blendtruth.evaluation.metrics import ALIGNMENTS, NORMAL_CONVENTIONS, SCALE_METHODS, SPACES

_PATH = click.Path(path_type=Path)


def _check_output(path: Path | None, option: str) -> None:
    from blendtruth.errors import BlendtruthError

    if path is None:
        return
    if path.is_dir():
        raise BlendtruthError(f"{option} {path}: is a folder, expected a file name")
    if not path.parent.is_dir():
        raise BlendtruthError(f"{option} {path}: folder {path.parent} does not exist")
    if not os.access(path.parent, os.W_OK):
        raise BlendtruthError(f"{option} {path}: folder {path.parent} is not writable")


@click.command("eval")
@click.argument("gt_dir", type=_PATH)
@click.argument("pred_dir", type=_PATH)
@click.option(
    "--align",
    type=click.Choice(ALIGNMENTS),
    default="none",
    show_default=True,
    help="Depth alignment per view before the metrics.",
)
@click.option(
    "--scale-method",
    type=click.Choice(SCALE_METHODS),
    default="median",
    show_default=True,
    help="--align scale: ratio of medians or least squares.",
)
@click.option(
    "--space",
    type=click.Choice(SPACES),
    default="depth",
    show_default=True,
    help="What the prediction holds and where it is aligned: depth, or inverse "
    "depth (disparity, as MiDaS / Depth Anything output).",
)
@click.option(
    "--min-depth",
    type=float,
    default=0.0,
    show_default=True,
    help="Score GT depths > this (scene units).",
)
@click.option(
    "--max-depth", type=float, default=None, help="Score GT depths <= this (default: no limit)."
)
@click.option(
    "--depth-scale",
    type=float,
    default=None,
    help="16-bit PNG predictions: scene units per count (required for .png).",
)
@click.option(
    "--normal-convention",
    type=click.Choice(NORMAL_CONVENTIONS),
    default="opencv",
    show_default=True,
    help="Axes of predicted camera-frame normals; opengl: x right, y up, z back.",
)
@click.option(
    "--tau",
    type=float,
    default=0.01,
    show_default=True,
    help="F-score distance threshold (scene units).",
)
@click.option(
    "--samples",
    type=int,
    default=100_000,
    show_default=True,
    help="Surface samples per mesh (seeded, area-weighted).",
)
@click.option("--seed", type=int, default=0, show_default=True, help="Sampling seed.")
@click.option("--json", "json_path", type=_PATH, default=None, help="Write the results as JSON.")
@click.option("--csv", "csv_path", type=_PATH, default=None, help="Write the results as CSV.")
def eval_command(gt_dir, pred_dir, json_path, csv_path, **options):
    """Score predictions in PRED_DIR (per view NNNN.npy/.npz/.png/.exr; mesh.ply or
    points.ply) against the ground truth in GT_DIR (a render or dataset folder): depth,
    normal, mask and surface metrics per view and in total (the mean over views)."""
    _check_output(json_path, "--json")
    _check_output(csv_path, "--csv")
    from blendtruth.evaluation.report import format_table, write_csv, write_json
    from blendtruth.evaluation.run import evaluate

    result = evaluate(gt_dir, pred_dir, **options)
    click.echo(format_table(result))
    for path, write in ((json_path, write_json), (csv_path, write_csv)):
        if path is not None:
            write(path, result)
            click.echo(f"wrote {path}")
