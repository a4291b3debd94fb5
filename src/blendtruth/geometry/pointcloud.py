"""Point clouds: binary PLY writing/reading and voxel down-sampling (numpy).

Points and normals are N×3 in whatever frame the caller states (blendtruth writes world
frame, scene units); colours are N×3 uint8 sRGB.
"""

from __future__ import annotations

import os

import numpy as np

from blendtruth.errors import BlendtruthError
from blendtruth.writers.atomic import atomic_open


def bounding_box(points: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(min, max) corners (3 each, the points' dtype) of N×3 ``points``, N > 0. One
    coordinate at a time: numpy's min over axis 0 of an N×3 array is ~20x slower."""
    return (np.array([points[:, k].min() for k in range(3)]),
            np.array([points[:, k].max() for k in range(3)]))  # fmt: skip


def _vertex_dtype(normals: bool, colors: bool) -> np.dtype:
    fields = [("x", "<f4"), ("y", "<f4"), ("z", "<f4")]
    if normals:
        fields += [("nx", "<f4"), ("ny", "<f4"), ("nz", "<f4")]
    if colors:
        fields += [("red", "u1"), ("green", "u1"), ("blue", "u1")]
    return np.dtype(fields)


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


def write_ply(
    path: str | os.PathLike,
    points: np.ndarray,
    normals: np.ndarray | None = None,
    colors: np.ndarray | None = None,
    comments: list[str] | None = None,
) -> None:
    """Write a binary little-endian PLY atomically (temporary file beside ``path``,
    fsync, rename), so a reader never sees a partial file.

    ``points``: N×3 finite, stored as float32 x y z; ``normals``: optional N×3, stored as
    float32 nx ny nz; ``colors``: optional N×3 uint8, stored as uchar red green blue;
    ``comments``: optional header comment lines (no line breaks).
    """
    points = _points(points)
    n = len(points)
    normals = _attribute(normals, "normals", n)
    colors = _colors(colors, n)
    for comment in comments or []:
        if "\n" in comment or "\r" in comment:
            raise BlendtruthError(f"PLY comment must be one line, got {comment!r}")
    dtype = _vertex_dtype(normals is not None, colors is not None)
    data = np.empty(n, dtype=dtype)
    data["x"], data["y"], data["z"] = points.T
    if normals is not None:
        data["nx"], data["ny"], data["nz"] = normals.T
    if colors is not None:
        data["red"], data["green"], data["blue"] = colors.T
    props = "".join(
        f"property {'float' if dtype[name].kind == 'f' else 'uchar'} {name}\n"
        for name in dtype.names
    )
    notes = "".join(f"comment {c}\n" for c in ["written by blendtruth", *(comments or [])])
    header = f"ply\nformat binary_little_endian 1.0\n{notes}element vertex {n}\n{props}end_header\n"
    with atomic_open(path) as f:
        f.write(header.encode("ascii"))
        f.write(data.tobytes())


def read_ply(path: str | os.PathLike) -> dict[str, np.ndarray]:
    """Read a PLY as :func:`write_ply` writes it. Returns {"points": N×3 float32} plus
    "normals" (N×3 float32) and "colors" (N×3 uint8) when present."""
    with open(path, "rb") as f:
        lines = []
        while True:
            line = f.readline()
            if not line:
                raise BlendtruthError(f"{path}: PLY header has no end_header")
            lines.append(line.decode("ascii", errors="replace").strip())
            if lines[-1] == "end_header":
                break
        if lines[0] != "ply" or lines[1] != "format binary_little_endian 1.0":
            raise BlendtruthError(f"{path}: not a binary little-endian PLY")
        vertex = [ln for ln in lines if ln.startswith("element vertex")]
        if not vertex:
            raise BlendtruthError(f"{path}: PLY header has no vertex element")
        count = int(vertex[0].split()[2])
        names = [ln.split()[2] for ln in lines if ln.startswith("property")]
        dtype = _vertex_dtype("nx" in names, "red" in names)
        if names != list(dtype.names):
            raise BlendtruthError(f"{path}: unexpected PLY properties {names}")
        raw = f.read(count * dtype.itemsize)
    if len(raw) != count * dtype.itemsize:
        raise BlendtruthError(f"{path}: PLY is truncated ({len(raw)} bytes of vertex data)")
    data = np.frombuffer(raw, dtype=dtype, count=count)
    out = {"points": np.column_stack([data["x"], data["y"], data["z"]])}
    if "nx" in names:
        out["normals"] = np.column_stack([data["nx"], data["ny"], data["nz"]])
    if "red" in names:
        out["colors"] = np.column_stack([data["red"], data["green"], data["blue"]])
    return out


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
