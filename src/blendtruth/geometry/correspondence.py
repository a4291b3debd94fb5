"""Correspondence between two rendered views of a static scene, and occlusion boundaries.

Pure numpy. Conventions as everywhere (docs/conventions.md): OpenCV camera axes, 4×4
``cam_to_world``, planar ``depth`` (0 = no surface), pixel (u, v) = (column, row) with its
centre at (u + 0.5, v + 0.5).

- :func:`flow_between` (or :func:`flow_from_arrays`): ``flow`` (H_i×W_i×2 float32 px) takes
  each pixel centre of view i to the projection of its surface point into view j, and
  ``covisible`` (H_i×W_i bool) says that j sees that same point.
- :func:`occlusion_boundary`: the ``boundary`` pass of :mod:`blendtruth.passes`.
- :func:`blendtruth.writers.flow_pairs.write_pairs` writes the pairs of a multi-view folder.
"""

from __future__ import annotations

import numbers
from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np

from blendtruth.errors import BlendtruthError
from blendtruth.geometry.camera import Intrinsics
from blendtruth.geometry.normals import normals_from_depth
from blendtruth.geometry.rays import backproject, pixel_centers, project

if TYPE_CHECKING:
    from blendtruth.view import View

#: Relative depth tolerance of the occlusion test (see :func:`flow_between`).
DEFAULT_REL_TOL = 0.01
#: ``--pairs all`` writes N (N - 1) files; above this many views it is refused.
MAX_ALL_VIEWS = 64
PAIR_MODES = ("none", "consecutive", "all")
# Near a smooth limb depth grows like the square root of the distance to it, so between a
# pixel centre and a point up to half a pixel beyond it, toward the limb, depth changes by
# at most 1.37 times the one-pixel difference on the other side (circular profile:
# sqrt(0.5) / (sqrt(1.5) - sqrt(0.5))); 2 leaves a margin.
_LIMB = 2.0
_LIMB_BESIDE = 3.0  # the same bound over up to 1.5 px (see _beside_silhouette)

CONVENTION = (
    "flow[v, u] = (du, dv), float32 pixels (du along columns, dv along rows): view i's "
    "pixel centre (u + 0.5, v + 0.5) plus flow is the projection into view j (pixel "
    "centres at +0.5) of the surface point view i's depth gives there; 0 where view i has "
    "no surface or the point is not in front of camera j. covisible[v, u]: view i has a "
    "surface, its point is in front of camera j (planar depth z_j > 0), projects inside "
    "j's image (0 <= u_j < W_j, 0 <= v_j < H_j) and is not occluded in j, judged against "
    "j's depth with (c, r) the pixel containing the projection, d = depth_j[r, c], tol = "
    "the relative tolerance stored with the pair: (1) if d > 0 the point is occluded iff "
    "d < z_j - (tol z_j + e_u + e_v), per axis e = a |n1 - d| with a the projection's "
    "offset from the centre (<= 0.5 px) and n1 j's depth at the neighbour toward it, "
    "capped at 2 |n2 - d| (n2 the neighbour on the other side, if it has a surface) when "
    "n1 has no surface or is a jump the pixel beyond does not continue (|n1 - d| > "
    "2 |n1' - n1|), and e = a |n2 - d| at the image border; (2) if d = 0 the same test is "
    "made against the nearest 4-neighbour with a surface, with slack tol z_j + 3 times its "
    "one-pixel depth difference away from the projection (none: not occluded); (3) where "
    "the cap or (2) decided, i.e. beside a silhouette or limb of j, a point whose surface "
    "normal (from view i's depth, normals.normals_from_depth) faces away from camera j is "
    "occluded"
)


