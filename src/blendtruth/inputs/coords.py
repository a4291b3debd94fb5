"""Checks shared by the format readers: coordinates that are not finite float32 numbers,
and models whose float32 rounding is large against their own size.

Blender stores vertex coordinates as float32. A value that is NaN, infinite or beyond
float32's range (|x| > 3.4e38) comes out of Blender's importers as 0 or infinity, so it is
refused here, against the file's own text or bytes. Far from the origin a float32 step is
coarse: at 5e6 it is 0.5, so a 10 m model there is rounded by up to 0.25 m.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from pathlib import Path

import numpy as np

from blendtruth.errors import BlendtruthError, BlendtruthWarning
from blendtruth.geometry.pointcloud import bounding_box

FLOAT32_MAX = float(np.finfo(np.float32).max)
# Float32 rounding of a coordinate (half a float32 step at the largest |coordinate|), as a
# fraction of the model's bounding-box diagonal: above WARN a warning, above REFUSE an error.
PRECISION_WARN = 1e-5
PRECISION_REFUSE = 1e-3


def check_finite(path: Path, xyz: np.ndarray, where: Callable[[int], str]) -> None:
    """Raise naming ``path`` and ``where(row)`` for the first row of ``xyz`` (N×3, any
    float dtype) holding NaN, an infinity or a value that float32 cannot hold."""
    with np.errstate(invalid="ignore", over="ignore"):
        bad = ~(np.abs(xyz) <= FLOAT32_MAX)
    if bad.any():
        row = int(np.argmax(bad.any(axis=1)))
        value = xyz[row][bad[row]][0]
        raise BlendtruthError(
            f"{path}: {where(row)}: coordinate {float(value):g} is not a finite number "
            "that float32 (Blender's vertex type) can hold"
        )


class Bounds:
    """Running per-axis min/max of coordinates (file units), fed chunk by chunk."""

    def __init__(self) -> None:
        self.lo = np.full(3, np.inf)
        self.hi = np.full(3, -np.inf)

    def add(self, xyz: np.ndarray) -> None:
        if len(xyz):
            lo, hi = bounding_box(xyz)
            self.lo, self.hi = np.minimum(self.lo, lo), np.maximum(self.hi, hi)

    @property
    def empty(self) -> bool:
        return not np.isfinite(self.lo).all()


def rounding_error(lo: np.ndarray, hi: np.ndarray) -> tuple[float, float]:
    """(largest float32 rounding of a coordinate in the box [lo, hi], the box diagonal),
    both in the coordinates' units."""
    largest = float(max(np.abs(lo).max(), np.abs(hi).max()))
    step = float(np.spacing(np.float32(min(largest, FLOAT32_MAX))))
    return step / 2, float(np.linalg.norm(np.asarray(hi) - np.asarray(lo)))


def check_precision(path: Path | str, lo: np.ndarray, hi: np.ndarray, when: str) -> None:
    """Warn (rounding > PRECISION_WARN of the size) or raise (> PRECISION_REFUSE) when the
    box [lo, hi] loses precision in float32; ``when`` says where the rounding happens."""
    error, size = rounding_error(lo, hi)
    if size <= 0 or error <= PRECISION_WARN * size:
        return
    centre = (np.asarray(lo) + np.asarray(hi)) / 2
    text = (
        f"{path}: the model ({size:.4g} units across, centred at "
        f"({centre[0]:.6g}, {centre[1]:.6g}, {centre[2]:.6g})) is rounded by up to "
        f"{error:.3g} units ({error / size:.2%} of its size) {when}"
    )
    if error > PRECISION_REFUSE * size:
        raise BlendtruthError(
            f"{text}; move it near the origin first (above {PRECISION_REFUSE:.1%} is refused)"
        )
    warnings.warn(text, BlendtruthWarning, stacklevel=3)


def fromstring(text: bytes, dtype: type, expected: int) -> np.ndarray | None:
    """Whitespace-separated numbers parsed in C (fast), or None unless exactly
    ``expected`` values parsed (a token that is not a number stops numpy's parser)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        try:
            values = np.fromstring(text, dtype=dtype, sep=" ")
        except ValueError:
            return None
    return values if len(values) == expected else None
