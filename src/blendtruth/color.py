"""Colour encoding of the RGB image (pure numpy)."""

from __future__ import annotations

import numpy as np


def linear_to_srgb8(linear: np.ndarray) -> np.ndarray:
    """Scene-linear RGB -> 8-bit sRGB, as Blender's "Standard" view transform does.

    Clips to [0, 1] (NaN -> 0), applies the piecewise sRGB curve (IEC 61966-2-1) and rounds.
    Measured against Blender 4.5's own PNG output: equal but for ±1 on <0.01% of pixels.
    """
    # NaN (e.g. from NaN vertex colours in a model) becomes black, not an undefined byte.
    x = np.clip(np.nan_to_num(np.asarray(linear, dtype=np.float64), nan=0.0), 0.0, 1.0)
    srgb = np.where(x <= 0.0031308, 12.92 * x, 1.055 * np.power(x, 1 / 2.4) - 0.055)
    return np.round(srgb * 255.0).astype(np.uint8)