def _geometry(view: View | tuple) -> tuple[np.ndarray, Intrinsics, np.ndarray]:
    """(depth H×W float64, intrinsics, cam_to_world 4×4) of a View or a (depth, K or
    Intrinsics, cam_to_world) tuple; with K, the image size comes from depth's shape."""
    if hasattr(view, "camera") and hasattr(view, "depth"):  # a View
        if view.camera.model != "pinhole":
            raise BlendtruthError(
                f"flow and covisibility are computed for pinhole cameras only; a "
                f"{view.camera.model} view is refused rather than given pinhole flow"
            )
        return np.asarray(view.depth, np.float64), view.camera.intrinsics, view.cam_to_world
    if not (isinstance(view, tuple | list) and len(view) == 3):
        raise BlendtruthError("a view must be a View or a (depth, K, cam_to_world) tuple")
    depth, K, pose = view  # noqa: N806
    depth = np.asarray(depth)
    if depth.ndim != 2:
        raise BlendtruthError(f"depth must be an HxW array, got shape {depth.shape}")
    if not isinstance(K, Intrinsics):
        K = Intrinsics.from_K(K, depth.shape[1], depth.shape[0])  # noqa: N806
    elif (K.height, K.width) != depth.shape:
        raise BlendtruthError(f"depth has shape {depth.shape}, intrinsics are {K.width}x{K.height}")
    return depth.astype(np.float64), K, pose


def flow_between(
    view_i: View | tuple, view_j: View | tuple, rel_tol: float = DEFAULT_REL_TOL
) -> tuple[np.ndarray, np.ndarray]:
    """(flow H_i×W_i×2 float32 pixels, covisible H_i×W_i bool) from view i to view j.

    Each view is a :class:`View` or a (depth, K, cam_to_world) tuple; K, size and pose may
    differ between them. ``flow`` and ``covisible`` are defined in :data:`CONVENTION`.

    Why this occlusion test: j's depth is known only at its pixel centres, and the
    projection falls between them. Occlusion means j sees something *closer* than the
    point, so only that side is tested: a farther value at the containing pixel's centre
    means the centre slid off the point's own silhouette, not that something hides it.
    The slack is ``rel_tol`` (float32 depth, facet edges, curvature) plus, per axis, the
    depth change between the centre and the projection: at most the offset times the
    one-pixel difference toward the projection, since depth is convex in pixel
    coordinates on a plane (1/depth is affine), so a plane at any grazing angle passes,
    and so does a crease the next pixel continues. A jump toward the projection is
    either a discontinuity (the point is then hidden, or on the far side) or the limb of
    the centre's surface, where depth grows like the square root of the distance to the
    limb: within half a pixel by at most 1.37 times the difference on the other side, so
    the slack is capped at twice that. At a limb the near and the far side of a surface
    have nearly the same depth, so there the orientation decides: the far side faces away
    from camera j. What remains uncertain is where an edge lies between two pixel
    centres: covisible may differ from an exact visibility ray only within about a pixel
    of j's silhouettes and depth discontinuities (tests/test_correspondence.py measures
    it on 1.3-1.8 % of the surface pixels at 64×64 px, none elsewhere).
    """
    if isinstance(rel_tol, bool) or not (isinstance(rel_tol, numbers.Real) and 0 <= rel_tol < 1):
        raise BlendtruthError(f"rel_tol must be a number in [0, 1), got {rel_tol!r}")
    depth_i, intr_i, pose_i = _geometry(view_i)
    depth_j, intr_j, pose_j = _geometry(view_j)
    pts = backproject(depth_i, intr_i, pose_i)
    surface = np.isfinite(pts).all(axis=-1)
    uv, z = project(pts[surface], intr_j, pose_j)
    front = z > 0
    u0, v0 = pixel_centers(intr_i.width, intr_i.height)
    start = np.column_stack([u0[surface], v0[surface]])
    flow_s = np.where(front[:, None], uv - start, 0.0)
    inside = front & np.isfinite(uv).all(axis=1)
    inside &= (uv[:, 0] >= 0) & (uv[:, 0] < intr_j.width)
    inside &= (uv[:, 1] >= 0) & (uv[:, 1] < intr_j.height)
    occluded, limb = _occluded(depth_j, uv[inside], z[inside], rel_tol)
    if limb.any():
        # Beside a limb of j the depth test cannot tell the near side from the far side
        # of the surface; the far side faces away from camera j.
        normal = normals_from_depth(depth_i, intr_i)[0][surface][inside][limb]
        to_j = pose_j[:3, 3] - pts[surface][inside][limb]
        occluded[limb] |= np.einsum("nk,nk->n", normal @ pose_i[:3, :3].T, to_j) < 0  # 0: none
    visible = np.zeros(len(z), dtype=bool)
    visible[inside] = ~occluded
    flow = np.zeros((intr_i.height, intr_i.width, 2), dtype=np.float32)
    flow[surface] = flow_s
    covisible = np.zeros((intr_i.height, intr_i.width), dtype=bool)
    covisible[surface] = visible
    return flow, covisible


