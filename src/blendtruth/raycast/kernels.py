"""The ray caster's compiled loops (numba): the per-hit float64 refinement, alone or fused
into Embree's 8-ray packet loop.

The refinement is the same float64 arithmetic as the numpy path in ``cast.py`` (plane
parameter, barycentric weights from the dual basis, Cycles' shading normal and backface
flip), one pass over the rays on every core instead of ~50 whole-array numpy operations.

Fused into the packet loop, it refines a tile's hits after the next tile is cast, and the
loop asks the CPU to prefetch each hit's triangle record as soon as Embree names the
triangle. On meshes whose triangles are smaller than a pixel every hit lands on a
different triangle, a fresh cache miss each; the prefetch lets that miss overlap Embree's
next traversal (1M triangles, 512², two threads: refinement 4-5 ms alone, ~1 ms fused).
The record is one 128-byte row per triangle (two cache lines) for the same reason.

Both loops are compiled on first use and cached on disk (numba's cache: beside this file,
or the user's cache folder when that is read-only). They live in one module because
numba's cache notices a change only in the cached function's own file.
"""

from __future__ import annotations

import math

import numpy as np

from blendtruth.raycast import intrinsics

# The per-triangle record: columns of one float64 row (RECORD wide, 128 bytes).
RECORD = 16
_N, _PLANE, _C0, _G1, _G2, _SMOOTH, _INSTANCE = 0, 3, 4, 7, 10, 13, 14

# Packets of 8 rays, 4×2 pixels: on subpixel triangles (1M-triangle meshes) 10% faster
# than 16 rays of 4×4, within 0.5 ms at 512² on small meshes; 4 rays are slower on both.
LANES, _TILE_W, _TILE_H = 8, 4, 2
# RTCRayHit8: rows of 8 lanes, structure of arrays (Embree 4's rtcore_ray.h).
_ORG, _TNEAR, _DIR, _TIME, _TFAR, _MASK, _ID, _FLAGS = 0, 3, 4, 7, 8, 9, 10, 11
_PRIM, _GEOM, _INST = 17, 18, 19
_ROWS = 21  # through instID and instPrimID, which only some Embree builds have
_INVALID = 0xFFFFFFFF

_STATE: dict = {}
# The refine arrays of the loops when no hit is refined (the loops' types stay the same).
NO_REFINE = (np.zeros(0), np.zeros((0, RECORD)), np.zeros((0, 3, 3), np.float32),
             np.zeros(0, np.float32), np.zeros(0, np.float32), np.zeros((0, 3), np.float32),
             np.zeros((0, 3), np.float32), np.zeros(0, np.int32), np.zeros(0),
             np.zeros((0, 3)))  # fmt: skip
# Rebound to numba's versions by _compile() before either loop is compiled.
prange = range
_refine_hit = None
_prefetch = None
_prefetch_triangle = None
_fetch_add = None
_RTC_PACKET = None


def records(face_normal, plane, corner0, dual, smooth, instance) -> np.ndarray:
    """T×RECORD float64 rows, each 64-byte aligned: face normal (3), plane offset,
    corner 0 (3), the dual basis g1, g2 (3 each), smooth (0/1), instance id."""
    n = len(plane)
    raw = np.zeros(n * RECORD + 8)
    start = (-raw.ctypes.data % 64) // 8
    rec = raw[start : start + n * RECORD].reshape(n, RECORD)
    rec[:, _N : _N + 3] = face_normal
    rec[:, _PLANE] = plane
    rec[:, _C0 : _C0 + 3] = corner0
    rec[:, _G1 : _G1 + 3] = dual[:, 0]
    rec[:, _G2 : _G2 + 3] = dual[:, 1]
    rec[:, _SMOOTH] = smooth
    rec[:, _INSTANCE] = instance
    return rec


def _compile():
    """numba, with this module's globals bound to their compiled versions; None when numba
    is not installed."""
    if "numba" not in _STATE:
        try:
            import numba
        except ImportError:
            _STATE["numba"] = None
            return None
        global prange, _refine_hit, _prefetch, _fetch_add, _prefetch_triangle
        prange = numba.prange
        _prefetch = intrinsics.prefetch()
        _fetch_add = intrinsics.fetch_add()
        _refine_hit = numba.njit(inline="always", cache=True, nogil=True)(refine_hit)
        _prefetch_triangle = numba.njit(inline="always", cache=True, nogil=True)(prefetch_triangle)
        _STATE["numba"] = numba
    return _STATE["numba"]


