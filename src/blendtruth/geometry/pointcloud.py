"""Point clouds: bounding boxes and voxel down-sampling (pure numpy; PLY files:
:mod:`blendtruth.writers.points_ply`).

Points and normals are N×3 in whatever frame the caller states (blendtruth writes world
frame, scene units); colours are N×3 uint8 sRGB.
"""

from __future__ import annotations

import numpy as np

from blendtruth.errors import BlendtruthError


def bounding_box(points: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(min, max) corners (3 each, the points' dtype) of N×3 ``points``, N > 0. One
    coordinate at a time: numpy's min over axis 0 of an N×3 array is ~20x slower."""
    return (np.array([points[:, k].min() for k in range(3)]),
            np.array([points[:, k].max() for k in range(3)]))  # fmt: skip


def _points(points: np.ndarray) -> np.ndarray:
    arr = np.asarray(points)
    if arr.ndim != 2 or arr.shape[1] != 3:
        raise BlendtruthError(f"points must have shape (N, 3), got {arr.shape}")
    arr = arr.astype(np.float64)
    if not np.isfinite(arr).all():
        raise BlendtruthError("points must be finite; drop pixels without a surface (NaN)")
    return arr


def _attribute(arr: np.ndarray | None, name: str, n: int) -> np.ndarray | None:
    if arr is None:
        return None
    arr = np.asarray(arr)
    if arr.shape != (n, 3):
        raise BlendtruthError(f"{name} must have shape ({n}, 3) like points, got {arr.shape}")
    return arr


def _colors(colors: np.ndarray | None, n: int) -> np.ndarray | None:
    colors = _attribute(colors, "colors", n)
    if colors is not None and colors.dtype != np.uint8:
        raise BlendtruthError(f"colors must be uint8 (0-255 sRGB), got dtype {colors.dtype}")
    return colors


def voxel_downsample(
    points: np.ndarray,
    voxel_size: float,
    normals: np.ndarray | None = None,
    colors: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray | None, np.ndarray | None]:
    """Average the samples in each occupied cubic voxel of edge ``voxel_size`` (same units
    as ``points``); voxels are aligned to the origin, [i·s, (i+1)·s) per axis.

    ``points``: N×3; ``normals``: optional N×3, averaged then renormalised to unit length
    (0 if they cancel); ``colors``: optional N×3 uint8, averaged and rounded. Returns
    (points M×3 float64, normals M×3 float64 or None, colors M×3 uint8 or None), one row
    per occupied voxel, ordered by voxel index. An averaged point lies within its voxel,
    but on a curved surface or across an edge it is off the surface by up to about half a
    voxel.
    """
    if not (np.isfinite(voxel_size) and voxel_size > 0):
        raise BlendtruthError(f"voxel size must be a number > 0, got {voxel_size}")
    points = _points(points)
    normals = _attribute(normals, "normals", len(points))
    colors = _colors(colors, len(points))
    if len(points) == 0:
        empty = np.zeros((0, 3))
        return (
            empty,
            None if normals is None else empty.copy(),
            None if colors is None else np.zeros((0, 3), np.uint8),
        )
    cells = np.floor(points / voxel_size).astype(np.int64)
    _, inverse, counts = np.unique(cells, axis=0, return_inverse=True, return_counts=True)
    inverse = inverse.reshape(-1)

    def mean(values: np.ndarray) -> np.ndarray:
        values = np.asarray(values, dtype=np.float64)
        sums = [np.bincount(inverse, weights=values[:, k], minlength=len(counts)) for k in range(3)]
        return np.column_stack(sums) / counts[:, None]

    out_normals = None
    if normals is not None:
        out_normals = mean(normals)
        norm = np.linalg.norm(out_normals, axis=1, keepdims=True)
        out_normals = np.divide(out_normals, norm, out=np.zeros_like(out_normals), where=norm > 0)
    out_colors = None if colors is None else np.rint(mean(colors)).astype(np.uint8)
    return mean(points), out_normals, out_colors