def flow_from_arrays(
    depth_i: np.ndarray,
    K_i: np.ndarray,  # noqa: N803
    cam_to_world_i: np.ndarray,
    depth_j: np.ndarray,
    K_j: np.ndarray,  # noqa: N803
    cam_to_world_j: np.ndarray,
    rel_tol: float = DEFAULT_REL_TOL,
) -> tuple[np.ndarray, np.ndarray]:
    """:func:`flow_between` on bare arrays: planar depth H×W, K 3×3 pixels, cam_to_world
    4×4 (OpenCV axes) per view."""
    return flow_between((depth_i, K_i, cam_to_world_i), (depth_j, K_j, cam_to_world_j), rel_tol)


def _occluded(
    depth: np.ndarray, uv: np.ndarray, z: np.ndarray, rel_tol: float
) -> tuple[np.ndarray, np.ndarray]:
    """For N projections ``uv`` (inside the H×W ``depth`` of view j) of points at planar
    depth ``z`` in j: (is something in j closer than the point, was the verdict given
    beside a silhouette or limb of j) (see :func:`flow_between`)."""
    height, width = depth.shape
    col = np.minimum(np.floor(uv[:, 0]).astype(np.int64), width - 1)
    row = np.minimum(np.floor(uv[:, 1]).astype(np.int64), height - 1)
    d = depth[row, col]
    slack = rel_tol * z
    limb = np.zeros(len(z), dtype=bool)
    for axis, (dr, dc) in enumerate(((0, 1), (1, 0))):
        at = col if axis == 0 else row
        offset = np.abs(uv[:, axis] - (at + 0.5))
        step = np.where(uv[:, axis] >= at + 0.5, 1, -1)
        near_ok, near = _at(depth, row + dr * step, col + dc * step)
        far_ok, far = _at(depth, row - dr * step, col - dc * step)
        beyond = _at(depth, row + 2 * dr * step, col + 2 * dc * step)[1]
        # The depth change toward the projection: the one-pixel difference times the
        # offset; inf where the neighbour there has no surface (a silhouette of j).
        near_term = np.where(near > 0, offset * np.abs(near - d), np.where(offset > 0, np.inf, 0))
        far_s = np.where(far > 0, np.abs(far - d), 0.0)
        # A jump toward the projection that the pixel beyond does not continue (not a
        # crease) is a limb of the centre's surface if the point is on it: allow the
        # limb's depth change there, not the whole jump.
        crease = (beyond > 0) & (near > 0) & (np.abs(near - d) <= 2 * np.abs(beyond - near))
        capped = (far > 0) & ~crease
        slope = np.where(capped, np.minimum(near_term, _LIMB * far_s), near_term)
        limb |= capped & (near_term > slope + rel_tol * z)  # the cap, beyond noise
        slope = np.where(np.isinf(slope), 0.0, slope)  # a one-pixel-wide surface: no slope
        # At the image border the projection's side is unknown: use the other side.
        slack = slack + np.where(near_ok, slope, offset * far_s)
    occluded = (d > 0) & (d < z - slack)
    empty = d <= 0
    occluded[empty] = _beside_silhouette(depth, uv[empty], z[empty], rel_tol)
    return occluded, limb | empty


