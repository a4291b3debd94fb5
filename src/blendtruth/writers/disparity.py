"""Disparity files other tools read: PFM (SceneFlow / Middlebury) and KITTI's 16-bit PNG.

- PFM: "Pf" (one float32 channel), width height, scale −1 (little endian), rows stored
  bottom to top as the format defines; 0 where there is no disparity.
- KITTI: uint16 PNG, value = round(d · 256), 0 = invalid; disparities are clipped to the
  format's range (0, 65535/256 ≈ 256 px); d < 1/512 px cannot be told from "invalid".
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from blendtruth.errors import BlendtruthError
from blendtruth.writers.atomic import atomic_open

KITTI_SCALE = 256.0


def write_pfm(path: Path, disparity: np.ndarray) -> None:
    """``disparity`` H×W (pixels) as a little-endian greyscale PFM."""
    d = np.asarray(disparity, dtype="<f4")
    if d.ndim != 2:
        raise BlendtruthError(f"{path}: PFM disparity must be H×W, got {d.shape}")
    header = f"Pf\n{d.shape[1]} {d.shape[0]}\n-1.0\n".encode("ascii")
    with atomic_open(path) as f:
        f.write(header)
        f.write(np.ascontiguousarray(d[::-1]).tobytes())


def write_kitti_disparity(path: Path, disparity: np.ndarray, valid: np.ndarray) -> None:
    """``disparity`` H×W (pixels) where ``valid``, as KITTI's uint16 PNG (d × 256)."""
    import cv2

    d = np.asarray(disparity, dtype=np.float64)
    counts = np.clip(np.round(d * KITTI_SCALE), 0, 65535).astype(np.uint16)
    counts[~np.asarray(valid, dtype=bool)] = 0
    ok, data = cv2.imencode(".png", counts)
    if not ok:
        raise BlendtruthError(f"{path}: PNG encoding failed")
    with atomic_open(path) as f:
        f.write(data.tobytes())
