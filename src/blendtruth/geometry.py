"""Depth, rays, back-projection and projection for a pinhole camera (pure numpy).

Camera frame: OpenCV axes. ``depth`` is planar (camera z), ``distance`` the Euclidean
length of the ray from the camera centre; 0 means no surface for both.
"""

from __future__ import annotations

import numpy as np

from blendtruth.camera import Intrinsics
from blendtruth.errors import BlendtruthError


def pixel_centers(width: int, height: int) -> tuple[np.ndarray, np.ndarray]:
    """H×W arrays of pixel-centre coordinates u + 0.5 (column) and v + 0.5 (row)."""
    u, v = np.meshgrid(np.arange(width) + 0.5, np.arange(height) + 0.5)
    return u, v


def ray_directions(intr: Intrinsics) -> np.ndarray:
    """H×W×3 camera-frame directions through pixel centres, scaled so that z = 1."""
    u, v = pixel_centers(intr.width, intr.height)
    return np.dstack([(u - intr.cx) / intr.fx, (v - intr.cy) / intr.fy, np.ones_like(u)])


def _check_image(arr: np.ndarray, intr: Intrinsics, name: str) -> np.ndarray:
    arr = np.asarray(arr)
    if arr.shape[:2] != (intr.height, intr.width):
        raise BlendtruthError(
            f"{name} has shape {arr.shape}, expected {intr.height}x{intr.width} for this camera"
        )
    return arr


def depth_to_distance(depth: np.ndarray, intr: Intrinsics) -> np.ndarray:
    """Planar depth -> ray distance (H×W float64); 0 stays 0."""
    depth = _check_image(depth, intr, "depth").astype(np.float64)
    return depth * np.linalg.norm(ray_directions(intr), axis=-1)


def distance_to_depth(distance: np.ndarray, intr: Intrinsics) -> np.ndarray:
    """Ray distance -> planar depth (H×W float64); 0 stays 0."""
    distance = _check_image(distance, intr, "distance").astype(np.float64)
    return distance / np.linalg.norm(ray_directions(intr), axis=-1)


def backproject(
    depth: np.ndarray, intr: Intrinsics, cam_to_world: np.ndarray | None = None
) -> np.ndarray:
    """H×W×3 points for planar ``depth``: camera frame, or world frame with a pose.
    Pixels with depth 0 give NaN."""
    depth = _check_image(depth, intr, "depth").astype(np.float64)
    pts = ray_directions(intr) * np.where(depth > 0, depth, np.nan)[..., None]
    if cam_to_world is None:
        return pts
    pose = np.asarray(cam_to_world, dtype=np.float64)
    return pts @ pose[:3, :3].T + pose[:3, 3]


def project(
    points: np.ndarray, intr: Intrinsics, cam_to_world: np.ndarray | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Project N×3 points (world frame with a pose, else camera frame) to pixel coordinates.
    Returns (uv N×2 in the pixel-centre convention, planar depth z N)."""
    pts = np.asarray(points, dtype=np.float64)
    if pts.ndim != 2 or pts.shape[1] != 3:
        raise BlendtruthError(f"points must have shape (N, 3), got {pts.shape}")
    if cam_to_world is not None:
        pose = np.asarray(cam_to_world, dtype=np.float64)
        pts = (pts - pose[:3, 3]) @ pose[:3, :3]
    z = pts[:, 2]
    with np.errstate(divide="ignore", invalid="ignore"):
        uv = np.column_stack([intr.fx * pts[:, 0] / z + intr.cx, intr.fy * pts[:, 1] / z + intr.cy])
    return uv, z


def normals_to_camera(normal_world: np.ndarray, cam_to_world: np.ndarray) -> np.ndarray:
    """World-frame normals (...×3) -> camera frame (OpenCV axes): R^T n. Zeros stay zero."""
    rot = np.asarray(cam_to_world, dtype=np.float64)[:3, :3]
    return np.asarray(normal_world, dtype=np.float64) @ rot


def normals_to_world(normal_cam: np.ndarray, cam_to_world: np.ndarray) -> np.ndarray:
    """Camera-frame normals (...×3) -> world frame: R n. Zeros stay zero."""
    rot = np.asarray(cam_to_world, dtype=np.float64)[:3, :3]
    return np.asarray(normal_cam, dtype=np.float64) @ rot.T


def unit_vectors(v: np.ndarray) -> np.ndarray:
    """``v`` (...×3) scaled to unit length along the last axis; zero vectors stay zero."""
    norm = np.linalg.norm(v, axis=-1, keepdims=True)
    return np.divide(v, norm, out=np.zeros_like(v), where=norm > 0)