def _beside_silhouette(
    depth: np.ndarray, uv: np.ndarray, z: np.ndarray, rel_tol: float
) -> np.ndarray:
    """:func:`_occluded` for projections into a pixel whose centre has no surface: the
    point is just beyond a silhouette of j, and is judged against the 4-neighbour with a
    surface whose centre is nearest (up to 1.5 px away), allowing the limb's depth change
    over that distance: at most 2.41 times the neighbour's own one-pixel difference
    away from the projection (circular profile: 1 / (sqrt(2) - 1)). No such neighbour:
    not occluded."""
    col, row = np.floor(uv[:, 0]).astype(np.int64), np.floor(uv[:, 1]).astype(np.int64)
    best = np.full(len(z), np.inf)
    ref, inward = np.zeros(len(z)), np.zeros(len(z))
    for dc, dr in ((1, 0), (-1, 0), (0, 1), (0, -1)):
        dn = _at(depth, row + dr, col + dc)[1]
        d2 = _at(depth, row + 2 * dr, col + 2 * dc)[1]
        dist = np.hypot(uv[:, 0] - (col + dc + 0.5), uv[:, 1] - (row + dr + 0.5))
        better = (dn > 0) & (dist < best)
        best = np.where(better, dist, best)
        ref = np.where(better, dn, ref)
        inward = np.where(better, np.where(d2 > 0, np.abs(d2 - dn), 0.0), inward)
    return (ref > 0) & (ref < z - rel_tol * z - _LIMB_BESIDE * inward)


