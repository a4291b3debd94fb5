"""Hit triangles of a pinhole camera's pixel-centre rays by rasterising the scene (numba).

For a pinhole camera whose every surface lies in front of the near plane, the nearest
triangle along the ray of pixel (c, r) is the nearest triangle whose projection covers
the pixel centre. Finding it by projecting every vertex once and visiting each triangle's
covered pixel centres costs memory in the order the triangles are stored, where Embree's
traversal jumps through a BVH of ~50 bytes per triangle; on meshes with more triangles
than pixels that traversal is bound by memory latency (1M triangles, 512², two threads:
the whole cast with its refinement ~7-10 ms here against ~11-14 ms with Embree's packets,
bench/cast_breakdown.py). The float64 refinement of :mod:`.kernels` then recomputes each
hit from its triangle's plane, as after Embree.

Exactness (the same as Embree's up to pixel centres on edges):
- coverage is decided in float64 on the projected vertices, each edge evaluated from its
  two endpoints in one fixed order (the lexicographically smaller endpoint first, the
  sign flipped for the other triangle), so the two triangles of a shared edge see exactly
  opposite values: no pixel centre falls through a shared edge. A centre exactly on an
  edge counts as inside (both neighbours may claim it; both give the same surface point).
- the nearest triangle is the one with the largest perspective-correct 1/z at the pixel
  centre; ties go to the lower triangle index, so the answer does not depend on how the
  triangles are split over threads.
Embree decides in float32, so the two may differ on pixel centres very close to an edge
(tested: only on centres within 1e-4 px of one).

Projection: the camera frame has OpenCV axes; vertex (x, y, z) lands at pixel-centre
coordinates (fx·x/z + cx - 0.5, fy·y/z + cy - 0.5), the inverse of the ray
``K^-1 (c + 0.5, r + 0.5, 1)`` of docs/conventions.md.
"""

from __future__ import annotations

import math

import numpy as np

from blendtruth.raycast import intrinsics

_STATE: dict = {}
# Rebound to numba's versions by _compile().
prange = range
_edge = None
_fetch_add = None
# Triangles per piece of work handed to a thread.
_CHUNK = 4096


def _compile():
    """numba with this module's globals bound, or None when numba is not installed."""
    if "numba" not in _STATE:
        try:
            import numba
        except ImportError:
            _STATE["numba"] = None
            return None
        global prange, _edge, _fetch_add
        prange = numba.prange
        _edge = numba.njit(inline="always", cache=True, nogil=True)(edge)
        _fetch_add = intrinsics.fetch_add()
        options = {"parallel": True, "cache": True, "nogil": True}
        _STATE["project"] = numba.njit(**options)(_project)
        _STATE["raster"] = numba.njit(**options)(_raster)
        _STATE["numba"] = numba
    return _STATE["numba"]


def available() -> bool:
    """True when numba is installed (the rasteriser is compiled)."""
    return _compile() is not None


class Rasterizer:
    """The triangles ``faces`` (T×3 indices) of ``vertices`` (V×3 float64, the caster's
    frame: world minus its offset), rasterised per pinhole camera."""

    def __init__(self, vertices: np.ndarray, faces: np.ndarray) -> None:
        if _compile() is None:
            raise RuntimeError("the rasteriser needs numba")
        self._vertices = np.ascontiguousarray(vertices, np.float64)
        self._faces = np.ascontiguousarray(faces, np.int32)
        self._uvz = np.zeros((len(self._vertices), 3))
        self._buffers: tuple[np.ndarray, np.ndarray] | None = None

    def coverage(self, rot: np.ndarray, origin: np.ndarray, intrinsics, parts: int):
        """(inv_z, prim): ``parts``×(H·W) float64 and int32, row-major pixels; row q
        holds the nearest triangle (-1 = none) of the triangles that part took at each
        pixel centre and its 1/z (0 = none), for the camera at ``origin`` (3, the
        caster's frame) with camera-to-world rotation ``rot`` (3×3). The nearest over
        all rows (largest 1/z, ties to the lower triangle) is the hit
        (:func:`.kernels._merge_refine`). The caller guarantees every vertex has camera
        z > 0 (and beyond its near plane). The arrays are reused by the next call."""
        i = intrinsics
        n = i.width * i.height
        numba = _STATE["numba"]
        parts = max(1, min(parts, numba.config.NUMBA_NUM_THREADS))  # one per thread
        numba.set_num_threads(parts)
        if self._buffers is None or self._buffers[0].shape != (parts, n):
            self._buffers = (np.zeros((parts, n)), np.zeros((parts, n), np.int32))
        inv_z, prim = self._buffers
        _STATE["project"](self._vertices, np.ascontiguousarray(rot, np.float64),
                          np.ascontiguousarray(origin, np.float64), float(i.fx), float(i.fy),
                          float(i.cx), float(i.cy), self._uvz)  # fmt: skip
        _STATE["raster"](self._uvz, self._faces, i.width, i.height, inv_z, prim)
        return inv_z, prim


