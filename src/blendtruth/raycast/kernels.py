"""The per-hit refinement of :mod:`blendtruth.raycast.cast` as one compiled loop (numba).

The same float64 arithmetic as the numpy path in ``cast.py`` (plane parameter, barycentric
weights from the dual basis, Cycles' shading normal and backface flip), done in one pass
over the rays on every core instead of ~50 whole-array numpy operations: at 512² the numpy
path costs more than Embree's own traversal. Compiled on first use and cached on disk
(numba's cache: beside this file, or the user's cache folder when that is read-only).
"""

from __future__ import annotations

import math

_KERNEL = None
prange = range  # numba.prange once numba compiles _refine (a parallel loop)


def kernel():
    """The compiled refinement, or None when numba is not installed (numpy path)."""
    global _KERNEL
    if _KERNEL is None:
        try:
            import numba
        except ImportError:
            _KERNEL = False
        else:
            global prange
            prange = numba.prange
            _KERNEL = numba.njit(parallel=True, cache=True, nogil=True)(_refine)
    return _KERNEL or None


def _refine(
    prim, rays_cam, lengths, rot, origins,
    face_normal, plane, corner0, dual, corner_normals, smooth, instance,
    depth, distance, normal, normal_geometric, inst_out, t_out, bary_out,
):  # fmt: skip
    """For every ray i with ``prim[i] >= 0``, from ``origins[i]`` (or ``origins[0]`` for
    all): t (float64, the ray's plane parameter: depth for rays of camera z = 1, ray
    distance for unit rays), distance t·|ray|, the shading and geometric normals
    in the camera frame (float32, flipped to face the ray), the instance id, and t and
    the barycentric weights for the caller's other passes. Arrays of length 0 are not
    written (pass not wanted). Returns the number of hits whose float64 plane is
    degenerate for the ray (t not finite or <= 0): the caller redoes such a view."""
    n = prim.shape[0]
    bad = 0
    want_n = normal.shape[0] > 0
    want_g = normal_geometric.shape[0] > 0
    want_i = inst_out.shape[0] > 0
    want_t = t_out.shape[0] > 0
    stride = 0 if origins.shape[0] == 1 else 1  # one origin for all rays, or one each
    for i in prange(n):
        p = prim[i]
        if p < 0:
            continue
        j = i * stride
        o0, o1, o2 = origins[j, 0], origins[j, 1], origins[j, 2]
        # World ray direction, float64: rot @ rays_cam[i].
        r0, r1, r2 = rays_cam[i, 0], rays_cam[i, 1], rays_cam[i, 2]
        d0 = rot[0, 0] * r0 + rot[0, 1] * r1 + rot[0, 2] * r2
        d1 = rot[1, 0] * r0 + rot[1, 1] * r1 + rot[1, 2] * r2
        d2 = rot[2, 0] * r0 + rot[2, 1] * r1 + rot[2, 2] * r2
        g0, g1, g2 = face_normal[p, 0], face_normal[p, 1], face_normal[p, 2]
        denom = g0 * d0 + g1 * d1 + g2 * d2
        t = (plane[p] - (g0 * o0 + g1 * o1 + g2 * o2)) / denom
        if not (math.isfinite(t) and t > 0):
            bad += 1
            continue
        depth[i] = t
        distance[i] = t * lengths[i]
        # Barycentric weights of the float64 hit against the dual basis.
        q0 = o0 + t * d0 - corner0[p, 0]
        q1 = o1 + t * d1 - corner0[p, 1]
        q2 = o2 + t * d2 - corner0[p, 2]
        bu = q0 * dual[p, 0, 0] + q1 * dual[p, 0, 1] + q2 * dual[p, 0, 2]
        bv = q0 * dual[p, 1, 0] + q1 * dual[p, 1, 1] + q2 * dual[p, 1, 2]
        bw = 1.0 - bu - bv
        sign = -1.0 if denom > 0 else 1.0
        if want_t:
            t_out[i] = t
            bary_out[i, 0] = bw
            bary_out[i, 1] = bu
            bary_out[i, 2] = bv
        if want_i:
            inst_out[i] = instance[p]
        if want_g:  # camera frame: rot.T @ (sign · ng)
            for k in range(3):
                normal_geometric[i, k] = sign * (rot[0, k] * g0 + rot[1, k] * g1 + rot[2, k] * g2)
        if want_n:
            s0, s1, s2 = g0, g1, g2
            if smooth[p]:
                b0 = bw * corner_normals[p, 0, 0] + bu * corner_normals[p, 1, 0]
                b0 += bv * corner_normals[p, 2, 0]
                b1 = bw * corner_normals[p, 0, 1] + bu * corner_normals[p, 1, 1]
                b1 += bv * corner_normals[p, 2, 1]
                b2 = bw * corner_normals[p, 0, 2] + bu * corner_normals[p, 1, 2]
                b2 += bv * corner_normals[p, 2, 2]
                length = math.sqrt(b0 * b0 + b1 * b1 + b2 * b2)
                if length > 0:
                    s0, s1, s2 = b0 / length, b1 / length, b2 / length
            for k in range(3):
                normal[i, k] = sign * (rot[0, k] * s0 + rot[1, k] * s1 + rot[2, k] * s2)
    return bad
