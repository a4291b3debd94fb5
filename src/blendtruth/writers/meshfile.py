"""``mesh.ply``: the triangles a model's ground truth was rendered from (world frame).

Contract: binary little-endian PLY; ``element vertex`` with float32 ``x y z`` (world frame,
scene units; further scalar vertex properties are allowed and skipped); ``element face``
with ``property list uchar int vertex_indices`` (or ``uint``), every face a triangle.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from blendtruth.errors import BlendtruthError
from blendtruth.writers.atomic import atomic_open

_SCALARS = {
    "char": "i1", "int8": "i1", "uchar": "u1", "uint8": "u1",
    "short": "<i2", "int16": "<i2", "ushort": "<u2", "uint16": "<u2",
    "int": "<i4", "int32": "<i4", "uint": "<u4", "uint32": "<u4",
    "float": "<f4", "float32": "<f4", "double": "<f8", "float64": "<f8",
}  # fmt: skip


def write_mesh_ply(path: str | os.PathLike, vertices: np.ndarray, faces: np.ndarray) -> None:
    """Write V×3 vertices (cast to float32) and F×3 triangle indices per the contract."""
    vertices = np.asarray(vertices, dtype="<f4")
    faces = np.asarray(faces)
    if vertices.ndim != 2 or vertices.shape[1] != 3 or faces.ndim != 2 or faces.shape[1] != 3:
        raise BlendtruthError(f"{path}: mesh needs V×3 vertices and F×3 triangles")
    header = (
        "ply\nformat binary_little_endian 1.0\n"
        "comment world frame, scene units (blendtruth conventions: see cameras.json)\n"
        f"element vertex {len(vertices)}\nproperty float x\nproperty float y\nproperty float z\n"
        f"element face {len(faces)}\nproperty list uchar int vertex_indices\nend_header\n"
    )
    rows = np.empty(len(faces), dtype=[("n", "u1"), ("i", "<i4", (3,))])
    rows["n"] = 3
    rows["i"] = faces
    with atomic_open(path) as f:
        f.write(header.encode("ascii"))
        f.write(vertices.tobytes())
        f.write(rows.tobytes())


def read_mesh_ply(path: str | os.PathLike) -> tuple[np.ndarray, np.ndarray]:
    """(vertices V×3 float64, faces F×3 int64) of a ``mesh.ply`` per the contract."""
    path = Path(path)
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise BlendtruthError(f"{path}: cannot read mesh ({exc.strerror})") from None
    end = data.find(b"end_header\n")
    if not data.startswith(b"ply\n") or end < 0:
        raise BlendtruthError(f"{path}: not a PLY file")
    lines = data[:end].decode("ascii", "replace").splitlines()
    if "format binary_little_endian 1.0" not in lines:
        raise BlendtruthError(f"{path}: mesh.ply must be binary little-endian")
    elements: list[list] = []  # [name, count, [(prop, dtype | list types)]]
    for line in lines:
        words = line.split()
        if words[:1] == ["element"]:
            elements.append([words[1], int(words[2]), []])
        elif words[:1] == ["property"] and elements:
            elements[-1][2].append(words[1:])
    offset = end + len(b"end_header\n")
    vertices = faces = None
    try:
        for name, count, props in elements:
            if any(p[0] == "list" for p in props):
                if name != "face" or len(props) != 1 or props[0][1] not in ("uchar", "uint8"):
                    raise BlendtruthError(f"{path}: unsupported list element {name!r}")
                dtype = np.dtype([("n", "u1"), ("i", _SCALARS[props[0][2]], (3,))])
                rows = np.frombuffer(data, dtype=dtype, count=count, offset=offset)
                if (rows["n"] != 3).any():
                    raise BlendtruthError(f"{path}: every face must be a triangle")
                faces = rows["i"].astype(np.int64)
            else:
                dtype = np.dtype([(p[1], _SCALARS[p[0]]) for p in props])
                rows = np.frombuffer(data, dtype=dtype, count=count, offset=offset)
                if name == "vertex":
                    vertices = np.stack([rows[c] for c in "xyz"], axis=1).astype(np.float64)
            offset += dtype.itemsize * count
    except (KeyError, ValueError) as exc:
        raise BlendtruthError(f"{path}: malformed mesh.ply ({exc})") from None
    if vertices is None or faces is None:
        raise BlendtruthError(f"{path}: mesh.ply needs vertex and face elements")
    if len(faces) and (faces.min() < 0 or faces.max() >= len(vertices)):
        raise BlendtruthError(f"{path}: face indices out of range")
    return vertices, faces


def write_triangles_ply(path: str | os.PathLike, vertices: np.ndarray, faces: np.ndarray) -> None:
    """Write a scene's indexed triangles (V×3 world ``vertices``, T×3 ``faces``) as
    ``mesh.ply``: Blender's vertex sharing, faces in the order of the triangles, less any
    vertex no triangle uses."""
    used = np.zeros(len(vertices), bool)
    used[faces] = True
    if not used.all():
        index = np.cumsum(used) - 1
        vertices, faces = vertices[used], index[faces]
    write_mesh_ply(path, vertices, faces)
