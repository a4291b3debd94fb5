"""Surface normals from a planar depth map (numpy, plus OpenCV's Sobel for the tutorial).

:func:`normals_from_depth` returns normals in the camera frame (OpenCV axes), unit length,
facing the camera (dot(normal, point) < 0; for the tutorial's "sobel" method normal_z < 0,
see there), and 0 where its validity mask is False.
:func:`dmap2norm` is the tutorial's own function, kept bit for bit.
"""

from __future__ import annotations

import cv2
import numpy as np

from blendtruth.errors import BlendtruthError
from blendtruth.geometry.camera import Intrinsics
from blendtruth.geometry.rays import backproject, unit_vectors

METHODS = ("pinhole", "sobel")

# A neighbour whose depth differs from the pixel's by more than this fraction of the
# pixel's depth lies across a discontinuity. A surface turned by theta away from facing
# the camera changes depth by about tan(theta) / f of the depth per pixel (f in pixels),
# so 5% still accepts slopes up to ~87° at f = 500 px and ~79° at f = 100 px, while a
# silhouette (object over background, or one object over another) jumps by far more in
# typical scenes. Too small a value makes steep surfaces one-sided; too large lets
# central differences straddle silhouettes.
DEFAULT_MAX_DEPTH_JUMP = 0.05


def dmap2norm(dmap: np.ndarray) -> np.ndarray:
    """The tutorial's normals, bit for bit: H×W depth -> H×W×3 float32 in [0, 1].

    zx, zy = 5×5 Sobel derivatives of depth along columns and rows (cv2.CV_64F, unscaled,
    per *pixel*: K is ignored); t = (-zx, -zy, 1) / |·|; stored as (t + 1) / 2 with the
    channels reversed, i.e. channel 0 holds t_z. The tutorial divides by an H×W length
    without a trailing axis, which numpy refuses to broadcast; the division here is the
    same per-element operation with the axis made explicit.
    """
    zx = cv2.Sobel(dmap, cv2.CV_64F, 1, 0, ksize=5)
    zy = cv2.Sobel(dmap, cv2.CV_64F, 0, 1, ksize=5)
    normals = np.dstack((-zx, -zy, np.ones_like(dmap)))
    length = np.linalg.norm(normals, axis=2)
    normals[:, :, :] /= length[..., None]
    normals += 1
    normals /= 2
    return normals[:, :, ::-1].astype(np.float32)


def normals_from_depth(
    depth: np.ndarray,
    intr: Intrinsics,
    method: str = "pinhole",
    max_depth_jump: float = DEFAULT_MAX_DEPTH_JUMP,
) -> tuple[np.ndarray, np.ndarray]:
    """Normals from planar ``depth`` (H×W float32/float64, scene units, 0 = no surface).

    Methods:

    - ``"pinhole"`` (default, geometrically correct): back-project every pixel with K,
      form the tangents along u and along v from neighbouring 3D points, cross them. A
      tangent is the central difference when both neighbours are acceptable, else the
      one-sided difference toward the acceptable one, i.e. the side with the smaller depth
      jump (three-point, second order, when the pixel beyond continues the surface), so
      normals do not smear across silhouettes. A neighbour is acceptable if it has
      depth > 0 and its relative depth jump |dz| / z is at most ``max_depth_jump`` (see
      ``DEFAULT_MAX_DEPTH_JUMP`` for the choice of 0.05). Valid where depth > 0 and each
      axis has at least one acceptable neighbour. Exact on planes; on curved surfaces
      the error falls with the square of the pixel spacing, except in the 1-2 pixel band
      at a silhouette where the surface turns away at grazing angles.
    - ``"sobel"``: the tutorial's :func:`dmap2norm` decoded back to t = (-zx, -zy, 1)/|t|
      (channels un-reversed, (x * 2 - 1) undone) and flipped to face the camera: normal
      = -t, so normal_z < 0. It differentiates depth per pixel and ignores K, so it is
      reproduced, not correct: only a fronto-parallel plane comes out right (see
      docs/normals_accuracy.md). Its vectors mix metres with pixels and have no proper
      camera frame, so near grazing silhouettes a few may have dot(normal, point) > 0
      (0.2-3% of the test sphere's valid pixels); they are not flipped. Valid where depth > 0 for
      all 25 pixels of the 5×5 Sobel window, which also excludes the 2-pixel image border
      (the window leaves the image there).

    Returns (normal_cam H×W×3 float32, OpenCV camera frame, unit, facing the camera, 0
    where invalid; valid H×W bool).
    """
    if method not in METHODS:
        raise BlendtruthError(
            f"normals method must be one of {', '.join(repr(m) for m in METHODS)}; got {method!r}"
        )
    depth = np.asarray(depth)
    if depth.shape != (intr.height, intr.width):
        raise BlendtruthError(
            f"depth has shape {depth.shape}, expected ({intr.height}, {intr.width}) (H, W) "
            f"for this {intr.width}x{intr.height} camera"
        )
    try:
        jump = float(max_depth_jump)
    except (TypeError, ValueError):
        jump = np.nan
    if not (np.isfinite(jump) and jump > 0):
        raise BlendtruthError(f"max_depth_jump must be a number > 0, got {max_depth_jump!r}")
    if method == "sobel":
        return _sobel(depth)
    return _pinhole(depth, intr, jump)


