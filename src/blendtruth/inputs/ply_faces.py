"""PLY face indices against the vertex count: Blender's importer drops a face that names a
vertex the file does not have, without a word.

Checked for a ``face`` element (or ``tristrips``, where -1 restarts a strip) whose one list
property is ``vertex_indices``/``vertex_index``: binary files when every face has as many
indices as the first (read with numpy, a bounded number of bytes at a time; files mixing
triangles and quads are not checked), ASCII files when the list is the face's only
property.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from blendtruth.errors import BlendtruthError
from blendtruth.inputs.coords import fromstring

BYTES_PER_READ = 1 << 24
LINES_PER_READ = 1 << 16
_INDEX_NAMES = ("vertex_indices", "vertex_index")


def check_faces(path: Path, fmt: str | None, elements: list, header_len: int) -> None:
    """Raise BlendtruthError naming ``path`` and the face if an index is out of range.
    ``elements`` are :class:`blendtruth.inputs.ply.Element`; ``fmt`` the byte order, or
    None for ASCII."""
    names = [e.name for e in elements]
    if "vertex" not in names:
        return
    n_vertices = elements[names.index("vertex")].count
    for j, element in enumerate(elements):
        lists = [p for p in element.properties if p[2] is not None]
        if element.name not in ("face", "tristrips") or element.count == 0 or len(lists) != 1:
            continue
        if lists[0][0] not in _INDEX_NAMES:
            continue
        lowest = -1 if element.name == "tristrips" else 0
        if fmt is not None and all(e.scalar_only for e in elements[:j]):
            offset = header_len + sum(e.count * e.min_bytes(True) for e in elements[:j])
            _binary(path, fmt, element, offset, n_vertices, lowest)
        elif fmt is None and len(element.properties) == 1:
            skip = sum(e.count for e in elements[:j])
            _ascii(path, element, header_len, skip, n_vertices, lowest)


def _fail(path: Path, what: str, face: int, value: int, n_vertices: int, line: str = "") -> None:
    raise BlendtruthError(
        f"{path}: {line}{what} {face} names vertex {value}, but the file has {n_vertices} "
        "vertices (Blender would drop it)"
    )


def _binary(path: Path, order: str, element, offset: int, n_vertices: int, lowest: int) -> None:
    prefix = 0
    for _, kind, count in element.properties:
        if count is not None:
            break
        prefix += np.dtype(kind).itemsize
    with open(path, "rb") as f:
        f.seek(offset + prefix)
        list_prop = next(p for p in element.properties if p[2] is not None)
        first = np.fromfile(f, dtype=order + list_prop[2], count=1)
        if len(first) == 0 or first[0] <= 0:
            return
        c = int(first[0])
        fields = []
        for name, kind, count in element.properties:
            if count is None:
                fields.append((name, order + kind))
            else:
                fields += [(name + "_count", order + count), (name, order + kind, (c,))]
        dtype = np.dtype(fields)
        f.seek(offset)
        done = 0
        while done < element.count:
            rows = max(1, BYTES_PER_READ // dtype.itemsize)
            block = np.fromfile(f, dtype=dtype, count=min(rows, element.count - done))
            if len(block) == 0 or (block[list_prop[0] + "_count"] != c).any():
                return  # faces of mixed sizes: not checked (see the module docstring)
            idx = block[list_prop[0]].reshape(len(block), -1)
            bad = (idx < lowest) | (idx >= n_vertices)
            if bad.any():
                row = int(np.argmax(bad.any(axis=1)))
                _fail(path, element.name, done + row, int(idx[row][bad[row]][0]), n_vertices)
            done += len(block)


def _ascii(path: Path, element, header_len: int, skip: int, n_vertices: int, lowest: int) -> None:
    with open(path, "rb") as f:
        first_line = f.read(header_len).count(b"\n") + 1 + skip
        for _ in range(skip):
            f.readline()
        done = 0
        while done < element.count:
            lines = [f.readline() for _ in range(min(LINES_PER_READ, element.count - done))]
            counts = np.fromiter(map(len, map(bytes.split, lines)), np.int64, len(lines))
            values = fromstring(b" ".join(lines), np.float64, int(counts.sum()))
            if values is None or (counts == 0).any():
                return  # not numbers or a cut file: the vertex check or Blender reports it
            starts = np.concatenate([[0], np.cumsum(counts)[:-1]])
            is_index = np.ones(len(values), bool)
            is_index[starts] = False
            bad = is_index & ((values < lowest) | (values >= n_vertices))
            if bad.any():
                pos = int(np.argmax(bad))
                row = int(np.searchsorted(starts, pos, side="right")) - 1
                line = f"line {first_line + done + row}: "
                _fail(path, element.name, done + row, int(values[pos]), n_vertices, line)
            done += len(lines)
