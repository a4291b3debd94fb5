"""Wavefront OBJ, read the way Blender's importer would, before it sees the file.

Checked: every ``v`` line has three numeric, finite, float32-representable coordinates;
every ``f`` line has at least three vertex indices, none 0 and none pointing past the
vertices (negative indices count back from the vertices read so far); float32 rounding
of the coordinates. Returns the ``mtllib`` names for :mod:`blendtruth.inputs.refs`.
Memory is bounded: the file is read in chunks of whole lines.
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np

from blendtruth.errors import BlendtruthError
from blendtruth.inputs.coords import Bounds, check_finite, check_precision, fromstring

CHUNK_BYTES = 1 << 22
_INDEX = re.compile(rb"[ \t](-?\d+)")
_VERTEX = re.compile(rb"(?m)^v[ \t]+(\S+[ \t]+\S+[ \t]+\S+)")
_FACE = re.compile(rb"(?m)^f[ \t]+([^\n]*)")
_SLASHES = re.compile(rb"/(-?\d*)(?:/(-?\d+))?")
_FACE_LINE = re.compile(rb"(?m)^f[ \t][^\n]*")
_AFTER_SLASH = re.compile(rb"/\S*")
_MTLLIB = re.compile(rb"(?m)^mtllib[ \t]+([^\n]*)")


def check(path: Path) -> list[str]:
    """Raise BlendtruthError naming ``path`` and the line; return the mtllib entries."""
    bounds = Bounds()
    n_vertices = 0
    max_index = 0
    # Texture-coordinate and normal indices ("f v/vt/vn"): element counts, largest index.
    n_ref = {b"vt": 0, b"vn": 0}
    max_ref = {b"vt": 0, b"vn": 0}
    first_line = 1
    mtllibs: list[str] = []
    for chunk in _chunks(path):
        lines = None  # split only on the slow path that names a line

        def split(chunk=chunk):
            nonlocal lines
            lines = chunk.split(b"\n") if lines is None else lines
            return lines

        xyz_text = _VERTEX.findall(chunk)
        n_v = chunk.count(b"\nv ") + chunk.count(b"\nv\t") + (chunk[:2] in (b"v ", b"v\t"))
        if len(xyz_text) != n_v:
            _fail_line(path, split(), first_line, _short_vertex)
        if xyz_text:
            xyz = fromstring(b" ".join(xyz_text), np.float64, 3 * n_v)
            if xyz is None:
                raise BlendtruthError(_locate_bad_number(path, split(), first_line))
            xyz = xyz.reshape(-1, 3)
            check_finite(path, xyz, lambda row, first=first_line: _vertex_line(
                split(), first, row))  # fmt: skip
            bounds.add(xyz)
        bodies = _FACE.findall(chunk)
        if bodies:
            counts = np.fromiter(map(len, map(bytes.split, bodies)), np.int64, len(bodies))
            if counts.min() < 3:
                _fail_line(path, split(), first_line, _short_face)
            text = _AFTER_SLASH.sub(b"", b" ".join(bodies))
            idx = fromstring(text, np.int64, int(counts.sum()))
            if idx is None:
                raise BlendtruthError(_locate_bad_index(path, split(), first_line))
            if idx.min() <= 0:
                # Zero is never valid; negative indices depend on the line, so check exactly.
                _check_relative(path, split(), first_line, n_vertices)
            max_index = max(max_index, int(idx.max()))
        for kind in n_ref:
            n_ref[kind] += chunk.count(b"\n" + kind + b" ") + chunk.startswith(kind + b" ")
        joined = b" ".join(bodies)
        if b"/" in joined:
            pairs = _SLASHES.findall(joined)
            for kind, col in ((b"vt", 0), (b"vn", 1)):
                values = [p[col] for p in pairs if p[col]]
                refs = fromstring(b" ".join(values), np.int64, len(values))
                if refs is None or not len(refs):
                    continue
                if refs.min() == 0 or -refs.min() > n_ref[kind]:
                    totals = n_ref | {b"v": n_vertices + n_v}
                    _fail_line(path, split(), first_line, lambda line, t=totals: _bad_reference(
                        line, t))  # fmt: skip
                max_ref[kind] = max(max_ref[kind], int(refs.max()))
        n_vertices += n_v
        mtllibs += [m.strip().decode("utf-8", "replace") for m in _MTLLIB.findall(chunk)]
        first_line += chunk.count(b"\n")
    totals = n_ref | {b"v": n_vertices}
    if max_index > n_vertices or any(max_ref[k] > n_ref[k] for k in n_ref):
        first_line = 1
        for chunk in _chunks(path):
            if any(_bad_reference(line, totals) for line in _FACE_LINE.findall(chunk)):
                _fail_line(path, chunk.split(b"\n"), first_line, lambda line: _bad_reference(
                    line, totals))  # fmt: skip
            first_line += chunk.count(b"\n")
    if not bounds.empty:
        check_precision(path, bounds.lo, bounds.hi, "when Blender stores it in float32")
    return mtllibs


def _chunks(path: Path):
    """Whole lines, about CHUNK_BYTES at a time, each chunk ending in a newline."""
    with open(path, "rb") as f:
        rest = b""
        while True:
            block = f.read(CHUNK_BYTES)
            if not block:
                if rest:
                    yield rest + b"\n"
                return
            block = rest + block
            cut = block.rfind(b"\n") + 1
            if cut:
                yield block[:cut].replace(b"\r", b" ")
                rest = block[cut:]
            else:
                rest = block


def _fail_line(path: Path, lines: list[bytes], first: int, problem) -> None:
    for k, line in enumerate(lines):
        reason = problem(line)
        if reason:
            raise BlendtruthError(f"{path}: line {first + k}: {reason}")
    raise AssertionError("no offending line found")  # pragma: no cover


def _short_vertex(line: bytes) -> str | None:
    if line[:2] in (b"v ", b"v\t") and len(line.split()) < 4:
        return "a vertex needs three coordinates (x y z)"
    return None


def _short_face(line: bytes) -> str | None:
    if line[:2] in (b"f ", b"f\t"):
        n = len(line.split()) - 1
        if n < 3:
            return f"a face with {n} vertex index(es); a face needs at least 3"
    return None


_NAMES = {b"v": "vertices", b"vt": "texture coordinates", b"vn": "normals"}


def _bad_reference(line: bytes, totals: dict[bytes, int]) -> str | None:
    """Why a face line names an element past (or, negative, before) the file's ``totals``
    of v, vt and vn, or None."""
    if line[:2] not in (b"f ", b"f\t"):
        return None
    for token in line.split()[1:]:
        for kind, text in zip((b"v", b"vt", b"vn"), token.split(b"/"), strict=False):
            if text.lstrip(b"-").isdigit():
                i, n = int(text), totals[kind]
                if i == 0 or i > n or -i > n:
                    what = "vertex" if kind == b"v" else _NAMES[kind][:-1]
                    return f"face {what} index {i} is outside the file's {n} {_NAMES[kind]}"
    return None


def _check_relative(path: Path, lines: list[bytes], first: int, n_before: int) -> None:
    count = n_before
    for k, line in enumerate(lines):
        head = line[:2]
        if head in (b"v ", b"v\t"):
            count += 1
        elif head in (b"f ", b"f\t"):
            for token in _INDEX.findall(line):
                i = int(token)
                if i == 0 or -i > count:
                    what = "0 (OBJ counts from 1)" if i == 0 else f"{i}, before the first vertex"
                    raise BlendtruthError(f"{path}: line {first + k}: face index {what}")


def _locate_bad_index(path: Path, lines: list[bytes], first: int) -> str:
    for k, line in enumerate(lines):
        if line[:2] in (b"f ", b"f\t"):
            for token in line.split()[1:]:
                head = token.split(b"/")[0]
                if not head.lstrip(b"-").isdigit():
                    text = token.decode("utf-8", "replace")
                    return f"{path}: line {first + k}: face index {text!r} is not a whole number"
    return f"{path}: a face index is not a whole number"  # pragma: no cover


def _locate_bad_number(path: Path, lines: list[bytes], first: int) -> str:
    for k, line in enumerate(lines):
        if line[:2] in (b"v ", b"v\t"):
            for token in line.split()[1:4]:
                try:
                    float(token)
                except ValueError:
                    text = token.decode("utf-8", "replace")
                    return f"{path}: line {first + k}: vertex coordinate {text!r} is not a number"
    return f"{path}: a vertex coordinate is not a number"  # pragma: no cover


def _vertex_line(lines: list[bytes], first: int, row: int) -> str:
    seen = -1
    for k, line in enumerate(lines):
        if line[:2] in (b"v ", b"v\t"):
            seen += 1
            if seen == row:
                return f"line {first + k}"
    return "a vertex"  # pragma: no cover
