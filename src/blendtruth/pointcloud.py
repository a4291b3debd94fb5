"""Point clouds: binary PLY writing/reading and voxel down-sampling (pure numpy)."""

from __future__ import annotations

import os

import numpy as np

from blendtruth.errors import BlendtruthError
from blendtruth.writers.atomic import atomic_open


def _vertex_dtype(normals: bool, colors: bool) -> np.dtype:
    fields = [("x", "<f4"), ("y", "<f4"), ("z", "<f4")]
    if normals:
        fields += [("nx", "<f4"), ("ny", "<f4"), ("nz", "<f4")]
    if colors:
        fields += [("red", "u1"), ("green", "u1"), ("blue", "u1")]
    return np.dtype(fields)


def write_ply(
    path: str | os.PathLike,
    points: np.ndarray,
    normals: np.ndarray | None = None,
    colors: np.ndarray | None = None,
    comments: list[str] | None = None,
) -> None:
    """Write N×3 points (float32 x y z), optional N×3 normals and N×3 uint8 colours as a
    binary little-endian PLY, atomically; ``comments`` go into the header."""
    points = np.asarray(points)
    if points.ndim != 2 or points.shape[1] != 3:
        raise BlendtruthError(f"points must have shape (N, 3), got {points.shape}")
    for name, arr in (("normals", normals), ("colors", colors)):
        if arr is not None and np.shape(arr) != points.shape:
            raise BlendtruthError(f"{name} must have shape {points.shape}, got {np.shape(arr)}")
    dtype = _vertex_dtype(normals is not None, colors is not None)
    data = np.empty(len(points), dtype=dtype)
    data["x"], data["y"], data["z"] = points.T
    if normals is not None:
        data["nx"], data["ny"], data["nz"] = np.asarray(normals).T
    if colors is not None:
        data["red"], data["green"], data["blue"] = np.asarray(colors, dtype=np.uint8).T
    props = "".join(
        f"property {'float' if dtype[name].kind == 'f' else 'uchar'} {name}\n"
        for name in dtype.names
    )
    notes = "".join(f"comment {c}\n" for c in ["written by blendtruth", *(comments or [])])
    header = (
        f"ply\nformat binary_little_endian 1.0\n{notes}"
        f"element vertex {len(points)}\n{props}end_header\n"
    )
    with atomic_open(path) as f:
        f.write(header.encode("ascii"))
        f.write(data.tobytes())


def read_ply(path: str | os.PathLike) -> dict[str, np.ndarray]:
    """Read a PLY written by :func:`write_ply`: keys points, and normals/colors if present."""
    with open(path, "rb") as f:
        lines = []
        while True:
            line = f.readline()
            if not line:
                raise BlendtruthError(f"{path}: PLY header has no end_header")
            lines.append(line.decode("ascii").strip())
            if lines[-1] == "end_header":
                break
        if lines[1] != "format binary_little_endian 1.0":
            raise BlendtruthError(f"{path}: only binary little-endian PLY is read here")
        count = next(int(ln.split()[2]) for ln in lines if ln.startswith("element vertex"))
        names = [ln.split()[2] for ln in lines if ln.startswith("property")]
        dtype = _vertex_dtype("nx" in names, "red" in names)
        data = np.frombuffer(f.read(count * dtype.itemsize), dtype=dtype, count=count)
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
    """Keep one real sample per cubic voxel of edge ``voxel_size``: the one nearest the
    voxel's centre. Unlike averaging, every kept point is a measured surface point, so a
    cloud of surface samples stays exactly on the surface. Returns (points, normals, colors)
    with None where none were given."""
    if not voxel_size > 0:
        raise BlendtruthError(f"voxel size must be > 0, got {voxel_size}")
    points = np.asarray(points, dtype=np.float64)
    if len(points) == 0:
        return points, normals, colors
    cells = np.floor(points / voxel_size)
    offset = np.linalg.norm(points - (cells + 0.5) * voxel_size, axis=1)
    order = np.lexsort((offset, cells[:, 2], cells[:, 1], cells[:, 0]))
    sorted_cells = cells[order]
    first = np.ones(len(order), dtype=bool)
    first[1:] = np.any(sorted_cells[1:] != sorted_cells[:-1], axis=1)
    keep = np.sort(order[first])
    return (
        points[keep],
        None if normals is None else np.asarray(normals)[keep],
        None if colors is None else np.asarray(colors)[keep],
    )
