"""Strict visibility: does a camera see a given surface point? (no bpy; Embree + float64)

A point P is seen from a camera centre C when the first surface hit along the ray C -> P
lies at P: its float64 distance (the hit triangle's plane, as :mod:`.cast` refines it) is
at least |P − C| (1 − ``rel_tol``). No depth-map comparison, no percentage threshold.
"""

from __future__ import annotations

import numpy as np

from blendtruth.raycast.cast import RayCaster

#: Relative slack for a point that lies on the surface it was measured on (float32 depth).
REL_TOL = 1e-5


def first_hits(caster: RayCaster, origins: np.ndarray, dirs: np.ndarray):
    """(triangle N int32, -1 = miss; t N float64 distance along the unit ``dirs``) of rays
    from world ``origins`` (N×3 or 1×3) along world ``dirs`` (N×3, unit)."""
    origins = np.asarray(origins, dtype=np.float64) - caster._offset
    dirs = np.ascontiguousarray(dirs, dtype=np.float64)
    prim, _ = caster._embree.hits(np.ascontiguousarray(origins), dirs, np.eye(3))
    t = np.full(len(dirs), np.inf)
    hit = prim >= 0
    p = prim[hit]
    o = origins if len(origins) == 1 else origins[hit]
    n = caster._face_normal[p]
    with np.errstate(divide="ignore", invalid="ignore"):
        t[hit] = caster._plane[p] - np.einsum("ij,ij->i", n, np.broadcast_to(o, n.shape))
        t[hit] /= np.einsum("ij,ij->i", n, dirs[hit])
    return prim, t


def hidden_from(caster: RayCaster, points: np.ndarray, camera, rel_tol: float = REL_TOL):
    """N bool: ``camera`` does not see the world ``points`` (N×3): outside its image or
    behind it (its model's projection), or another surface lies in front of them."""
    points = np.asarray(points, dtype=np.float64)
    pose = camera.cam_to_world
    local = (points - pose[:3, 3]) @ pose[:3, :3]
    uv, _, valid = camera.projection.project(local)
    inside = valid & np.isfinite(uv).all(axis=1)
    inside &= (uv[:, 0] >= 0) & (uv[:, 0] < camera.width)
    inside &= (uv[:, 1] >= 0) & (uv[:, 1] < camera.height)
    hidden = ~inside
    idx = np.flatnonzero(inside)
    if idx.size:
        centre = pose[:3, 3]
        ray = points[idx] - centre
        dist = np.linalg.norm(ray, axis=1)
        _, t = first_hits(caster, centre[None], ray / dist[:, None])
        hidden[idx] = t < dist * (1 - rel_tol)
    return hidden
