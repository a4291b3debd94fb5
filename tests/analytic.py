"""Analytic ray casting in numpy (float64): the independent truth for pure and render tests.

Rays are built here from K itself (K^-1 applied to pixel centres (u + 0.5, v + 0.5, 1)),
not with blendtruth.geometry.rays, so a mistake there cannot hide in its own truth.
All helpers take an :class:`~blendtruth.geometry.camera.Intrinsics` and return H×W(×3) arrays:
planar depth (camera z, 0 = miss), normals and a hit mask.
"""

from __future__ import annotations

import numpy as np

from blendtruth.geometry.camera import Intrinsics


def camera_rays(intr: Intrinsics) -> np.ndarray:
    """H×W×3 camera-frame (OpenCV) rays through pixel centres, scaled to z = 1."""
    rows, cols = np.indices((intr.height, intr.width), dtype=np.float64)
    pix = np.stack([cols + 0.5, rows + 0.5, np.ones_like(cols)], axis=-1)
    rays = np.linalg.solve(intr.K, pix.reshape(-1, 3).T).T.reshape(pix.shape)
    return rays / rays[..., 2:]


def _world_rays(intr: Intrinsics, cam_to_world: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    pose = np.asarray(cam_to_world, dtype=np.float64)
    return pose[:3, 3], camera_rays(intr) @ pose[:3, :3].T  # keeps z_cam = 1 scaling


def ray_box(
    intr: Intrinsics, cam_to_world: np.ndarray, box_min, box_max
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Pixel-centre rays of a camera (``cam_to_world`` 4×4, OpenCV axes) against the
    world-axis-aligned box [box_min, box_max] (3 world coordinates each), slab method.

    Returns (depth H×W planar, 0 = miss; distance H×W Euclidean, 0 = miss; normal_world
    H×W×3 outward unit normal of the entry face, world frame, 0 = miss; mask H×W bool).
    A camera inside the box sees nothing (only entry faces count).
    """
    origin, dirs = _world_rays(intr, cam_to_world)
    lo, hi = np.asarray(box_min, float), np.asarray(box_max, float)
    with np.errstate(divide="ignore", invalid="ignore"):
        t1 = (lo - origin) / dirs
        t2 = (hi - origin) / dirs
    tmin = np.minimum(t1, t2)
    tmax = np.maximum(t1, t2)
    t_enter = tmin.max(axis=-1)
    t_exit = tmax.min(axis=-1)
    mask = (t_enter <= t_exit) & (t_enter > 0)
    axis = tmin.argmax(axis=-1)
    normal = np.zeros(dirs.shape)
    sign = -np.sign(np.take_along_axis(dirs, axis[..., None], axis=-1)[..., 0])
    np.put_along_axis(normal, axis[..., None], sign[..., None], axis=-1)
    normal[~mask] = 0
    depth = np.where(mask, t_enter, 0.0)  # dirs have z_cam = 1, so t is planar depth
    distance = depth * np.linalg.norm(dirs, axis=-1)
    return depth, distance, normal, mask


def ray_sphere(
    intr: Intrinsics, center, radius: float, cam_to_world: np.ndarray | None = None
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Pixel-centre rays against a sphere; ``center`` in the camera frame, or in the world
    frame when ``cam_to_world`` (4×4, OpenCV axes) is given. The camera must be outside.

    Returns (depth H×W planar, 0 = miss; normal H×W×3 outward unit normal in the camera
    frame, which faces the camera on the visible side, 0 = miss; mask H×W bool)."""
    pose = np.eye(4) if cam_to_world is None else np.asarray(cam_to_world, float)
    c = (np.asarray(center, float) - pose[:3, 3]) @ pose[:3, :3]  # centre in camera frame
    d = camera_rays(intr)
    a = np.sum(d * d, axis=-1)
    b = -2 * d @ c
    disc = b * b - 4 * a * (c @ c - radius**2)
    mask = disc > 0
    t = np.where(mask, (-b - np.sqrt(np.where(mask, disc, 0))) / (2 * a), 0.0)
    mask &= t > 0
    p = d * t[..., None]
    normal = np.where(mask[..., None], (p - c) / radius, 0.0)
    return np.where(mask, t, 0.0), normal, mask


def ray_plane(intr: Intrinsics, point, normal) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Pixel-centre rays against the infinite plane through ``point`` with ``normal``
    (camera frame). Returns (depth H×W planar, 0 = miss or behind the camera; normal
    H×W×3 the plane's unit normal turned toward the camera, 0 = miss; mask H×W bool)."""
    n = np.asarray(normal, float) / np.linalg.norm(normal)
    d = camera_rays(intr)
    denom = d @ n
    with np.errstate(divide="ignore", invalid="ignore"):
        t = (np.asarray(point, float) @ n) / denom
    mask = np.isfinite(t) & (t > 0)
    facing = n if np.asarray(point, float) @ n < 0 else -n
    normal_img = np.where(mask[..., None], facing, 0.0)
    return np.where(mask, t, 0.0), normal_img, mask


def uv_sphere_vertex_normal_deviation(segments: int = 32, rings: int = 16) -> float:
    """Largest angle (radians) between a vertex normal of a unit UV sphere mesh, computed as
    Blender does (face normals weighted by the face's corner angle at the vertex), and the
    exact radial normal there. A smooth-shaded normal is a convex blend of the vertex
    normals of its face, whose radial directions blend to the exact normal at the hit
    point; so this is the tessellation's bound on the shading normal's error."""
    theta = np.pi * np.arange(1, rings) / rings  # polar angle of the rings
    phi = 2 * np.pi * np.arange(segments) / segments
    ring = np.stack([np.outer(np.sin(theta), np.cos(phi)), np.outer(np.sin(theta), np.sin(phi)),
                     np.outer(np.cos(theta), np.ones_like(phi))], axis=-1)  # fmt: skip
    top, bottom = np.array([0.0, 0.0, 1.0]), np.array([0.0, 0.0, -1.0])
    faces = []
    for j in range(segments):
        k = (j + 1) % segments
        faces.append([top, ring[0, j], ring[0, k]])
        faces.append([bottom, ring[-1, k], ring[-1, j]])
        for i in range(rings - 2):
            faces.append([ring[i, j], ring[i + 1, j], ring[i + 1, k], ring[i, k]])
    sums: dict[tuple, np.ndarray] = {}
    for face in faces:
        pts = np.array(face)
        normal = np.cross(pts[1] - pts[0], pts[2] - pts[0])
        normal /= np.linalg.norm(normal)
        normal *= np.sign(normal @ pts.mean(axis=0))  # outward
        for c in range(len(pts)):
            a, b = pts[c - 1] - pts[c], pts[(c + 1) % len(pts)] - pts[c]
            angle = np.arccos(np.clip(a @ b / np.linalg.norm(a) / np.linalg.norm(b), -1, 1))
            key = tuple(np.round(pts[c], 12))
            sums[key] = sums.get(key, 0) + angle * normal
    worst = 0.0
    for key, total in sums.items():
        v = np.array(key)
        n = total / np.linalg.norm(total)
        worst = max(worst, float(np.arctan2(np.linalg.norm(np.cross(n, v)), n @ v)))
    return worst
