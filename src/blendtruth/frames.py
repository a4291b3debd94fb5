"""Camera poses and axis conventions. World: Blender's, Z up, right-handed.

Canonical pose: ``cam_to_world`` 4×4 with OpenCV camera axes (x right, y down, z forward).
A Blender camera object's ``matrix_world`` is cam_to_world in OpenGL axes (x right, y up,
z back); the two differ by flipping the camera's y and z axes.
"""

from __future__ import annotations

import numpy as np

from blendtruth.errors import BlendtruthError

OPENCV_TO_OPENGL = np.diag([1.0, -1.0, -1.0, 1.0])


def opencv_to_opengl(cam_to_world: np.ndarray) -> np.ndarray:
    """cam_to_world with OpenCV camera axes -> the same pose with OpenGL/Blender axes."""
    return np.asarray(cam_to_world, dtype=np.float64) @ OPENCV_TO_OPENGL


def opengl_to_opencv(cam_to_world: np.ndarray) -> np.ndarray:
    """cam_to_world with OpenGL/Blender camera axes -> OpenCV camera axes."""
    return np.asarray(cam_to_world, dtype=np.float64) @ OPENCV_TO_OPENGL


def invert_pose(pose: np.ndarray) -> np.ndarray:
    """Inverse of a rigid 4×4 transform (world_to_cam from cam_to_world and back)."""
    pose = np.asarray(pose, dtype=np.float64)
    inv = np.eye(4)
    inv[:3, :3] = pose[:3, :3].T
    inv[:3, 3] = -pose[:3, :3].T @ pose[:3, 3]
    return inv


def look_at(eye, target, up=(0.0, 0.0, 1.0)) -> np.ndarray:
    """cam_to_world (OpenCV axes) of a camera at ``eye`` looking at ``target``, with the
    image's up direction as close to ``up`` as possible."""
    eye, target, up = (np.asarray(a, dtype=np.float64) for a in (eye, target, up))
    forward = target - eye
    if np.linalg.norm(forward) == 0:
        raise BlendtruthError("look_at: eye and target are the same point")
    forward /= np.linalg.norm(forward)
    right = np.cross(forward, up)
    if np.linalg.norm(right) < 1e-9:
        raise BlendtruthError("look_at: up is parallel to the viewing direction")
    right /= np.linalg.norm(right)
    down = np.cross(forward, right)
    pose = np.eye(4)
    pose[:3, :3] = np.column_stack([right, down, forward])
    pose[:3, 3] = eye
    return pose


def validate_pose(pose: np.ndarray, name: str = "cam_to_world") -> None:
    """Raise BlendtruthError unless ``pose`` is a finite rigid 4×4 transform."""
    pose = np.asarray(pose)
    if pose.shape != (4, 4) or not np.isfinite(pose).all():
        raise BlendtruthError(f"{name} must be a finite 4x4 matrix, got shape {pose.shape}")
    if not np.allclose(pose[3], [0, 0, 0, 1]):
        raise BlendtruthError(f"{name}: last row must be [0, 0, 0, 1]")
    rot = pose[:3, :3]
    if not np.allclose(rot.T @ rot, np.eye(3), atol=1e-6) or np.linalg.det(rot) < 0:
        raise BlendtruthError(f"{name}: rotation is not orthonormal with determinant +1")