def _project(vertices, rot, origin, fx, fy, cx, cy, uvz):
    """uvz[k] = (pixel-centre column, row, 1/z) of vertex k in the camera frame."""
    for k in prange(vertices.shape[0]):
        a0 = vertices[k, 0] - origin[0]
        a1 = vertices[k, 1] - origin[1]
        a2 = vertices[k, 2] - origin[2]
        x = rot[0, 0] * a0 + rot[1, 0] * a1 + rot[2, 0] * a2
        y = rot[0, 1] * a0 + rot[1, 1] * a1 + rot[2, 1] * a2
        z = rot[0, 2] * a0 + rot[1, 2] * a1 + rot[2, 2] * a2
        inv = 1.0 / z
        uvz[k, 0] = fx * x * inv + cx - 0.5
        uvz[k, 1] = fy * y * inv + cy - 0.5
        uvz[k, 2] = inv


def edge(uvz, i, j, px, py):
    """The edge function of the edge from vertex i to j at (px, py): > 0 on its left in
    pixel coordinates. Evaluated from the lexicographically smaller endpoint, so that
    edge(j, i) is exactly -edge(i, j)."""
    ui, vi, uj, vj = uvz[i, 0], uvz[i, 1], uvz[j, 0], uvz[j, 1]
    if ui < uj or (ui == uj and vi <= vj):
        return (uj - ui) * (py - vi) - (vj - vi) * (px - ui)
    return -((ui - uj) * (py - vj) - (vi - vj) * (px - uj))


def _raster(uvz, faces, width, height, inv_z, prim):
    """Per part q (row q of inv_z and prim): the nearest triangle, of those the part
    took, covering each pixel centre (-1 = none) and its 1/z (0 = none)."""
    parts, n = inv_z.shape
    count = faces.shape[0]
    pieces = (count + _CHUNK - 1) // _CHUNK
    taken = np.zeros(1, np.int64)
    for q in prange(parts):
        best, who = inv_z[q], prim[q]
        for k in range(n):
            best[k] = 0.0
            who[k] = -1
        # Pieces of _CHUNK triangles go to whichever part asks next: a thread that shares
        # its core with the writer takes fewer. The answer does not depend on which part
        # took a triangle (the merge keeps the largest 1/z, ties to the lower triangle).
        while True:
            piece = _fetch_add(taken.ctypes.data, 1)
            if piece >= pieces:
                break
            for p in range(piece * _CHUNK, min(count, (piece + 1) * _CHUNK)):
                a, b, c = faces[p, 0], faces[p, 1], faces[p, 2]
                ua, ub, uc = uvz[a, 0], uvz[b, 0], uvz[c, 0]
                va, vb, vc = uvz[a, 1], uvz[b, 1], uvz[c, 1]
                c0 = max(0, math.ceil(min(ua, ub, uc)))
                c1 = min(width - 1, math.floor(max(ua, ub, uc)))
                r0 = max(0, math.ceil(min(va, vb, vc)))
                r1 = min(height - 1, math.floor(max(va, vb, vc)))
                if (c0 > c1) | (r0 > r1):  # no pixel centre in the bounding box
                    continue
                area = _edge(uvz, a, b, uc, vc)
                if not area != 0.0:  # seen edge-on: covers no pixel centre
                    continue
                s = 1.0 if area > 0 else -1.0
                za, zb, zc = uvz[a, 2], uvz[b, 2], uvz[c, 2]
                for r in range(r0, r1 + 1):
                    py = float(r)
                    for col in range(c0, c1 + 1):
                        px = float(col)
                        e_ab = s * _edge(uvz, a, b, px, py)
                        e_bc = s * _edge(uvz, b, c, px, py)
                        e_ca = s * _edge(uvz, c, a, px, py)
                        if e_ab < 0 or e_bc < 0 or e_ca < 0:
                            continue
                        total = e_ab + e_bc + e_ca
                        if not total > 0:
                            continue
                        z = (e_bc * za + e_ca * zb + e_ab * zc) / total
                        k = r * width + col
                        if z > best[k] or (z == best[k] and p < who[k]):
                            best[k] = z
                            who[k] = p
