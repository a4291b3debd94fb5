"""Camera poses and axis conventions.

World: Blender's, right-handed, Z up, metres (scene units). The canonical pose is
``cam_to_world``: a 4×4 float64 rigid transform mapping camera-frame points, in OpenCV
camera axes (x right, y down, z forward into the scene), to world points.

OpenGL/Blender camera axes are x right, y up, z back (the camera looks along -z). A
Blender camera object's ``matrix_world`` is cam_to_world in these axes. The two differ by
flipping the camera's y and z axes: ``cam_to_world_gl = cam_to_world_cv @ OPENCV_TO_OPENGL``.
"""

from __future__ import annotations

import numpy as np

from blendtruth.errors import BlendtruthError

#: Right-multiply an OpenCV-axes cam_to_world by this to get OpenGL axes (and back: it is
#: its own inverse).
OPENCV_TO_OPENGL = np.diag([1.0, -1.0, -1.0, 1.0])
OPENCV_TO_OPENGL.setflags(write=False)

_TOL = 1e-6


def _as_poses(T: np.ndarray, name: str) -> np.ndarray:  # noqa: N803
    arr = np.asarray(T, dtype=np.float64)
    if arr.ndim < 2 or arr.shape[-2:] != (4, 4):
        raise BlendtruthError(f"{name} must be a 4x4 matrix (or ...x4x4), got shape {arr.shape}")
    return arr


def opencv_to_opengl(cam_to_world: np.ndarray) -> np.ndarray:
    """cam_to_world (4×4 or ...×4×4) with OpenCV camera axes -> the same pose with
    OpenGL/Blender camera axes. The camera centre and the world frame are unchanged."""
    return _as_poses(cam_to_world, "cam_to_world") @ OPENCV_TO_OPENGL


def opengl_to_opencv(cam_to_world: np.ndarray) -> np.ndarray:
    """cam_to_world (4×4 or ...×4×4) with OpenGL/Blender camera axes (e.g. a Blender
    camera's ``matrix_world``) -> OpenCV camera axes."""
    return _as_poses(cam_to_world, "cam_to_world") @ OPENCV_TO_OPENGL


def validate_pose(T: np.ndarray, name: str = "cam_to_world") -> None:  # noqa: N803
    """Raise BlendtruthError, naming ``name``, unless ``T`` is a finite rigid 4×4
    transform: rotation block orthonormal with determinant +1 and last row [0, 0, 0, 1],
    both to within 1e-6 (float32 matrices from Blender pass)."""
    arr = np.asarray(T)
    if arr.shape != (4, 4):
        raise BlendtruthError(f"{name} must be a 4x4 matrix, got shape {arr.shape}")
    try:
        arr = arr.astype(np.float64)
    except (TypeError, ValueError) as exc:
        raise BlendtruthError(f"{name} must be a numeric 4x4 matrix ({exc})") from None
    if not np.isfinite(arr).all():
        raise BlendtruthError(f"{name} has non-finite entries (NaN or inf)")
    if np.abs(arr[3] - [0.0, 0.0, 0.0, 1.0]).max() > _TOL:
        raise BlendtruthError(f"{name}: last row must be [0, 0, 0, 1], got {arr[3].tolist()}")
    rot = arr[:3, :3]
    off = np.abs(rot.T @ rot - np.eye(3)).max()
    if off > _TOL:
        raise BlendtruthError(
            f"{name}: rotation is not orthonormal (|R^T R - I| = {off:.3g}); "
            "remove any scale or shear from the pose"
        )
    if np.linalg.det(rot) < 0:
        raise BlendtruthError(
            f"{name}: rotation has determinant -1 (a mirror); poses must be right-handed"
        )


def invert_pose(T: np.ndarray) -> np.ndarray:  # noqa: N803
    """Rigid inverse of a 4×4 pose (world_to_cam from cam_to_world and back), float64:
    [R t; 0 1]^-1 = [R^T  -R^T t; 0 1]. ``T`` is validated first, since the rigid formula
    is wrong for a transform with scale."""
    validate_pose(T, "pose")
    T = np.asarray(T, dtype=np.float64)  # noqa: N806
    inv = np.eye(4)
    inv[:3, :3] = T[:3, :3].T
    inv[:3, 3] = -T[:3, :3].T @ T[:3, 3]
    return inv


def _point(value, name: str) -> np.ndarray:
    arr = np.asarray(value, dtype=np.float64)
    if arr.shape != (3,) or not np.isfinite(arr).all():
        raise BlendtruthError(f"look_at: {name} must be 3 finite numbers, got {value!r}")
    return arr


def look_at(eye, target, up=(0.0, 0.0, 1.0)) -> np.ndarray:
    """cam_to_world (4×4 float64, OpenCV axes) of a camera at ``eye`` looking at
    ``target`` (world points), rolled so that the image's up direction (-y) is as close to
    ``up`` (a world direction, default +Z) as possible.

    Raises BlendtruthError when eye == target or ``up`` is parallel to the view direction
    (sine of the angle below 1e-9): the roll is then undefined.
    """
    eye, target, up = _point(eye, "eye"), _point(target, "target"), _point(up, "up")
    forward = target - eye
    if not np.linalg.norm(forward) > 0:
        raise BlendtruthError(f"look_at: eye and target are the same point {eye.tolist()}")
    if not np.linalg.norm(up) > 0:
        raise BlendtruthError("look_at: up must not be the zero vector")
    forward /= np.linalg.norm(forward)
    right = np.cross(forward, up / np.linalg.norm(up))
    if np.linalg.norm(right) < 1e-9:
        raise BlendtruthError(
            f"look_at: up {up.tolist()} is parallel to the viewing direction "
            f"{forward.tolist()}; pass another up vector"
        )
    right /= np.linalg.norm(right)
    down = np.cross(forward, right)
    pose = np.eye(4)
    pose[:3, :3] = np.column_stack([right, down, forward])
    pose[:3, 3] = eye
    return pose