def kernel():
    """The compiled refinement loop, or None when numba is not installed (numpy path)."""
    if "refine" not in _STATE:
        numba = _compile()
        _STATE["refine"] = numba and numba.njit(parallel=True, cache=True, nogil=True)(_refine)
    return _STATE["refine"] or None


def merge_loop():
    """The compiled merge of the rasteriser's parts with the refinement fused
    (:func:`_merge_refine`), or None when numba is not installed."""
    if "merge" not in _STATE:
        numba = _compile()
        _STATE["merge"] = numba and numba.njit(parallel=True, cache=True, nogil=True)(_merge_refine)
    return _STATE["merge"] or None


def packet_loop(library: str):
    """The compiled packet loop, calling ``rtcIntersect8`` of the Embree library at path
    ``library``; None when numba is not installed."""
    if "packets" not in _STATE:
        numba = _compile()
        _STATE["packets"] = None
        if numba is not None:
            import llvmlite.binding

            global _RTC_PACKET
            llvmlite.binding.load_library_permanently(library)
            u = numba.types.uintp
            _RTC_PACKET = numba.types.ExternalFunction(
                f"rtcIntersect{LANES}", numba.types.void(u, u, u, u)
            )
            _STATE["packets"] = numba.njit(parallel=True, cache=True, nogil=True)(_cast_packets)
    return _STATE["packets"]


def prefetch_triangle(p, tri, corner_normals, normals):
    """Ask the CPU for triangle p's record (two cache lines) and, with ``normals``, its
    36 bytes of corner normals, ahead of :func:`refine_hit`."""
    _prefetch(tri.ctypes.data + p * (RECORD * 8))
    _prefetch(tri.ctypes.data + p * (RECORD * 8) + 64)
    if normals:
        _prefetch(corner_normals.ctypes.data + p * 36)
        _prefetch(corner_normals.ctypes.data + p * 36 + 35)


def refine_hit(
    i, p, o0, o1, o2, rays_cam, lengths, rot, tri, corner_normals,
    depth, distance, normal, normal_geometric, inst_out, t_out, bary_out,
):  # fmt: skip
    """Ray i, from (o0, o1, o2), hit triangle p (its row of ``tri``, see :func:`records`):
    write t (float64, the ray's plane parameter: depth for rays of camera z = 1, ray
    distance for unit rays), distance t·|ray|, the shading and geometric normals in the
    camera frame (float32, flipped to face the ray), the instance id, and t and the
    barycentric weights for the caller's other passes. Arrays of length 0 are not
    written (pass not wanted). Returns 1 when the float64 plane is degenerate for the ray
    (t not finite or <= 0; nothing written), else 0."""
    # World ray direction, float64: rot @ rays_cam[i].
    r0, r1, r2 = rays_cam[i, 0], rays_cam[i, 1], rays_cam[i, 2]
    d0 = rot[0, 0] * r0 + rot[0, 1] * r1 + rot[0, 2] * r2
    d1 = rot[1, 0] * r0 + rot[1, 1] * r1 + rot[1, 2] * r2
    d2 = rot[2, 0] * r0 + rot[2, 1] * r1 + rot[2, 2] * r2
    g0, g1, g2 = tri[p, _N], tri[p, _N + 1], tri[p, _N + 2]
    denom = g0 * d0 + g1 * d1 + g2 * d2
    t = (tri[p, _PLANE] - (g0 * o0 + g1 * o1 + g2 * o2)) / denom
    if not (math.isfinite(t) and t > 0):
        return 1
    depth[i] = t
    distance[i] = t * lengths[i]
    # Barycentric weights of the float64 hit against the dual basis.
    q0 = o0 + t * d0 - tri[p, _C0]
    q1 = o1 + t * d1 - tri[p, _C0 + 1]
    q2 = o2 + t * d2 - tri[p, _C0 + 2]
    bu = q0 * tri[p, _G1] + q1 * tri[p, _G1 + 1] + q2 * tri[p, _G1 + 2]
    bv = q0 * tri[p, _G2] + q1 * tri[p, _G2 + 1] + q2 * tri[p, _G2 + 2]
    bw = 1.0 - bu - bv
    sign = -1.0 if denom > 0 else 1.0
    if t_out.shape[0] > 0:
        t_out[i] = t
        bary_out[i, 0] = bw
        bary_out[i, 1] = bu
        bary_out[i, 2] = bv
    if inst_out.shape[0] > 0:
        inst_out[i] = np.int32(tri[p, _INSTANCE])
    if normal_geometric.shape[0] > 0:  # camera frame: rot.T @ (sign · ng)
        for k in range(3):
            normal_geometric[i, k] = sign * (rot[0, k] * g0 + rot[1, k] * g1 + rot[2, k] * g2)
    if normal.shape[0] > 0:
        s0, s1, s2 = g0, g1, g2
        if tri[p, _SMOOTH] != 0:
            cn = corner_normals
            b0 = bw * cn[p, 0, 0] + bu * cn[p, 1, 0]
            b0 += bv * cn[p, 2, 0]
            b1 = bw * cn[p, 0, 1] + bu * cn[p, 1, 1]
            b1 += bv * cn[p, 2, 1]
            b2 = bw * cn[p, 0, 2] + bu * cn[p, 1, 2]
            b2 += bv * cn[p, 2, 2]
            length = math.sqrt(b0 * b0 + b1 * b1 + b2 * b2)
            if length > 0:
                s0, s1, s2 = b0 / length, b1 / length, b2 / length
        for k in range(3):
            normal[i, k] = sign * (rot[0, k] * s0 + rot[1, k] * s1 + rot[2, k] * s2)
    return 0


