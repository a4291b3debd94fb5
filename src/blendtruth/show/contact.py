"""Contact sheet: one row per view, columns RGB | depth with a metric colour bar |
normals | instance ids (or the mask). For looking; the numbers are in views/NNNN.npz.

Depth is colour-mapped per row over that view's own depth range (turbo: nearest = red,
farthest = blue, no surface = black); the bar beside it is labelled in scene units, from
the nearest depth (top) to the farthest (bottom).
"""

from __future__ import annotations

import cv2
import numpy as np

from blendtruth.writers.png import normal_preview

TILE = 160  # tile height in pixels
BAR_W, LABEL_W, PAD, HEAD = 14, 78, 6, 22
TICKS = 5
_FONT = cv2.FONT_HERSHEY_SIMPLEX
_GREY = (235, 235, 235)


def tick_label(value: float) -> str:
    return f"{value:.4g}"


def depth_colors(depth: np.ndarray, mask: np.ndarray, lo: float, hi: float) -> np.ndarray:
    """H×W×3 uint8 turbo colours for ``depth`` over [lo, hi] (lo = red), black off mask."""
    t = (hi - depth) / (hi - lo) if hi > lo else np.ones_like(depth)
    gray = np.clip(np.rint(t * 255), 0, 255).astype(np.uint8)
    out = cv2.applyColorMap(gray, cv2.COLORMAP_TURBO)[..., ::-1].copy()
    out[~mask] = 0
    return out


def _instance_colors(ids: np.ndarray) -> np.ndarray:
    """A stable colour per id (hash of the id), black for 0 (background)."""
    ids = ids.astype(np.int64)
    h = (ids * 2654435761) & 0xFFFFFF
    rgb = np.stack([(h >> 16) & 255, (h >> 8) & 255, h & 255], axis=-1).astype(np.uint8)
    rgb = np.maximum(rgb, 40)
    rgb[ids == 0] = 0
    return rgb


def _scale(image: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    interp = cv2.INTER_NEAREST if size[1] >= image.shape[0] else cv2.INTER_AREA
    return cv2.resize(image, size, interpolation=interp)


def _text(img: np.ndarray, text: str, x: int, y: int, scale: float = 0.4) -> None:
    cv2.putText(img, text, (x, y), _FONT, scale, (30, 30, 30), 1, cv2.LINE_AA)


def contact_sheet(rows: list[tuple[str, dict[str, np.ndarray]]]) -> tuple[np.ndarray, list[dict]]:
    """Draw the sheet for ``rows`` = [(view name, arrays of views/NNNN.npz)].

    Returns (H×W×3 uint8 RGB image, per row: view, depth_min, depth_max, tick values and
    labels, and the colour bar's column and first/last pixel rows in the image)."""
    first = rows[0][1]["depth"]
    tile_h = TILE
    tile_w = max(1, round(first.shape[1] * TILE / first.shape[0]))
    col_x = []
    x = PAD + 40
    for extra in (0, BAR_W + LABEL_W, 0, 0):
        col_x.append(x)
        x += tile_w + extra + PAD
    width = x
    height = HEAD + len(rows) * (tile_h + PAD) + PAD
    sheet = np.full((height, width, 3), 255, dtype=np.uint8)
    has_instance = "instance" in rows[0][1]
    titles = [
        "RGB",
        "depth (scene units)",
        "normal (camera)",
        "instance" if has_instance else "mask",
    ]
    for cx, title in zip(col_x, titles, strict=True):
        _text(sheet, title, cx, HEAD - 7)
    info = []
    for r, (name, a) in enumerate(rows):
        y = HEAD + r * (tile_h + PAD)
        size = (tile_w, tile_h)
        mask = a["mask"].astype(bool)
        _text(sheet, name, PAD, y + tile_h // 2)
        if "rgb" in a:
            sheet[y : y + tile_h, col_x[0] : col_x[0] + tile_w] = _scale(a["rgb"], size)
        else:
            sheet[y : y + tile_h, col_x[0] : col_x[0] + tile_w] = _GREY
            _text(sheet, "no RGB", col_x[0] + 8, y + tile_h // 2)
        depth = a["depth"]
        lo = float(depth[mask].min()) if mask.any() else 0.0
        hi = float(depth[mask].max()) if mask.any() else 0.0
        colors = depth_colors(depth, mask, lo, hi)
        sheet[y : y + tile_h, col_x[1] : col_x[1] + tile_w] = _scale(colors, size)
        bar_x = col_x[1] + tile_w + 4
        values = lo + (hi - lo) * np.linspace(0.0, 1.0, tile_h)
        bar = depth_colors(values[:, None], np.ones((tile_h, 1), bool), lo, hi)
        sheet[y : y + tile_h, bar_x : bar_x + BAR_W] = bar
        ticks = np.linspace(lo, hi, TICKS)
        labels = [tick_label(t) for t in ticks]
        for k, label in enumerate(labels):
            ty = y + round(k * (tile_h - 1) / (TICKS - 1))
            sheet[ty, bar_x + BAR_W : bar_x + BAR_W + 4] = 0
            _text(sheet, label, bar_x + BAR_W + 6, min(max(ty + 4, y + 9), y + tile_h))
        normal = normal_preview(a["normal"], mask)
        sheet[y : y + tile_h, col_x[2] : col_x[2] + tile_w] = _scale(normal, size)
        last = _instance_colors(a["instance"]) if has_instance else np.where(
            mask[..., None], 255, 0
        ).astype(np.uint8).repeat(3, axis=2)  # fmt: skip
        sheet[y : y + tile_h, col_x[3] : col_x[3] + tile_w] = _scale(last, size)
        info.append({
            "view": name, "depth_min": lo, "depth_max": hi,
            "ticks": ticks.tolist(), "labels": labels,
            "bar": {"x": bar_x, "width": BAR_W, "top": y, "bottom": y + tile_h - 1},
            "depth_tile": {"x": col_x[1], "y": y, "width": tile_w, "height": tile_h},
        })  # fmt: skip
    return sheet, info


def pick_views(names: tuple[str, ...], count: int) -> list[str]:
    """``count`` view names spread evenly over ``names`` (all when there are fewer)."""
    if len(names) <= count:
        return list(names)
    idx = np.linspace(0, len(names) - 1, count).round().astype(int)
    return [names[i] for i in dict.fromkeys(idx.tolist())]
