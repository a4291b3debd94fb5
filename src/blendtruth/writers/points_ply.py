"""``points.ply`` and other point clouds as binary little-endian PLY, written atomically.

Points and normals are N×3 in whatever frame the caller states (blendtruth writes world
frame, scene units); colours are N×3 uint8 sRGB.
"""

from __future__ import annotations

import os

import numpy as np

from blendtruth.errors import BlendtruthError
from blendtruth.geometry.pointcloud import _attribute, _colors, _points
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
