"""glTF 2.0 (.gltf JSON or .glb binary): structure, referenced files and positions, in
pure Python + numpy, before Blender's importer allocates anything.

Checked: the GLB header and chunk lengths against the file size; JSON without NaN or
Infinity literals; every buffer's source (GLB binary chunk, base64 ``data:`` URI, or a
regular file inside the model's folder: absolute paths, ``..`` escapes, URLs, devices,
FIFOs and folders are refused) holding at least its ``byteLength``; buffer views inside
their buffers; accessors (and sparse parts) inside their buffer views, so a 500-byte file
cannot declare 2^31 elements; accessors without a buffer view no larger than the largest
one backed by data; image files like buffers; ``POSITION`` floats finite.
"""

from __future__ import annotations

import json
import os
import struct
from pathlib import Path
from typing import Any
from urllib.parse import unquote

import numpy as np

from blendtruth.errors import BlendtruthError
from blendtruth.inputs import refs
from blendtruth.inputs.coords import check_finite

_GLB_MAGIC = b"glTF"
_JSON_CHUNK = 0x4E4F534A
_BIN_CHUNK = 0x004E4942
_COMPONENT_BYTES = {5120: 1, 5121: 1, 5122: 2, 5123: 2, 5125: 4, 5126: 4}
_COMPONENTS = {"SCALAR": 1, "VEC2": 2, "VEC3": 3, "VEC4": 4, "MAT2": 4, "MAT3": 9, "MAT4": 16}
# Extensions whose buffer views hold compressed data the accessors do not describe.
_COMPRESSION = ("KHR_draco_mesh_compression", "EXT_meshopt_compression", "KHR_meshopt_compression")


class _Source:
    """Where a buffer's bytes are: (file, offset) or in memory."""

    def __init__(self, size: int, file: Path | None = None, offset: int = 0, data=b"") -> None:
        self.size, self.file, self.offset, self.data = size, file, offset, data

    def read(self, start: int, length: int) -> bytes:
        if self.file is None:
            return self.data[start : start + length]
        with open(self.file, "rb") as f:
            f.seek(self.offset + start)
            return f.read(length)


def check(path: Path) -> None:
    """Raise BlendtruthError naming ``path`` and the offending part of the glTF."""
    try:
        _check(path)
    except (TypeError, AttributeError, KeyError, IndexError, ValueError, ArithmeticError) as exc:
        # JSON can put any type anywhere; a value of the wrong type is a malformed file.
        raise BlendtruthError(
            f"{path}: malformed glTF (a value of the wrong type: {type(exc).__name__}: {exc})"
        ) from None


def _check(path: Path) -> None:
    doc, bin_chunk = _load(path)
    compressed = any(e in _COMPRESSION for e in _list(path, doc, "extensionsUsed"))
    sources = [
        _buffer(path, doc, i, b, bin_chunk) for i, b in enumerate(_list(path, doc, "buffers"))
    ]
    views = _list(path, doc, "bufferViews")
    for i, view in enumerate(views):
        _check_view(path, i, view, sources)
    backed = 0
    for i, acc in enumerate(_list(path, doc, "accessors")):
        backed = max(backed, _check_accessor(path, i, acc, views))
    for i, acc in enumerate(_list(path, doc, "accessors")):
        if acc.get("bufferView") is None and acc.get("count", 0) > max(backed, 1):
            raise BlendtruthError(
                f"{path}: accessor {i} declares {acc['count']} elements without data, more "
                f"than the largest accessor backed by data ({backed})"
            )
    for i, image in enumerate(_list(path, doc, "images")):
        if isinstance(image.get("uri"), str) and not image["uri"].startswith("data:"):
            _local_file(path, f"image {i}", image["uri"], must_exist=False)
    _check_mesh_references(path, doc)
    if not compressed:
        _check_positions(path, doc, views, sources)


def _check_mesh_references(path: Path, doc: dict) -> None:
    """Every accessor a mesh primitive names exists (Blender's importer fails with an
    IndexError traceback otherwise)."""
    n = len(_list(path, doc, "accessors"))
    for m, mesh in enumerate(_list(path, doc, "meshes")):
        prims = mesh.get("primitives", [])
        for p, prim in enumerate(prims if isinstance(prims, list) else []):
            if not isinstance(prim, dict):
                raise BlendtruthError(f"{path}: mesh {m} primitive {p} is not an object")
            named = [("indices", prim.get("indices"))]
            for attrs in [prim.get("attributes", {})] + list(prim.get("targets", [])):
                named += list(attrs.items()) if isinstance(attrs, dict) else []
            for what, a in named:
                if a is not None and not (isinstance(a, int) and 0 <= a < n):
                    raise BlendtruthError(
                        f"{path}: mesh {m} primitive {p} {what} names accessor {a!r}, but the "
                        f"file has {n} accessors"
                    )


