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
