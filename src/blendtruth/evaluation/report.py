"""The results of :func:`blendtruth.evaluate` as a text table, JSON and CSV (atomic writes)."""

from __future__ import annotations

import csv
import io
import json
import math
import os
from typing import Any

from blendtruth.writers.atomic import write_bytes

# Column order of the table and CSV; a column appears when any row has it.
COLUMNS = (
    "abs_rel", "sq_rel", "rmse", "rmse_log", "delta1", "delta2", "delta3", "scale", "shift",
    "pixels", "normal_mean", "normal_median", "normal_11_25", "normal_22_5", "normal_30", "iou",
    "chamfer", "accuracy", "completeness", "precision", "recall", "fscore", "normal_consistency",
)  # fmt: skip


def rows(result: dict[str, Any]) -> list[dict[str, Any]]:
    """One dict per row: every view, the total (mean over views), the pooled depth
    metrics, then every model's surface metrics; each with ``name`` and ``kind`` (view,
    total, pooled, surface)."""
    out = [{"name": n, "kind": "view", **m} for n, m in result["views"].items()]
    if result["views"]:
        out.append({"name": "total", "kind": "total", **result["total"]})
    if result.get("pooled"):
        out.append({"name": "pooled", "kind": "pooled", **result["pooled"]})
    out += [{"name": n, "kind": "surface", **m} for n, m in result["surface"].items()]
    return out


def _columns(table: list[dict[str, Any]]) -> list[str]:
    return [c for c in COLUMNS if any(c in r for r in table)]


def _cell(value: Any) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "-"
    if isinstance(value, int):
        return str(value)
    return f"{value:.4g}"


def format_table(result: dict[str, Any]) -> str:
    """A fixed-width text table of :func:`rows` and a line naming the protocol."""
    table = rows(result)
    cols = _columns(table)
    cells = [["name", *cols]] + [[r["name"], *(_cell(r.get(c)) for c in cols)] for r in table]
    widths = [max(len(row[i]) for row in cells) for i in range(len(cells[0]))]
    lines = [
        "  ".join(
            v.rjust(w) if i else v.ljust(w)
            for i, (v, w) in enumerate(zip(row, widths, strict=True))
        )
        for row in cells
    ]
    meta = result["meta"]
    lines.append(
        f"align {meta['align']} ({meta['space']} space); total: mean over views; "
        "pooled: all scored pixels alike (docs/eval.md)"
    )
    return "\n".join(lines)


def _clean(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _clean(v) for k, v in value.items()}
    return value


def write_json(path: str | os.PathLike, result: dict[str, Any]) -> None:
    """The whole result as JSON (NaN, e.g. a normal consistency without normals, as null)."""
    write_bytes(path, (json.dumps(_clean(result), indent=2) + "\n").encode())


def write_csv(path: str | os.PathLike, result: dict[str, Any]) -> None:
    """:func:`rows` as CSV: columns ``name``, ``kind`` and every metric present; empty cells
    where a row has no such metric."""
    table = rows(result)
    buf = io.StringIO()
    writer = csv.DictWriter(
        buf, ["name", "kind", *_columns(table)], extrasaction="ignore", lineterminator="\n"
    )
    writer.writeheader()
    for r in table:
        writer.writerow({k: ("" if v is None else v) for k, v in _clean(r).items()})
    write_bytes(path, buf.getvalue().encode())