def _load(path: Path) -> tuple[dict, _Source | None]:
    size = path.stat().st_size
    with open(path, "rb") as f:
        head = f.read(12)
        if head[:4] != _GLB_MAGIC:
            f.seek(0)
            return _parse_json(path, f.read()), None
        if len(head) < 12:
            raise BlendtruthError(f"{path}: the GLB header is cut ({size} bytes)")
        _, version, length = struct.unpack("<4sII", head)
        if version != 2:
            raise BlendtruthError(f"{path}: GLB version {version}; only glTF 2.0 is supported")
        if length > size:
            raise BlendtruthError(f"{path}: the GLB header says {length} bytes, the file has "
                                  f"{size} (the file is cut)")  # fmt: skip
        doc, bin_chunk, pos = None, None, 12
        while pos + 8 <= length:
            f.seek(pos)
            chunk_len, chunk_type = struct.unpack("<II", f.read(8))
            if pos + 8 + chunk_len > length:
                raise BlendtruthError(
                    f"{path}: a GLB chunk at byte {pos} declares {chunk_len} bytes, past the "
                    f"end of the {length}-byte file"
                )
            if chunk_type == _JSON_CHUNK and doc is None:
                doc = _parse_json(path, f.read(chunk_len))
            elif chunk_type == _BIN_CHUNK and bin_chunk is None:
                bin_chunk = _Source(chunk_len, path, pos + 8)
            pos += 8 + chunk_len
    if doc is None:
        raise BlendtruthError(f"{path}: the GLB file has no JSON chunk")
    return doc, bin_chunk


def _parse_json(path: Path, raw: bytes) -> dict:
    def no_constant(name: str) -> Any:
        raise ValueError(f"{name} is not valid JSON")

    try:
        doc = json.loads(raw.decode("utf-8-sig"), parse_constant=no_constant)
    except (UnicodeDecodeError, ValueError, RecursionError) as exc:
        raise BlendtruthError(f"{path}: not valid glTF JSON ({exc})") from None
    if not isinstance(doc, dict):
        raise BlendtruthError(f"{path}: not valid glTF JSON (the top level is not an object)")
    return doc


def _list(path: Path, doc: dict, key: str) -> list:
    value = doc.get(key, [])
    if not isinstance(value, list) or (key != "extensionsUsed" and not all(
            isinstance(v, dict) for v in value)):  # fmt: skip
        raise BlendtruthError(f"{path}: glTF '{key}' must be a list of objects")
    return value


def _whole(path: Path, what: str, value: Any, default: int | None = None) -> int:
    if value is None and default is not None:
        return default
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise BlendtruthError(f"{path}: {what} must be a whole number >= 0, got {value!r}")
    return value


def _buffer(path: Path, doc: dict, i: int, buf: dict, bin_chunk: _Source | None) -> _Source:
    declared = _whole(path, f"buffer {i} byteLength", buf.get("byteLength"))
    uri = buf.get("uri")
    if uri is None:
        if i == 0 and bin_chunk is not None:
            source = bin_chunk
        elif any(isinstance(e, dict) and e.get("fallback") for e in buf.get("extensions", {})
                 .values()):  # fmt: skip
            return _Source(declared)  # a placeholder for compressed data
        else:
            raise BlendtruthError(f"{path}: buffer {i} has no uri and no GLB binary chunk")
    elif not isinstance(uri, str):
        raise BlendtruthError(f"{path}: buffer {i} uri must be a string")
    elif uri.startswith("data:"):
        source = _data_uri(path, i, uri)
    else:
        file = _local_file(path, f"buffer {i}", uri, must_exist=True)
        source = _Source(file.stat().st_size, file)
    if source.size < declared:
        raise BlendtruthError(f"{path}: buffer {i} declares byteLength {declared} but its data "
                              f"has {source.size} bytes")  # fmt: skip
    source.size = declared
    return source


def _data_uri(path: Path, i: int, uri: str) -> _Source:
    import base64
    import binascii

    header, _, payload = uri.partition(",")
    if not header.endswith(";base64"):
        raise BlendtruthError(f"{path}: buffer {i}: only base64 data: URIs are supported")
    try:
        data = base64.b64decode(payload, validate=True)
    except (binascii.Error, ValueError):
        raise BlendtruthError(f"{path}: buffer {i}: the data: URI is not valid base64") from None
    return _Source(len(data), data=data)


def _local_file(path: Path, what: str, uri: str, must_exist: bool) -> Path:
    """The file a relative glTF ``uri`` names, refused unless inside the model's folder."""
    name = unquote(uri)
    if "://" in name or (len(name) > 1 and name[1] == ":" and name[0].isalpha()):
        raise BlendtruthError(f"{path}: {what} uri {uri!r} is a URL or drive path; only files "
                              "beside the model are read")  # fmt: skip
    if os.path.isabs(name):
        raise BlendtruthError(f"{path}: {what} uri {uri!r} is an absolute path; glTF files "
                              "name their files relative to the model")  # fmt: skip
    folder = os.path.normpath(path.parent.absolute())
    target = os.path.normpath(os.path.join(folder, name))
    if os.path.commonpath([folder, target]) != folder:
        raise BlendtruthError(f"{path}: {what} uri {uri!r} points outside the model's folder")
    refs.check_regular(path, what, Path(target), must_exist=must_exist)
    return Path(target)


