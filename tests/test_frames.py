"""Poses and axis conventions (pure)."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from blendtruth.errors import BlendtruthError
from blendtruth.geometry.camera import Intrinsics
from blendtruth.geometry.frames import (
    OPENCV_TO_OPENGL,
    invert_pose,
    look_at,
    opencv_to_opengl,
    opengl_to_opencv,
    validate_pose,
)
from blendtruth.geometry.rays import project

coords = st.floats(-50, 50)
points = st.tuples(coords, coords, coords)


def test_look_at_axes():
    # From +Y looking at the origin, Z up: forward = -Y, right = -X, down = -Z (OpenCV).
    pose = look_at((0, 5, 0), (0, 0, 0))
    np.testing.assert_allclose(pose[:3, :3], np.column_stack([[-1, 0, 0], [0, 0, -1], [0, -1, 0]]))
    np.testing.assert_allclose(pose[:3, 3], [0, 5, 0])
    # The same pose in OpenGL axes: y up (= world +Z), z back (= world +Y).
    gl = opencv_to_opengl(pose)
    np.testing.assert_allclose(gl[:3, 1], [0, 0, 1])
    np.testing.assert_allclose(gl[:3, 2], [0, 1, 0])
    np.testing.assert_array_equal(gl[:3, 3], pose[:3, 3])  # same camera centre


def test_blender_camera_at_rest_looks_down_minus_z():
    # A Blender camera object with identity matrix_world looks along world -Z with its
    # image up along world +Y. In OpenCV axes that pose puts (0, 0, -5) on the optical
    # axis and (0, 1, -5) above it, i.e. at a smaller row v.
    pose = opengl_to_opencv(np.eye(4))
    np.testing.assert_array_equal(pose, OPENCV_TO_OPENGL)
    intr = Intrinsics(100.0, 100.0, 32.0, 24.0, 64, 48)
    uv, z = project(np.array([[0.0, 0.0, -5.0], [0.0, 1.0, -5.0], [1.0, 0.0, -5.0]]), intr, pose)
    np.testing.assert_allclose(z, 5.0)
    np.testing.assert_allclose(uv, [[32.0, 24.0], [32.0, 4.0], [52.0, 24.0]])


@given(eye=points, target=points)
def test_look_at_property(eye, target):
    eye, target = np.array(eye), np.array(target)
    if np.linalg.norm(target - eye) < 1e-3:
        return
    direction = (target - eye) / np.linalg.norm(target - eye)
    if np.hypot(direction[0], direction[1]) < 1e-9:  # looking straight along +-Z
        with pytest.raises(BlendtruthError, match="parallel"):
            look_at(eye, target)
        return
    pose = look_at(eye, target)
    validate_pose(pose)
    # The target is straight ahead on the optical axis; image "up" (-y) has +Z component
    # and image "right" (x) is horizontal.
    in_cam = invert_pose(pose) @ np.append(target, 1.0)
    np.testing.assert_allclose(in_cam[:2], 0, atol=1e-9)
    assert in_cam[2] == pytest.approx(np.linalg.norm(target - eye))
    assert (-pose[:3, 1])[2] >= -1e-12
    assert abs(pose[2, 0]) <= 1e-12
    # Round trips.
    gl = opencv_to_opengl(pose)
    validate_pose(gl)
    np.testing.assert_array_equal(opengl_to_opencv(gl), pose)
    np.testing.assert_allclose(invert_pose(invert_pose(pose)), pose, atol=1e-9)
    np.testing.assert_allclose(invert_pose(pose) @ pose, np.eye(4), atol=1e-9)


def test_axis_change_works_on_stacks_of_poses():
    poses = np.stack([look_at((3, 1, 2), (0, 0, 0)), look_at((-2, 4, 1), (0, 0, 1))])
    gl = opencv_to_opengl(poses)
    assert gl.shape == (2, 4, 4)
    np.testing.assert_array_equal(gl[1], opencv_to_opengl(poses[1]))
    np.testing.assert_array_equal(opengl_to_opencv(gl), poses)


def test_look_at_other_up():
    # Looking straight down needs another up; with +Y the image's top is toward +Y.
    pose = look_at((0, 0, 5), (0, 0, 0), up=(0, 1, 0))
    np.testing.assert_allclose(-pose[:3, 1], [0, 1, 0], atol=1e-15)
    np.testing.assert_allclose(pose[:3, 2], [0, 0, -1], atol=1e-15)


@pytest.mark.parametrize(
    ("call", "needle"),
    [
        (lambda: validate_pose(np.eye(3)), r"cam_to_world must be a 4x4"),
        (lambda: validate_pose(np.diag([2.0, 1.0, 1.0, 1.0])), "cam_to_world.*orthonormal"),
        (lambda: validate_pose(np.diag([-1.0, 1.0, 1.0, 1.0]), "pose"), "pose.*determinant"),
        (lambda: validate_pose(np.full((4, 4), np.nan), "transform_matrix"), "transform_matrix"),
        (lambda: validate_pose(np.vstack([np.eye(4)[:3], [0, 0, 1, 1]])), "last row"),
        (lambda: invert_pose(np.diag([1.0, 1.0, 3.0, 1.0])), "pose.*orthonormal"),
        (lambda: opencv_to_opengl(np.eye(3)), "4x4"),
        (lambda: look_at((1, 2, 3), (1, 2, 3)), "same point"),
        (lambda: look_at((0, 0, 5), (0, 0, 0)), "parallel"),
        (lambda: look_at((0, 0, 5), (1, 0, 0), up=(0, 0, 0)), "zero vector"),
        (lambda: look_at((0, 0), (1, 0, 0)), "eye"),
        (lambda: look_at((0, 0, 0), (1, np.nan, 0)), "target"),
    ],
)
def test_bad_poses_name_the_culprit(call, needle):
    with pytest.raises(BlendtruthError, match=needle):
        call()


def test_validate_pose_tolerates_float32_rounding():
    pose = look_at((1.3, -2.1, 0.7), (0, 0, 0)).astype(np.float32)
    validate_pose(pose)  # orthonormal to ~1e-7: Blender's matrices are float32
    skewed = look_at((1.3, -2.1, 0.7), (0, 0, 0))
    skewed[0, 1] += 1e-5
    with pytest.raises(BlendtruthError, match="orthonormal"):
        validate_pose(skewed)
