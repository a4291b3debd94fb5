"""16-bit PNG depth, the format most depth datasets use (TUM, ScanNet, nerfstudio's PNGs).

``png16/NNNN.png``: uint16 gray, ``count = round(depth / depth_scale)``, so
``depth = count * depth_scale`` in scene units, quantised to ``depth_scale / 2``; 0 = no
surface. A surface nearer than ``depth_scale / 2`` gets count 1 (it stays valid).
**Clipping:** a depth beyond ``65535 * depth_scale`` cannot be stored and is written as 0
(no data), never saturated; the count of such pixels per view is in ``png16/meta.json``.
``png16/meta.json``: ``depth_scale`` (scene units per count), ``max_depth``, per view
``clipped`` pixel counts. ``depth_scale`` "auto" picks the finest power of ten (from 1e-4)
whose range holds the folder's largest depth (1e-3 = millimetres, nerfstudio's default).
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import cv2
import numpy as np

from blendtruth.errors import BlendtruthError
from blendtruth.exports import ExportFormat
from blendtruth.exports.source import RenderFolder
from blendtruth.writers.atomic import write_bytes

MAX_COUNT = 65535
PNG16_DIR = "png16"


def auto_depth_scale(max_depth: float) -> float:
    """The finest power of ten >= 1e-4 with ``MAX_COUNT * scale >= max_depth``."""
    exponent = -4
    while MAX_COUNT * 10.0**exponent < max_depth:
        exponent += 1
    return 10.0**exponent


def export_png16(folder: RenderFolder, out: Path, depth_scale: float | str = "auto") -> list[Path]:
    """Write ``out/png16/NNNN.png`` and ``out/png16/meta.json`` (see the module docstring)."""
    views = list(folder.views())
    if depth_scale == "auto":
        depth_scale = auto_depth_scale(max(float(v.depth.max()) for _, v in views))
    if not (
        isinstance(depth_scale, int | float) and math.isfinite(depth_scale) and depth_scale > 0
    ):
        raise BlendtruthError(f"--depth-scale must be a number > 0 or 'auto', got {depth_scale!r}")
    target = Path(out) / PNG16_DIR
    target.mkdir(parents=True, exist_ok=True)
    written, clipped = [], {}
    for name, view in views:
        counts = np.rint(view.depth.astype(np.float64) / depth_scale)
        counts[view.mask] = np.maximum(counts[view.mask], 1)
        over = view.mask & (counts > MAX_COUNT)
        counts[over | ~view.mask] = 0
        clipped[name] = int(over.sum())
        ok, buf = cv2.imencode(".png", counts.astype(np.uint16))
        if not ok:
            raise BlendtruthError(f"{target / name}.png: could not encode PNG")
        write_bytes(target / f"{name}.png", buf.tobytes())
        written.append(target / f"{name}.png")
    meta = {
        "depth_scale": depth_scale,
        "unit": "scene units per count: depth = count * depth_scale; 0 = no surface",
        "max_depth": MAX_COUNT * depth_scale,
        "clipping": "depth beyond max_depth is written as 0 (no data)",
        "clipped": clipped,
    }
    write_bytes(target / "meta.json", (json.dumps(meta, indent=2) + "\n").encode())
    return written + [target / "meta.json"]


FORMAT = ExportFormat(
    "png16",
    export_png16,
    needs=("depth", "mask"),
    writes=(PNG16_DIR,),
    doc="16-bit PNG depth per view and png16/meta.json",
)