def _check_view(path: Path, i: int, view: dict, sources: list[_Source]) -> None:
    b = _whole(path, f"bufferView {i} buffer", view.get("buffer"))
    if b >= len(sources):
        raise BlendtruthError(f"{path}: bufferView {i} names buffer {b}, which does not exist")
    offset = _whole(path, f"bufferView {i} byteOffset", view.get("byteOffset"), 0)
    length = _whole(path, f"bufferView {i} byteLength", view.get("byteLength"))
    if offset + length > sources[b].size:
        raise BlendtruthError(
            f"{path}: bufferView {i} spans bytes {offset}..{offset + length} of buffer {b}, "
            f"which has {sources[b].size}"
        )


def _element_bytes(path: Path, i: int, acc: dict) -> int:
    kind, comp = acc.get("type"), acc.get("componentType")
    if kind not in _COMPONENTS or comp not in _COMPONENT_BYTES:
        raise BlendtruthError(f"{path}: accessor {i} has type {kind!r} / componentType {comp!r}")
    return _COMPONENTS[kind] * _COMPONENT_BYTES[comp]


def _span(path: Path, what: str, views: list, v: Any, offset: int, count: int, elem: int) -> None:
    v = _whole(path, f"{what} bufferView", v)
    if v >= len(views):
        raise BlendtruthError(f"{path}: {what} names bufferView {v}, which does not exist")
    view = views[v]
    stride = view.get("byteStride") or elem
    need = offset + stride * (count - 1) + elem if count else 0
    if need > view["byteLength"]:
        raise BlendtruthError(
            f"{path}: {what} declares {count} elements ({need} bytes) but bufferView {v} "
            f"holds {view['byteLength']} bytes"
        )


def _check_accessor(path: Path, i: int, acc: dict, views: list) -> int:
    """Raise if accessor ``i`` reaches past its data; return its count if backed by data."""
    elem = _element_bytes(path, i, acc)
    count = _whole(path, f"accessor {i} count", acc.get("count"))
    offset = _whole(path, f"accessor {i} byteOffset", acc.get("byteOffset"), 0)
    sparse = acc.get("sparse")
    if isinstance(sparse, dict):
        n = _whole(path, f"accessor {i} sparse count", sparse.get("count"))
        if n > count:
            raise BlendtruthError(f"{path}: accessor {i} has {n} sparse elements of {count}")
        for part, size in (("indices", None), ("values", elem)):
            entry = sparse.get(part) or {}
            if size is None:
                size = _COMPONENT_BYTES.get(entry.get("componentType"), 4)
            off = _whole(path, f"accessor {i} sparse {part} byteOffset", entry.get("byteOffset"), 0)
            _span(path, f"accessor {i} sparse {part}", views, entry.get("bufferView"), off, n, size)
    if acc.get("bufferView") is None:
        return 0
    _span(path, f"accessor {i}", views, acc["bufferView"], offset, count, elem)
    return count


def _check_positions(path: Path, doc: dict, views: list, sources: list[_Source]) -> None:
    accessors = doc.get("accessors", [])
    seen = set()
    for m, mesh in enumerate(_list(path, doc, "meshes")):
        for p, prim in enumerate(mesh.get("primitives", [])):
            sets = [prim.get("attributes", {})] + list(prim.get("targets", []))
            for attrs in sets:
                a = attrs.get("POSITION") if isinstance(attrs, dict) else None
                if not isinstance(a, int) or a in seen or not 0 <= a < len(accessors):
                    continue
                seen.add(a)
                xyz = _read_vec3(accessors[a], views, sources)
                if xyz is not None:
                    check_finite(path, xyz, lambda row, m=m, p=p, a=a: (
                        f"mesh {m} primitive {p} accessor {a} vertex {row}"))  # fmt: skip


def _read_vec3(acc: dict, views: list, sources: list[_Source]) -> np.ndarray | None:
    """An N×3 float64 array of a float VEC3 accessor's stored values, or None."""
    if acc.get("type") != "VEC3" or acc.get("componentType") != 5126:
        return None
    if acc.get("bufferView") is None or acc["count"] == 0:
        return None
    view = views[acc["bufferView"]]
    stride = view.get("byteStride") or 12
    start = view.get("byteOffset", 0) + acc.get("byteOffset", 0)
    raw = sources[view["buffer"]].read(start, stride * (acc["count"] - 1) + 12)
    if len(raw) < stride * (acc["count"] - 1) + 12:
        return None  # a compression placeholder: no bytes to read
    rows = np.ndarray((acc["count"], 3), dtype="<f4", buffer=raw, strides=(stride, 4))
    return rows.astype(np.float64)


def animation_names(path: Path) -> list[str]:
    """The names of a glTF/GLB file's animations in the file's order (index i of
    ``--animation``); an unnamed one is "" (Blender names its action itself)."""
    doc, _ = _load(Path(path))
    return [str(a.get("name", "")) if isinstance(a, dict) else "" for a in _list(path, doc,
            "animations")]  # fmt: skip
