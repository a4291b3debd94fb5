"""Hostile model files, generated small in a test's folder (see docs/inputs.md)."""

from __future__ import annotations

import base64
import json
import struct
from pathlib import Path

import numpy as np

TRIANGLE = np.array([[0.0, 0.0, 0.0], [1.0, 0.0, 0.0], [0.0, 1.0, 0.0]])


def obj(path: Path, vertices: list[str] | None = None, faces: str = "f 1 2 3") -> Path:
    lines = ["v " + v for v in (vertices or ["0 0 0", "1 0 0", "0 1 0"])]
    path.write_text("\n".join(lines + [faces]) + "\n")
    return path


def stl_ascii(path: Path, coords: list[str] | None = None, cut: bool = False) -> Path:
    coords = coords or ["0 0 0", "1 0 0", "0 1 0"]
    text = "solid t\nfacet normal 0 0 1\nouter loop\n"
    text += "".join(f"vertex {c}\n" for c in coords)
    text += "endloop\nendfacet\nendsolid t\n"
    if cut:
        text = text[: text.index("endloop")]
    path.write_text(text)
    return path


def stl_binary(path: Path, tris: np.ndarray) -> Path:
    tris = np.asarray(tris, dtype="<f4").reshape(-1, 9)
    rec = np.zeros(len(tris), dtype=[("n", "<f4", (3,)), ("v", "<f4", (9,)), ("a", "<u2")])
    rec["v"] = tris
    path.write_bytes(b"\0" * 80 + struct.pack("<I", len(tris)) + rec.tobytes())
    return path


def ply(
    path: Path, vertices: np.ndarray, binary: bool, count: int | None = None, dtype: str = "float"
) -> Path:
    n = len(vertices) if count is None else count
    fmt = "binary_little_endian" if binary else "ascii"
    header = (
        f"ply\nformat {fmt} 1.0\nelement vertex {n}\nproperty {dtype} x\n"
        f"property {dtype} y\nproperty {dtype} z\nelement face 1\n"
        "property list uchar int vertex_indices\nend_header\n"
    )
    if binary:
        kind = "<f4" if dtype == "float" else "<f8"
        body = np.asarray(vertices, dtype=kind).tobytes() + struct.pack("<B3i", 3, 0, 1, 2)
    else:
        body = "".join(" ".join(str(c) for c in v) + "\n" for v in vertices).encode()
        body += b"3 0 1 2\n"
    path.write_bytes(header.encode() + body)
    return path


def gltf_doc(
    positions: np.ndarray | None = None,
    count: int | None = None,
    uri: str | None = None,
    byte_length: int | None = None,
) -> tuple[dict, bytes]:
    """A one-triangle glTF document and its binary buffer."""
    positions = TRIANGLE if positions is None else positions
    data = np.asarray(positions, dtype="<f4").tobytes()
    buffer = {"byteLength": len(data) if byte_length is None else byte_length}
    if uri is not None:
        buffer["uri"] = uri
    doc = {
        "asset": {"version": "2.0"},
        "scenes": [{"nodes": [0]}],
        "nodes": [{"mesh": 0}],
        "meshes": [{"primitives": [{"attributes": {"POSITION": 0}}]}],
        "buffers": [buffer],
        "bufferViews": [{"buffer": 0, "byteLength": len(data)}],
        "accessors": [{"bufferView": 0, "componentType": 5126, "type": "VEC3",
                       "count": len(positions) if count is None else count,
                       "min": [0, 0, 0], "max": [1, 1, 0]}],
    }  # fmt: skip
    return doc, data


def gltf(path: Path, doc: dict, data: bytes | None = None) -> Path:
    """``doc`` as .gltf with ``data`` as a data: URI when the buffer has no uri."""
    if data is not None and "uri" not in doc["buffers"][0]:
        doc["buffers"][0]["uri"] = (
            "data:application/octet-stream;base64," + base64.b64encode(data).decode()
        )
    path.write_text(json.dumps(doc))
    return path


def glb(path: Path, doc: dict, data: bytes) -> Path:
    text = json.dumps(doc).encode()
    text += b" " * (-len(text) % 4)
    data += b"\0" * (-len(data) % 4)
    body = struct.pack("<II", len(text), 0x4E4F534A) + text
    body += struct.pack("<II", len(data), 0x004E4942) + data
    path.write_bytes(struct.pack("<4sII", b"glTF", 2, 12 + len(body)) + body)
    return path
