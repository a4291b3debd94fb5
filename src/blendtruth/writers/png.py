"""PNG previews a person can look at (not data: read the .npz for numbers)."""

from __future__ import annotations

import os

import cv2
import numpy as np

from blendtruth.errors import BlendtruthError
from blendtruth.writers.atomic import write_bytes


def write_png(
    path: str | os.PathLike, image: np.ndarray, level: int = 1, durable: bool = True
) -> None:
    """Write an H×W×3 uint8 RGB, H×W×4 RGBA (straight alpha) or H×W gray image as PNG,
    atomically. ``level``: zlib level 0-9 (lossless at every level; 1 encodes several
    times faster than the default 3 for files a few percent larger)."""
    if image.ndim == 3:
        image = image[..., [2, 1, 0, 3][: image.shape[2]]]  # OpenCV wants BGR(A)
    params = [cv2.IMWRITE_PNG_COMPRESSION, level]
    ok, buf = cv2.imencode(".png", np.ascontiguousarray(image), params)
    if not ok:
        raise BlendtruthError(f"{path}: could not encode PNG")
    write_bytes(path, buf.tobytes(), durable)


def depth_preview(depth: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """Colour-mapped depth (turbo: near = red, far = blue), background black, H×W×3 uint8.
    The colour scale spans this image's own depth range."""
    out = np.zeros((*depth.shape, 3), dtype=np.uint8)
    if not mask.any():
        return out
    d = depth[mask]
    lo, hi = float(d.min()), float(d.max())
    scaled = (hi - depth) / (hi - lo) if hi > lo else np.ones_like(depth)
    gray = np.clip(np.round(scaled * 255), 0, 255).astype(np.uint8)
    colored = cv2.applyColorMap(gray, cv2.COLORMAP_TURBO)[..., ::-1]
    out[mask] = colored[mask]
    return out


def normal_preview(normal_cam: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """Normal-map colours: RGB = (n_gl + 1) / 2 with n in OpenGL camera axes (x right, y up,
    z toward the viewer), so a surface facing the camera is light blue; background black."""
    n_gl = normal_cam * np.array([1.0, -1.0, -1.0])
    rgb = np.round((n_gl + 1.0) * 127.5).clip(0, 255).astype(np.uint8)
    rgb[~mask] = 0
    return rgb
