"""Rays, depth <-> distance, back-projection and projection for a pinhole camera (numpy).

Camera frame: OpenCV axes (x right, y down, z forward). Pixel centres at (u + 0.5, v + 0.5)
(see :mod:`blendtruth.geometry.camera`). ``depth`` is planar: the camera-frame z of the surface
point; ``distance`` is the Euclidean length of the ray from the camera centre to it. Both
are in scene units (metres), and 0 means no surface for both. Inputs may be float32 or
float64; outputs are float64.
"""

from __future__ import annotations

import numpy as np

from blendtruth.errors import BlendtruthError
from blendtruth.geometry.camera import Intrinsics
from blendtruth.geometry.frames import validate_pose


def pixel_centers(width: int, height: int) -> tuple[np.ndarray, np.ndarray]:
    """(u, v): two H×W float64 arrays of pixel-centre coordinates, u = column + 0.5 and
    v = row + 0.5."""
    u, v = np.meshgrid(np.arange(width) + 0.5, np.arange(height) + 0.5)
    return u, v


def ray_directions(intr: Intrinsics) -> np.ndarray:
    """H×W×3 float64 camera-frame rays through the pixel centres, scaled to z = 1:
    ((u + 0.5 - cx) / fx, (v + 0.5 - cy) / fy, 1). Multiplying by planar depth gives the
    surface point."""
    u, v = pixel_centers(intr.width, intr.height)
    return np.dstack([(u - intr.cx) / intr.fx, (v - intr.cy) / intr.fy, np.ones_like(u)])


def _image(arr: np.ndarray, intr: Intrinsics, name: str) -> np.ndarray:
    """``arr`` as an H×W float64 array matching ``intr``, or a BlendtruthError."""
    arr = np.asarray(arr)
    if arr.shape != (intr.height, intr.width):
        raise BlendtruthError(
            f"{name} has shape {arr.shape}, expected ({intr.height}, {intr.width}) "
            f"(H, W) for this {intr.width}x{intr.height} camera"
        )
    if not np.issubdtype(arr.dtype, np.number) or np.issubdtype(arr.dtype, np.complexfloating):
        raise BlendtruthError(f"{name} must be a real-valued array, got dtype {arr.dtype}")
    return arr.astype(np.float64)


def _pose(cam_to_world: np.ndarray) -> np.ndarray:
    validate_pose(cam_to_world, "cam_to_world")
    return np.asarray(cam_to_world, dtype=np.float64)


def _vectors(arr: np.ndarray, name: str) -> np.ndarray:
    arr = np.asarray(arr, dtype=np.float64)
    if arr.ndim < 1 or arr.shape[-1] != 3:
        raise BlendtruthError(f"{name} must have shape (..., 3), got {arr.shape}")
    return arr


def _ray_lengths(intr: Intrinsics) -> np.ndarray:
    """H×W Euclidean length of the z = 1 pixel-centre rays (>= 1)."""
    return np.linalg.norm(ray_directions(intr), axis=-1)


def depth_to_distance(depth: np.ndarray, intr: Intrinsics) -> np.ndarray:
    """Planar depth (H×W) -> Euclidean ray distance (H×W float64); 0 stays 0."""
    return _image(depth, intr, "depth") * _ray_lengths(intr)


def distance_to_depth(distance: np.ndarray, intr: Intrinsics) -> np.ndarray:
    """Euclidean ray distance (H×W) -> planar depth (H×W float64); 0 stays 0."""
    return _image(distance, intr, "distance") / _ray_lengths(intr)


def backproject(
    depth: np.ndarray, intr: Intrinsics, cam_to_world: np.ndarray | None = None
) -> np.ndarray:
    """H×W×3 float64 surface points for planar ``depth`` (H×W): camera frame (OpenCV
    axes), or world frame when ``cam_to_world`` (4×4, OpenCV axes) is given. Pixels with
    depth <= 0 (no surface) or NaN give NaN."""
    depth = _image(depth, intr, "depth")
    pts = ray_directions(intr) * np.where(depth > 0, depth, np.nan)[..., None]
    if cam_to_world is None:
        return pts
    pose = _pose(cam_to_world)
    return pts @ pose[:3, :3].T + pose[:3, 3]


def project(
    points: np.ndarray, intr: Intrinsics, cam_to_world: np.ndarray | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Project N×3 points (world frame when ``cam_to_world`` is given, else camera frame).

    Returns (uv N×2 float64 pixel coordinates in the pixel-centre convention, so the
    centre of pixel (column i, row j) is (i + 0.5, j + 0.5); z N float64 planar depth).
    Points with z <= 0 are behind the camera: their uv is meaningless (inf/NaN at z = 0),
    so check z > 0.
    """
    pts = np.asarray(points, dtype=np.float64)
    if pts.ndim != 2 or pts.shape[1] != 3:
        raise BlendtruthError(f"points must have shape (N, 3), got {pts.shape}")
    if cam_to_world is not None:
        pose = _pose(cam_to_world)
        pts = (pts - pose[:3, 3]) @ pose[:3, :3]  # R^T (p - t), row-vector form
    z = pts[:, 2]
    with np.errstate(divide="ignore", invalid="ignore"):
        uv = np.column_stack([intr.fx * pts[:, 0] / z + intr.cx, intr.fy * pts[:, 1] / z + intr.cy])
    return uv, z


def normals_to_camera(normal_world: np.ndarray, cam_to_world: np.ndarray) -> np.ndarray:
    """World-frame normals (...×3) -> camera frame, OpenCV axes (R^T n), float64.
    Zero vectors (no surface) stay zero."""
    rot = _pose(cam_to_world)[:3, :3]
    return _vectors(normal_world, "normal_world") @ rot


def normals_to_world(normal_cam: np.ndarray, cam_to_world: np.ndarray) -> np.ndarray:
    """Camera-frame normals (...×3, OpenCV axes) -> world frame (R n), float64.
    Zero vectors stay zero."""
    rot = _pose(cam_to_world)[:3, :3]
    return _vectors(normal_cam, "normal_cam") @ rot.T


def unit_vectors(v: np.ndarray) -> np.ndarray:
    """``v`` (...×3) scaled to unit length along the last axis; zero vectors stay zero.
    Keeps ``v``'s floating dtype."""
    norm = np.linalg.norm(v, axis=-1, keepdims=True)
    return np.divide(v, norm, out=np.zeros_like(v), where=norm > 0)
