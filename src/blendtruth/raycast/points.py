"""First hits of arbitrary rays (not camera pixels) against one frame's triangles.

Used by :mod:`blendtruth.geometry.motion` for the strict covisibility test: Embree finds
the hit triangle in float32 (scene centred, as :class:`.cast.RayCaster` does), then the
distance is recomputed in float64 against that triangle's plane, so it is exact to
float64 rounding wherever the triangle is not seen edge-on. A new Embree scene is built
per frame: the Embree binding in :mod:`.embree` commits and releases its geometry, so a
refit (positions changed, same triangles) is not reachable through it.
"""

from __future__ import annotations

import numpy as np

from blendtruth.raycast.embree import make_scene


class FirstHit:
    """Callable ``(origin 3, unit directions N×3) -> (instance N int32, -1 = miss;
    distance N float64, inf on a miss)`` for the triangles ``corners`` (T×3×3 float64
    world) with per-triangle ``instance`` (T int)."""

    def __init__(self, corners: np.ndarray, instance: np.ndarray, threads: int = 1) -> None:
        corners = np.asarray(corners, np.float64)
        lo, hi = corners.reshape(-1, 3).min(0), corners.reshape(-1, 3).max(0)
        self._offset = (lo + hi) / 2
        self._c0 = corners[:, 0] - self._offset
        normal = np.cross(corners[:, 1] - corners[:, 0], corners[:, 2] - corners[:, 0])
        length = np.linalg.norm(normal, axis=1, keepdims=True)
        self._normal = np.divide(normal, length, out=np.zeros_like(normal), where=length > 0)
        self._instance = np.asarray(instance, np.int32)
        self._embree = make_scene(corners - self._offset)
        self._threads = threads

    def __call__(self, origin: np.ndarray, directions: np.ndarray) -> tuple:
        o = (np.asarray(origin, np.float64) - self._offset)[None]
        d = np.ascontiguousarray(directions, np.float64)
        prim, tfar = self._embree.hits(o, d, np.eye(3), threads=self._threads, distances=True)
        hit = prim >= 0
        p = prim[hit]
        distance = np.full(len(d), np.inf)
        ng = self._normal[p]
        with np.errstate(divide="ignore", invalid="ignore"):
            t = np.einsum("ij,ij->i", ng, self._c0[p] - o) / np.einsum("ij,ij->i", ng, d[hit])
        good = np.isfinite(t) & (t > 0)
        distance[hit] = np.where(good, t, tfar[hit])  # Embree's own where edge-on
        instance = np.full(len(d), -1, np.int32)
        instance[hit] = self._instance[p]
        return instance, distance