def _at(depth: np.ndarray, row: np.ndarray, col: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(inside the image, depth there with 0 outside) at integer pixels (row, col)."""
    height, width = depth.shape
    ok = (row >= 0) & (row < height) & (col >= 0) & (col < width)
    return ok, np.where(ok, depth[row.clip(0, height - 1), col.clip(0, width - 1)], 0.0)


def occlusion_boundary(
    depth: np.ndarray,
    mask: np.ndarray,
    instance: np.ndarray | None = None,
    rel_jump: float = 0.02,
) -> np.ndarray:
    """The ``boundary`` pass: H×W bool, True at a surface pixel (``mask``) whose
    4-neighbour (inside the image) is background, another ``instance`` (H×W ids, optional)
    or across a depth discontinuity.

    Pixels p, q = p + e are across a discontinuity when their planar depths differ by more
    than ``rel_jump`` of the nearer one AND neither side's surface, continued by one pixel
    as a plane, reaches the other: 1/depth is affine in pixel coordinates on a plane, so
    2/d_p - 1/d_(p-e) predicts 1/d_q exactly there; both predictions (from p's side and
    from q's) must miss 1/d_q (resp. 1/d_p) by more than ``rel_jump`` relative. A plane
    at any slope is thus never flagged, a step of more than ``rel_jump`` is, and so is a
    crease where depth changes by more than ``rel_jump`` per pixel. Both sides of a
    discontinuity are flagged; the image border is not a boundary.
    """
    depth = np.asarray(depth, dtype=np.float64)
    mask = np.asarray(mask, dtype=bool)
    if depth.ndim != 2 or mask.shape != depth.shape:
        raise BlendtruthError(
            f"depth and mask must be HxW arrays of one shape, got {depth.shape} and {mask.shape}"
        )
    if instance is not None and np.shape(instance) != depth.shape:
        raise BlendtruthError(f"instance has shape {np.shape(instance)}, expected {depth.shape}")
    if isinstance(rel_jump, bool) or not (isinstance(rel_jump, numbers.Real) and rel_jump > 0):
        raise BlendtruthError(f"rel_jump must be a number > 0, got {rel_jump!r}")
    mask = mask & (depth > 0)
    ids = np.zeros(depth.shape, np.int64) if instance is None else np.asarray(instance)
    # Padded by two on every side with background, so every shift below stays in range.
    pad_d = np.pad(np.where(mask, depth, 0.0), 2)
    pad_m = np.pad(mask, 2)
    pad_i = np.pad(ids, 2)
    height, width = depth.shape
    inside = np.pad(np.ones(depth.shape, bool), 2)

    def at(arr: np.ndarray, dr: int, dc: int) -> np.ndarray:
        return arr[2 + dr : 2 + dr + height, 2 + dc : 2 + dc + width]

    def one_surface(dr: int, dc: int) -> np.ndarray:
        """The pixel and its neighbour (dr, dc) are both surface, of one instance."""
        return at(pad_m, dr, dc) & (at(pad_i, dr, dc) == ids) & mask

    with np.errstate(divide="ignore", invalid="ignore"):
        w = np.where(pad_d > 0, 1.0 / pad_d, 0.0)
        boundary = np.zeros(depth.shape, bool)
        for dr, dc in ((0, 1), (0, -1), (1, 0), (-1, 0)):
            in_image = at(inside, dr, dc)
            d_p, d_q = depth, at(pad_d, dr, dc)
            w_p, w_q = at(w, 0, 0), at(w, dr, dc)
            raw = np.abs(d_q - d_p) > rel_jump * np.minimum(d_p, d_q)
            # p's side continued to q (from p - e), and q's side continued to p (from q + e).
            from_p = np.where(one_surface(-dr, -dc), np.abs(2 * w_p - at(w, -dr, -dc) - w_q)
                              / w_q, np.inf)  # fmt: skip
            q_ok = at(pad_m, 2 * dr, 2 * dc) & (at(pad_i, 2 * dr, 2 * dc) == at(pad_i, dr, dc))
            from_q = np.where(q_ok, np.abs(2 * w_q - at(w, 2 * dr, 2 * dc) - w_p) / w_p, np.inf)
            jump = raw & (np.minimum(from_p, from_q) > rel_jump)
            other = ~at(pad_m, dr, dc) | (at(pad_i, dr, dc) != ids) | jump
            boundary |= mask & in_image & other
    return boundary


def pair_list(mode: str | Sequence[Sequence[int]], count: int) -> list[tuple[int, int]]:
    """The ordered view pairs (i, j) of ``mode`` for ``count`` views.

    "none": no pairs. "consecutive": (k, k + 1) and (k + 1, k) for k = 0 .. count - 2, so
    forward and backward flow; no wrap-around from the last view to the first (only the
    orbit sampler closes a loop; give that pair explicitly). "all": every ordered pair
    i != j, refused above :data:`MAX_ALL_VIEWS` views. Or an explicit list of (i, j).
    """
    mode = check_pairs(mode, count)
    if mode == "none":
        return []
    if mode == "consecutive":
        return [p for k in range(count - 1) for p in ((k, k + 1), (k + 1, k))]
    if mode == "all":
        return [(i, j) for i in range(count) for j in range(count) if i != j]
    return list(mode)


def check_pairs(
    mode: str | Sequence[Sequence[int]], count: int | None
) -> str | tuple[tuple[int, int], ...]:
    """``mode`` validated for ``count`` views (None: not known yet): a mode name, or the
    explicit pairs as a tuple of (i, j) without repeats. One-line BlendtruthError if bad."""
    if isinstance(mode, str):
        if mode not in PAIR_MODES:
            raise BlendtruthError(
                f"--pairs must be one of {', '.join(PAIR_MODES)} or a list of (i, j); got {mode!r}"
            )
        if mode == "all" and count is not None and count > MAX_ALL_VIEWS:
            raise BlendtruthError(
                f"--pairs all: {count} views would give {count * (count - 1)} flow files; "
                f"at most {MAX_ALL_VIEWS} views are allowed, use --pairs consecutive or "
                "an explicit list of pairs"
            )
        return mode
    pairs: list[tuple[int, int]] = []
    for pair in mode:
        try:
            i, j = (int(x) for x in pair)
        except (TypeError, ValueError):
            raise BlendtruthError(f"pairs: {pair!r} is not a pair of view indices") from None
        limit = np.inf if count is None else count
        if not (0 <= i < limit and 0 <= j < limit) or i == j:
            raise BlendtruthError(
                f"pairs: ({i}, {j}) must be two different view indices"
                + ("" if count is None else f" in 0..{count - 1}")
            )
        if (i, j) not in pairs:
            pairs.append((i, j))
    return tuple(pairs)