def _refine(
    prim, rays_cam, rot, origins, lengths, tri, corner_normals,
    depth, distance, normal, normal_geometric, inst_out, t_out, bary_out,
):  # fmt: skip
    """:func:`refine_hit` for every ray i with ``prim[i] >= 0``, from ``origins[i]`` (or
    ``origins[0]`` for all). Returns the number of hits whose float64 plane is degenerate
    for the ray: the caller redoes such a view."""
    bad = 0
    stride = 0 if origins.shape[0] == 1 else 1  # one origin for all rays, or one each
    for i in prange(prim.shape[0]):
        p = prim[i]
        if p >= 0:
            j = i * stride
            bad += _refine_hit(i, p, origins[j, 0], origins[j, 1], origins[j, 2], rays_cam,
                               lengths, rot, tri, corner_normals, depth, distance, normal,
                               normal_geometric, inst_out, t_out, bary_out)  # fmt: skip
    return bad


def _cast_packets(
    scene, args, prim, tfar, rays, rot, origins, near, valid, r0, r1, c0, c1, width,
    lengths, tri, corner_normals, depth, distance, normal, normal_geometric, inst_out,
    t_out, bary_out,
):  # fmt: skip
    """Fill ``prim`` (and ``tfar`` unless empty) for the pixels of rows r0..r1, columns
    c0..c1 (ray i = row·width + column), in packets of 4×2 pixels; lanes outside the window
    or with ``valid[i]`` False (unless ``valid`` is empty) are not cast. Unless ``tri`` is
    empty, also refine every hit as :func:`_refine` does (from the un-clipped origins) and
    return the number of degenerate hits."""
    tiles_x = (c1 - c0 + _TILE_W) // _TILE_W
    tiles = ((r1 - r0 + _TILE_H) // _TILE_H) * tiles_x
    blocks = min(tiles, 256)
    # Per block: one RTCRayHit8 (64-byte aligned inside the row) and its valid mask.
    buf = np.zeros((blocks, (_ROWS + 2) * LANES), np.float32)
    lanes = np.zeros((blocks, 32), np.int32)
    bad = np.zeros(blocks, np.int64)
    stride = 0 if origins.shape[0] == 1 else 1
    check = valid.shape[0] > 0
    refine = tri.shape[0] > 0
    fetch_normals = normal.shape[0] > 0 and corner_normals.shape[0] > 0
    for b in prange(blocks):
        off = ((64 - buf[b].ctypes.data % 64) % 64) // 4
        ray = buf[b, off : off + _ROWS * LANES]
        bits = ray.view(np.uint32)
        voff = ((64 - lanes[b].ctypes.data % 64) % 64) // 4
        live = lanes[b, voff : voff + LANES]
        first, end = b * tiles // blocks, (b + 1) * tiles // blocks
        # Tile k is cast, then tile k - 1 refined, its records prefetched meanwhile.
        for tile in range(first, end + 1 if refine else end):
            if tile < end:
                y0 = r0 + (tile // tiles_x) * _TILE_H
                x0 = c0 + (tile % tiles_x) * _TILE_W
                for k in range(LANES):
                    y, x = y0 + k // _TILE_W, x0 + k % _TILE_W
                    i = y * width + x
                    live[k] = -1 if y <= r1 and x <= c1 and (not check or valid[i]) else 0
                    if live[k] == 0:
                        continue
                    j = i * stride
                    v0, v1, v2 = rays[i, 0], rays[i, 1], rays[i, 2]
                    d0 = rot[0, 0] * v0 + rot[0, 1] * v1 + rot[0, 2] * v2
                    d1 = rot[1, 0] * v0 + rot[1, 1] * v1 + rot[1, 2] * v2
                    d2 = rot[2, 0] * v0 + rot[2, 1] * v1 + rot[2, 2] * v2
                    ray[_ORG * LANES + k] = origins[j, 0] + near * d0
                    ray[(_ORG + 1) * LANES + k] = origins[j, 1] + near * d1
                    ray[(_ORG + 2) * LANES + k] = origins[j, 2] + near * d2
                    ray[_TNEAR * LANES + k] = 0.0
                    ray[_DIR * LANES + k] = d0
                    ray[(_DIR + 1) * LANES + k] = d1
                    ray[(_DIR + 2) * LANES + k] = d2
                    ray[_TIME * LANES + k] = 0.0
                    ray[_TFAR * LANES + k] = math.inf
                    bits[_MASK * LANES + k] = _INVALID
                    bits[_ID * LANES + k] = 0
                    bits[_FLAGS * LANES + k] = 0
                    bits[_PRIM * LANES + k] = _INVALID
                    bits[_GEOM * LANES + k] = _INVALID
                    bits[_INST * LANES + k] = _INVALID
                    bits[(_INST + 1) * LANES + k] = _INVALID
                _RTC_PACKET(live.ctypes.data, scene, ray.ctypes.data, args)
                for k in range(LANES):
                    if live[k] == 0 or bits[_GEOM * LANES + k] == _INVALID:
                        continue
                    i = (y0 + k // _TILE_W) * width + x0 + k % _TILE_W
                    p = np.int32(bits[_PRIM * LANES + k])
                    prim[i] = p
                    if tfar.shape[0] > 0:
                        tfar[i] = ray[_TFAR * LANES + k]
                    if refine:
                        _prefetch_triangle(p, tri, corner_normals, fetch_normals)
            if refine and tile > first:
                y0 = r0 + ((tile - 1) // tiles_x) * _TILE_H
                x0 = c0 + ((tile - 1) % tiles_x) * _TILE_W
                for k in range(LANES):
                    y, x = y0 + k // _TILE_W, x0 + k % _TILE_W
                    i = y * width + x
                    if y > r1 or x > c1 or prim[i] < 0:
                        continue
                    j = i * stride
                    bad[b] += _refine_hit(i, prim[i], origins[j, 0], origins[j, 1],
                                          origins[j, 2], rays, lengths, rot, tri,
                                          corner_normals, depth, distance, normal,
                                          normal_geometric, inst_out, t_out, bary_out)  # fmt: skip
    return bad.sum()


# Pixels between a hit's record prefetch and its refinement in _merge_refine.
_LAG = 16


def _merge_refine(
    inv_z, parts, prim, rays_cam, rot, origins, lengths, tri, corner_normals,
    depth, distance, normal, normal_geometric, inst_out, t_out, bary_out,
):  # fmt: skip
    """Set prim[k] to the nearest of the rasteriser's hits at pixel k (its rows of
    ``parts``, Q×N int32, with 1/z in ``inv_z``: the largest, ties to the lower triangle;
    -1 = none). Unless ``tri`` is empty, also refine every hit as :func:`_refine` does,
    _LAG pixels after asking for its triangle's record, and return the number of
    degenerate hits."""
    q_count, n = inv_z.shape
    blocks = min(n, 256)
    bad = np.zeros(blocks, np.int64)
    stride = 0 if origins.shape[0] == 1 else 1
    refine = tri.shape[0] > 0
    fetch_normals = normal.shape[0] > 0 and corner_normals.shape[0] > 0
    taken = np.zeros(1, np.int64)
    for _ in prange(blocks):  # each iteration takes the next block not yet taken
        b = _fetch_add(taken.ctypes.data, 1)
        lo, hi = b * n // blocks, (b + 1) * n // blocks
        for k in range(lo, hi + (_LAG if refine else 0)):
            if k < hi:
                z, p = inv_z[0, k], parts[0, k]
                for q in range(1, q_count):
                    zq, pq = inv_z[q, k], parts[q, k]
                    if pq >= 0 and (zq > z or (zq == z and (p < 0 or pq < p))):
                        z, p = zq, pq
                prim[k] = p
                if refine and p >= 0:
                    _prefetch_triangle(p, tri, corner_normals, fetch_normals)
            i = k - _LAG
            if refine and i >= lo and prim[i] >= 0:
                j = i * stride
                bad[b] += _refine_hit(i, prim[i], origins[j, 0], origins[j, 1], origins[j, 2],
                                      rays_cam, lengths, rot, tri, corner_normals, depth,
                                      distance, normal, normal_geometric, inst_out, t_out,
                                      bary_out)  # fmt: skip
    return bad.sum()
