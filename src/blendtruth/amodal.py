"""Amodal masks: each instance's full silhouette, ignoring what occludes it (pure numpy).

Stored compactly in the view file as ``amodal`` (uint8 N×ceil(H·W/8), the row-major
H×W masks bit-packed with ``numpy.packbits``) and ``amodal_ids`` (int32 N, the instance id
of each row). ``unpack`` restores the N×H×W bool masks.
"""

from __future__ import annotations

import numpy as np


def pack(masks: np.ndarray) -> np.ndarray:
    """bool N×H×W -> uint8 N×ceil(H·W/8)."""
    return np.packbits(masks.reshape(len(masks), -1), axis=1)


def unpack(packed: np.ndarray, height: int, width: int) -> np.ndarray:
    """The inverse of :func:`pack`: bool N×H×W."""
    bits = np.unpackbits(packed, axis=1, count=height * width)
    return bits.reshape(len(packed), height, width).astype(bool)


def summary(ids: np.ndarray, masks: np.ndarray, instance: np.ndarray | None) -> dict:
    """Per instance id: amodal pixel count, visible pixel count and visible fraction
    (visible / amodal; 1 = unoccluded, None when the instance is out of view)."""
    out = {}
    for inst, mask in zip(ids.tolist(), masks, strict=True):
        full = int(mask.sum())
        seen = int((instance == inst).sum()) if instance is not None else None
        frac = None if not full or seen is None else round(seen / full, 6)
        out[str(inst)] = {"amodal_pixels": full, "visible_pixels": seen, "visible_fraction": frac}
    return out