def _sobel(depth: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    depth32 = depth.astype(np.float32)  # the tutorial's dmap is float32
    t = dmap2norm(depth32)[..., ::-1].astype(np.float64) * 2 - 1
    hit = (depth32 > 0).astype(np.uint8)
    valid = cv2.erode(
        hit, np.ones((5, 5), np.uint8), borderType=cv2.BORDER_CONSTANT, borderValue=0
    ).astype(bool)
    # t = (-zx, -zy, 1)/|.| points away from the camera (t_z > 0); -t faces it. A
    # per-pixel flip along the pixel's ray is deliberately not done: these pixel-unit
    # vectors have no camera frame, and flipping the few that lean past a grazing ray
    # would turn a ~10° error into a ~170° one.
    normal = unit_vectors(np.where(valid[..., None], -t, 0.0))
    return normal.astype(np.float32), valid


def _pinhole(depth: np.ndarray, intr: Intrinsics, max_jump: float) -> tuple[np.ndarray, np.ndarray]:
    pts = backproject(depth, intr)  # NaN where there is no surface
    z = pts[..., 2]
    valid = np.isfinite(z)
    tangents = []
    for axis in (1, 0):  # along u (columns), then along v (rows)
        tangent, ok = _tangent(pts, z, axis, max_jump)
        tangents.append(tangent)
        valid &= ok
    # Tangents point along +u (+x) and +v (+y); their cross product points away from the
    # camera for a surface facing it, hence the minus.
    normal = -np.cross(tangents[0], tangents[1])
    normal = unit_vectors(np.where(valid[..., None], normal, 0.0))
    # With p = z·r and r = K^-1 (u, v, 1), the central and two-point tangents give
    # (t_u × t_v)·p = (a product of positive depths) / (fx·fy) > 0, so the normal faces
    # the camera; a three-point stencil keeps that only while the next depth is under twice
    # the neighbour's, so with max_depth_jump >= 1 a few border pixels need turning back.
    away = np.sum(normal * np.nan_to_num(pts), axis=-1) > 0
    normal[away] *= -1
    valid &= np.linalg.norm(normal, axis=-1) > 0
    return normal.astype(np.float32), valid


def _tangent(
    pts: np.ndarray, z: np.ndarray, axis: int, max_jump: float
) -> tuple[np.ndarray, np.ndarray]:
    """Tangent (H×W×3, unnormalised) along image ``axis`` at every pixel, and the H×W mask
    of pixels where one could be formed.

    Central difference (p[+1] - p[-1]) / 2 where both neighbours are acceptable; else the
    one-sided difference toward the one acceptable neighbour (the side with the smaller
    depth jump, as the other is missing or jumps beyond ``max_jump``): the second-order
    three-point stencil when the pixel beyond it continues the surface too, the two-point
    one otherwise.
    """
    after, before = _shifted(pts, axis, -1), _shifted(pts, axis, 1)
    after2, before2 = _shifted(after, axis, -1), _shifted(before, axis, 1)
    ok_a = _continues(z, after[..., 2], max_jump)
    ok_b = _continues(z, before[..., 2], max_jump)
    ok_a2 = ok_a & _continues(after[..., 2], after2[..., 2], max_jump)
    ok_b2 = ok_b & _continues(before[..., 2], before2[..., 2], max_jump)
    one_a = np.where(ok_a2[..., None], (4 * after - after2 - 3 * pts) / 2, after - pts)
    one_b = np.where(ok_b2[..., None], (3 * pts - 4 * before + before2) / 2, pts - before)
    tangent = np.where(
        (ok_a & ok_b)[..., None],
        (after - before) / 2,
        np.where(ok_a[..., None], one_a, one_b),
    )
    ok = ok_a | ok_b
    return np.where(ok[..., None], tangent, 0.0), ok


def _continues(z: np.ndarray, z_next: np.ndarray, max_jump: float) -> np.ndarray:
    """H×W bool: both depths exist and differ by at most ``max_jump`` of ``z``."""
    with np.errstate(invalid="ignore"):
        jump = np.abs(z_next - z) / z
    return np.isfinite(jump) & (jump <= max_jump)


def _shifted(arr: np.ndarray, axis: int, step: int) -> np.ndarray:
    """``arr`` moved by ``step`` along ``axis`` (step -1: element i holds arr[i + 1];
    step +1: element i holds arr[i - 1]), NaN where that neighbour is outside the image."""
    out = np.full_like(arr, np.nan)
    n = arr.shape[axis]
    src = [slice(None)] * arr.ndim
    dst = [slice(None)] * arr.ndim
    if step == -1:
        src[axis], dst[axis] = slice(1, n), slice(0, n - 1)
    else:
        src[axis], dst[axis] = slice(0, n - 1), slice(1, n)
    out[tuple(dst)] = arr[tuple(src)]
    return out
