"""Poses and axis conventions (pure)."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from blendtruth.errors import BlendtruthError
from blendtruth.frames import (
    invert_pose,
    look_at,
    opencv_to_opengl,
    opengl_to_opencv,
    validate_pose,
)

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
    # The target is straight ahead on the optical axis; image "up" (-y) has +Z component.
    in_cam = invert_pose(pose) @ np.append(target, 1.0)
    np.testing.assert_allclose(in_cam[:2], 0, atol=1e-9)
    assert in_cam[2] > 0
    assert (-pose[:3, 1])[2] >= -1e-12
    # Round trips.
    np.testing.assert_allclose(opengl_to_opencv(opencv_to_opengl(pose)), pose, atol=1e-15)
    np.testing.assert_allclose(invert_pose(invert_pose(pose)), pose, atol=1e-9)
    np.testing.assert_allclose(invert_pose(pose) @ pose, np.eye(4), atol=1e-9)


def test_bad_poses():
    with pytest.raises(BlendtruthError, match="cam_to_world.*4x4"):
        validate_pose(np.eye(3))
    scaled = np.diag([2.0, 1.0, 1.0, 1.0])
    with pytest.raises(BlendtruthError, match="orthonormal"):
        validate_pose(scaled)
    mirrored = np.diag([-1.0, 1.0, 1.0, 1.0])
    with pytest.raises(BlendtruthError, match="determinant"):
        validate_pose(mirrored, "pose")
    with pytest.raises(BlendtruthError, match="same point"):
        look_at((1, 2, 3), (1, 2, 3))
