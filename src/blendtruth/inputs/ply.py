"""PLY (ASCII and binary): the header against the file size, then the vertex coordinates.

A header declaring more elements than the bytes after it can hold (2^31 vertices in a
300-byte file) is refused before Blender allocates for it (its importer aborts the whole
process). Vertex ``x``, ``y``, ``z`` must be numeric, finite and float32-representable
(binary vertices are read with numpy a bounded number of rows at a time); float32 rounding
is checked for ASCII and ``double`` coordinates, which Blender narrows to float32.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from blendtruth.errors import BlendtruthError
from blendtruth.inputs.coords import Bounds, check_finite, check_precision

MAX_HEADER_BYTES = 1 << 20
ROWS_PER_READ = 1 << 20
_TYPES = {
    "char": "i1", "int8": "i1", "uchar": "u1", "uint8": "u1",
    "short": "i2", "int16": "i2", "ushort": "u2", "uint16": "u2",
    "int": "i4", "int32": "i4", "uint": "u4", "uint32": "u4",
    "float": "f4", "float32": "f4", "double": "f8", "float64": "f8",
}  # fmt: skip
_FORMATS = {"ascii": None, "binary_little_endian": "<", "binary_big_endian": ">"}


@dataclass
class Element:
    """One ``element`` of a PLY header: its properties as (name, numpy type, list count
    type or None)."""

    name: str
    count: int
    properties: list[tuple[str, str, str | None]] = field(default_factory=list)

    @property
    def scalar_only(self) -> bool:
        return all(count is None for _, _, count in self.properties)

    def min_bytes(self, binary: bool) -> int:
        """The fewest bytes one element can take (lists empty; ASCII: a digit and a
        separator per value)."""
        if not binary:
            return 2 * len(self.properties)
        return sum(np.dtype(count or kind).itemsize for _, kind, count in self.properties)


def check(path: Path) -> None:
    """Raise BlendtruthError naming ``path`` if the header or the vertices are unusable."""
    fmt, elements, header_len = read_header(path)
    data_bytes = path.stat().st_size - header_len
    binary = fmt is not None
    need = 0
    for element in elements:
        need += element.count * element.min_bytes(binary)
        if need > data_bytes:
            raise BlendtruthError(
                f"{path}: the header declares {element.count} '{element.name}' elements, which "
                f"need at least {need} bytes, but only {data_bytes} bytes follow the header "
                "(a cut file or a wrong header)"
            )
    from blendtruth.inputs.ply_faces import check_faces

    check_faces(path, fmt, elements, header_len)
    names = [e.name for e in elements]
    if "vertex" not in names:
        return
    k = names.index("vertex")
    vertex = elements[k]
    props = [name for name, _, _ in vertex.properties]
    if not {"x", "y", "z"} <= set(props) or not vertex.scalar_only:
        return
    if binary:
        if all(e.scalar_only for e in elements[:k]):
            offset = header_len + sum(e.count * e.min_bytes(True) for e in elements[:k])
            _check_binary(path, fmt, vertex, offset)
    elif all(e.scalar_only or e.count == 0 for e in elements[:k]):
        _check_ascii(path, vertex, header_len, sum(e.count for e in elements[:k]))


def read_header(path: Path) -> tuple[str | None, list[Element], int]:
    """(numpy byte order or None for ASCII, the elements, the header's length in bytes)."""
    with open(path, "rb") as f:
        head = f.read(MAX_HEADER_BYTES)
    if not head.startswith(b"ply"):
        raise BlendtruthError(f"{path}: not a PLY file (it does not start with 'ply')")
    end = head.find(b"end_header")
    if end < 0:
        raise BlendtruthError(f"{path}: the PLY header has no 'end_header' in its first "
                              f"{len(head)} bytes")  # fmt: skip
    newline = head.find(b"\n", end)
    if newline < 0:
        raise BlendtruthError(f"{path}: the file ends right after 'end_header'")
    fmt: str | None = None
    elements: list[Element] = []
    for number, raw in enumerate(head[:end].split(b"\n"), start=1):
        words = raw.decode("latin-1").split()
        if not words or words[0] in ("ply", "comment", "obj_info"):
            continue
        where = f"{path}: header line {number}"
        if words[0] == "format":
            if len(words) < 2 or words[1] not in _FORMATS:
                raise BlendtruthError(f"{where}: unknown format {' '.join(words[1:])!r}")
            fmt = _FORMATS[words[1]]
        elif words[0] == "element":
            if len(words) != 3 or not words[2].isdigit():
                raise BlendtruthError(f"{where}: 'element' needs a name and a count >= 0")
            elements.append(Element(words[1], int(words[2])))
        elif words[0] == "property":
            if not elements:
                raise BlendtruthError(f"{where}: a property before any element")
            elements[-1].properties.append(_property(where, words))
        else:
            raise BlendtruthError(f"{where}: unknown keyword {words[0]!r}")
    return fmt, elements, newline + 1


def _property(where: str, words: list[str]) -> tuple[str, str, str | None]:
    if len(words) == 5 and words[1] == "list":
        count, item = (_TYPES.get(w) for w in words[2:4])
        if count is None or item is None or count[0] == "f":
            raise BlendtruthError(f"{where}: bad list property types {words[2]!r} {words[3]!r}")
        return words[4], item, count
    if len(words) == 3 and words[1] in _TYPES:
        return words[2], _TYPES[words[1]], None
    raise BlendtruthError(f"{where}: bad property {' '.join(words[1:])!r}")


def _check_binary(path: Path, order: str, vertex: Element, offset: int) -> None:
    dtype = np.dtype([(name, order + kind) for name, kind, _ in vertex.properties])
    kinds = {name: kind for name, kind, _ in vertex.properties}
    if all(kinds[a][0] != "f" for a in "xyz"):
        return  # integer coordinates are always finite
    bounds = Bounds()
    with open(path, "rb") as f:
        f.seek(offset)
        done = 0
        while done < vertex.count:
            rows = np.fromfile(f, dtype=dtype, count=min(ROWS_PER_READ, vertex.count - done))
            xyz = np.column_stack([rows[a].astype(np.float64) for a in "xyz"])
            check_finite(path, xyz, lambda row, done=done: f"vertex {done + row}")
            bounds.add(xyz)
            done += len(rows)
    if any(kinds[a] == "f8" for a in "xyz") and not bounds.empty:
        check_precision(path, bounds.lo, bounds.hi, "when Blender narrows its doubles to float32")


def _check_ascii(path: Path, vertex: Element, header_len: int, skip: int) -> None:
    columns = [next(i for i, p in enumerate(vertex.properties) if p[0] == a) for a in "xyz"]
    width = len(vertex.properties)
    bounds = Bounds()
    with open(path, "rb") as f:
        first_line = f.read(header_len).count(b"\n") + 1 + skip
        for _ in range(skip):
            f.readline()
        done = 0
        while done < vertex.count:
            lines = [f.readline() for _ in range(min(ROWS_PER_READ // 8, vertex.count - done))]
            rows = [line.split() for line in lines]
            for k, tokens in enumerate(rows):
                if len(tokens) < width:
                    raise BlendtruthError(
                        f"{path}: line {first_line + done + k}: vertex {done + k} has "
                        f"{len(tokens)} values, the header declares {width}"
                        + (" (the file is cut)" if not lines[k] else "")
                    )
            picked = [[t[c] for c in columns] for t in rows]
            try:
                xyz = np.array(picked, dtype=np.bytes_).astype(np.float64)
            except ValueError:
                _fail_number(path, picked, first_line + done)
            check_finite(path, xyz, lambda row, d=done: f"line {first_line + d + row}")
            bounds.add(xyz)
            done += len(lines)
    if not bounds.empty:
        check_precision(path, bounds.lo, bounds.hi, "when Blender stores it in float32")


def _fail_number(path: Path, picked: list[list[bytes]], first: int) -> None:
    for k, values in enumerate(picked):
        for token in values:
            try:
                float(token)
            except ValueError:
                text = token.decode("utf-8", "replace")
                raise BlendtruthError(
                    f"{path}: line {first + k}: vertex coordinate {text!r} is not a number"
                ) from None
