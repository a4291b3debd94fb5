"""Analytic ray casting in numpy (float64): the independent truth for render tests."""

from __future__ import annotations

import numpy as np

from blendtruth.camera import Intrinsics
from blendtruth.geometry import ray_directions


def _world_rays(intr: Intrinsics, cam_to_world: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    dirs = ray_directions(intr) @ np.asarray(cam_to_world)[:3, :3].T  # z_cam = 1 scaling
    return np.asarray(cam_to_world)[:3, 3], dirs


def ray_box(intr: Intrinsics, cam_to_world: np.ndarray, box_min, box_max):
    """Pixel-centre rays against an axis-aligned box (slab method).

    Returns depth (planar, 0 = miss), distance, normal_world (outward face normal of the
    entry face, 0 = miss) and mask, all H×W(×3) float64/bool.
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


def ray_sphere(intr: Intrinsics, center, radius: float, cam_to_world=None):
    """Pixel-centre rays against a sphere (camera frame unless a pose is given).

    Returns planar depth (0 = miss), outward unit normal in the camera frame, and mask."""
    pose = np.eye(4) if cam_to_world is None else np.asarray(cam_to_world, float)
    c = (np.asarray(center, float) - pose[:3, 3]) @ pose[:3, :3]  # centre in camera frame
    d = ray_directions(intr)
    a = np.sum(d * d, axis=-1)
    b = -2 * d @ c
    disc = b * b - 4 * a * (c @ c - radius**2)
    mask = disc > 0
    t = np.where(mask, (-b - np.sqrt(np.where(mask, disc, 0))) / (2 * a), 0.0)
    mask &= t > 0
    p = d * t[..., None]
    normal = np.where(mask[..., None], (p - c) / radius, 0.0)
    return np.where(mask, t, 0.0), normal, mask


def ray_plane(intr: Intrinsics, point, normal):
    """Pixel-centre rays against an infinite plane, camera frame. Returns planar depth
    (0 = miss or behind), the plane's unit normal turned toward the camera, and mask."""
    n = np.asarray(normal, float) / np.linalg.norm(normal)
    d = ray_directions(intr)
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
