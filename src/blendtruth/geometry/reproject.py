"""Where world points land in other views, and whether those views see them (pure numpy).

Pixel convention as everywhere (docs/conventions.md): pixel (u, v) covers [u, u+1) × [v, v+1),
its centre is (u + 0.5, v + 0.5); projected coordinates are continuous in that frame.
"""

from __future__ import annotations

import numpy as np

from blendtruth.geometry.frames import invert_pose


def project(points: np.ndarray, camera) -> tuple[np.ndarray, np.ndarray]:
    """World points (N×3) -> (uv N×2 continuous pixel coordinates, z N), through the
    camera's own model (``camera.projection``): z is the value the model's ``depth`` pass
    would hold there (planar depth for pinhole and ortho, ray distance for panoramic
    models), and z <= 0 where the camera cannot see the point (behind it, outside a
    fisheye's field of view); there uv is meaningless."""
    world_to_cam = invert_pose(camera.cam_to_world)
    cam = np.asarray(points, dtype=np.float64) @ world_to_cam[:3, :3].T + world_to_cam[:3, 3]
    uv, depth, valid = camera.projection.project(cam)
    return uv, np.where(valid, depth, -np.abs(depth))


def ray_points(camera, uv: np.ndarray, depth: np.ndarray) -> np.ndarray:
    """World points (N×3) on the camera's rays through ``uv`` (N×2) whose ``depth`` (N, as
    the model's depth pass defines it) is given: the inverse of :func:`project`."""
    model = camera.projection
    o, d, _ = model.rays(uv)
    depth = np.asarray(depth, dtype=np.float64)
    t = depth if model.depth_is_distance else (depth - o[:, 2]) / d[:, 2]
    cam = o + d * t[:, None]
    return cam @ camera.cam_to_world[:3, :3].T + camera.cam_to_world[:3, 3]


def interpolate_depth(
    depth: np.ndarray, mask: np.ndarray, uv: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """The surface depth a view records at continuous pixel positions ``uv`` (N×2).

    Bilinear in inverse depth between the four surrounding pixel centres (exact on planes,
    whose 1/z is affine in u, v). Returns (depth N, valid N): valid where all four centres
    exist and hit a surface; depth is 0 where not valid.
    """
    height, width = depth.shape
    x = uv[:, 0] - 0.5
    y = uv[:, 1] - 0.5
    finite = np.isfinite(x) & np.isfinite(y)
    x0 = np.floor(np.where(finite, x, -1)).astype(np.int64)
    y0 = np.floor(np.where(finite, y, -1)).astype(np.int64)
    valid = finite & (x0 >= 0) & (y0 >= 0) & (x0 + 1 < width) & (y0 + 1 < height)
    xi, yi = np.where(valid, x0, 0), np.where(valid, y0, 0)
    fx, fy = x - xi, y - yi
    corners = [(yi, xi), (yi, xi + 1), (yi + 1, xi), (yi + 1, xi + 1)]
    for r, c in corners:
        valid &= mask[r, c]
    inv = [np.where(valid, 1.0 / np.where(valid, depth[r, c], 1.0), 0.0) for r, c in corners]
    w = [(1 - fx) * (1 - fy), fx * (1 - fy), (1 - fx) * fy, fx * fy]
    inv_z = sum(wi * vi for wi, vi in zip(w, inv, strict=True))
    out = np.zeros(len(uv))
    out[valid] = 1.0 / inv_z[valid]
    return out, valid


def visibility(
    points: np.ndarray, camera, depth: np.ndarray, mask: np.ndarray, rel_tol: float
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Where ``points`` (N×3, world) land in a view and how they compare with its depth.

    Returns (uv N×2, seen N bool, residual N): ``residual = (z − d) / d`` with z the point's
    camera depth and d the view's interpolated depth there (NaN where not comparable);
    ``seen`` where |residual| <= rel_tol. residual < −rel_tol means the point lies in
    front of the surface the view recorded (free space the view saw through: an
    inconsistency); > rel_tol means it is hidden behind that surface (occluded).
    """
    uv, z = project(points, camera)
    d, valid = interpolate_depth(depth, mask, uv)
    valid &= z > 0
    residual = np.full(len(points), np.nan)
    residual[valid] = (z[valid] - d[valid]) / d[valid]
    seen = valid & (np.abs(np.nan_to_num(residual, nan=np.inf)) <= rel_tol)
    return uv, seen, residual
