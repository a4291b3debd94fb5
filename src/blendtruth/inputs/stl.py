"""STL, binary or ASCII, decided the way Blender's importer decides: a file whose size is
exactly 84 + 50 × (its declared triangle count) is binary, anything else is ASCII.

Binary: every vertex coordinate is a finite float32 (checked with numpy, a bounded number
of triangles at a time). ASCII: every ``vertex`` line has three numeric, finite,
float32-representable coordinates, every ``facet`` is closed by ``endfacet``, the file ends
with ``endsolid`` (a cut file is refused), and float32 rounding is checked.
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np

from blendtruth.errors import BlendtruthError
from blendtruth.inputs.coords import Bounds, check_finite, check_precision, fromstring
from blendtruth.inputs.obj import _chunks

_TRIANGLE = np.dtype([("normal", "<f4", (3,)), ("vertices", "<f4", (9,)), ("attr", "<u2")])
TRIANGLES_PER_READ = 1 << 20
_VERTEX = re.compile(rb"(?m)^[ \t]*vertex[ \t]+(\S+[ \t]+\S+[ \t]+\S+)")
_VERTEX_LINE = re.compile(rb"(?m)^[ \t]*vertex\b")
_FACET = re.compile(rb"(?m)^[ \t]*facet\b")
_ENDFACET = re.compile(rb"(?m)^[ \t]*endfacet\b")
_NEWLINE = b"\n"
_ENDSOLID = re.compile(rb"(?m)^[ \t]*endsolid\b")


def check(path: Path) -> None:
    """Raise BlendtruthError naming ``path`` (and the line or triangle) if it is unusable."""
    size = path.stat().st_size
    with open(path, "rb") as f:
        head = f.read(84)
    if len(head) == 84:
        count = int.from_bytes(head[80:84], "little")
        if size == 84 + 50 * count:
            _check_binary(path, count)
            return
    _check_ascii(path, head, size)


def _check_binary(path: Path, count: int) -> None:
    with open(path, "rb") as f:
        f.seek(84)
        done = 0
        while done < count:
            tris = np.fromfile(f, dtype=_TRIANGLE, count=min(TRIANGLES_PER_READ, count - done))
            xyz = tris["vertices"].reshape(-1, 3)
            check_finite(path, xyz, lambda row, done=done: f"triangle {done + row // 3}")
            done += len(tris)


def _check_ascii(path: Path, head: bytes, size: int) -> None:
    if not head.lstrip().startswith(b"solid"):
        declared = int.from_bytes(head[80:84], "little") if len(head) == 84 else None
        binary = (
            f"a binary STL declaring {declared} triangles would be {84 + 50 * declared} bytes"
            if declared is not None
            else "too short for a binary STL"
        )
        raise BlendtruthError(
            f"{path}: not an STL file: it does not start with 'solid' (ASCII) and {binary}, "
            f"but the file has {size} bytes (cut or not an STL)"
        )
    bounds = Bounds()
    first_line = 1
    open_facet_line = 0
    unclosed = 0
    ended = False
    for chunk in _chunks(path):
        xyz_text = _VERTEX.findall(chunk)
        if len(xyz_text) != len(_VERTEX_LINE.findall(chunk)):
            _fail(path, chunk, first_line, "a vertex needs three coordinates (x y z)")
        if xyz_text:
            xyz = fromstring(b" ".join(xyz_text), np.float64, 3 * len(xyz_text))
            if xyz is None:
                _fail_number(path, chunk, first_line)
            xyz = xyz.reshape(-1, 3)
            check_finite(path, xyz, lambda row, c=chunk, first=first_line: _nth_vertex_line(
                c, first, row))  # fmt: skip
            bounds.add(xyz)
        opens = [m.start() for m in _FACET.finditer(chunk)]
        unclosed += len(opens) - len(_ENDFACET.findall(chunk))
        if unclosed not in (0, 1):
            raise BlendtruthError(
                f"{path}: 'facet' and 'endfacet' do not pair up before line "
                f"{first_line + chunk.count(_NEWLINE)}"
            )
        if unclosed and opens:
            open_facet_line = first_line + chunk.count(_NEWLINE, 0, opens[-1])
        ended = ended or bool(_ENDSOLID.search(chunk))
        first_line += chunk.count(b"\n")
    if unclosed:
        raise BlendtruthError(
            f"{path}: the file is cut: the facet at line {open_facet_line} has no 'endfacet'"
        )
    if not ended:
        raise BlendtruthError(f"{path}: the file is cut: no 'endsolid' at the end")
    if not bounds.empty:
        check_precision(path, bounds.lo, bounds.hi, "when Blender stores it in float32")


def _fail(path: Path, chunk: bytes, first: int, reason: str) -> None:
    for k, line in enumerate(chunk.split(b"\n")):
        if line.split()[:1] == [b"vertex"] and len(line.split()) < 4:
            raise BlendtruthError(f"{path}: line {first + k}: {reason}")
    raise BlendtruthError(f"{path}: {reason}")  # pragma: no cover


def _fail_number(path: Path, chunk: bytes, first: int) -> None:
    for k, line in enumerate(chunk.split(b"\n")):
        tokens = line.split()
        if tokens[:1] == [b"vertex"]:
            for token in tokens[1:4]:
                try:
                    float(token)
                except ValueError:
                    text = token.decode("utf-8", "replace")
                    raise BlendtruthError(
                        f"{path}: line {first + k}: vertex coordinate {text!r} is not a number"
                    ) from None
    raise BlendtruthError(f"{path}: a vertex coordinate is not a number")  # pragma: no cover


def _nth_vertex_line(chunk: bytes, first: int, row: int) -> str:
    match = list(_VERTEX_LINE.finditer(chunk))[row]
    return f"line {first + chunk.count(_NEWLINE, 0, match.start())}"
