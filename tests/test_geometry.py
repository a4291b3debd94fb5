"""Depth, distance, back-projection and projection against analytic surfaces (pure)."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from blendtruth.camera import Intrinsics
from blendtruth.errors import BlendtruthError
from blendtruth.frames import look_at
from blendtruth.geometry import (
    backproject,
    depth_to_distance,
    distance_to_depth,
    normals_to_camera,
    normals_to_world,
    project,
)

from analytic import ray_plane, ray_sphere

# Non-square image, fx != fy, principal point well off-centre.
CAM = Intrinsics(fx=210.0, fy=190.0, cx=91.3, cy=52.7, width=160, height=120)
SPHERE_C, SPHERE_R = np.array([0.15, -0.1, 3.0]), 0.8
TILT = np.radians(30.0)
PLANE_P, PLANE_N = np.array([0.0, 0.0, 2.5]), np.array([0.0, np.sin(TILT), -np.cos(TILT)])


def test_backprojected_depth_lies_on_the_sphere():
    depth, _, mask = ray_sphere(CAM, SPHERE_C, SPHERE_R)
    pts = backproject(depth, CAM)[mask]
    err = np.abs(np.linalg.norm(pts - SPHERE_C, axis=1) - SPHERE_R) / SPHERE_R
    assert mask.sum() > 2000 and err.max() <= 1e-9
    assert np.isnan(backproject(depth, CAM)[~mask]).all()


def test_backprojected_depth_lies_on_the_tilted_plane():
    depth, _, mask = ray_plane(CAM, PLANE_P, PLANE_N)
    pts = backproject(depth, CAM)[mask]
    err = np.abs((pts - PLANE_P) @ PLANE_N) / np.linalg.norm(pts, axis=1)
    assert mask.all() and err.max() <= 1e-9


def test_depth_distance_round_trip_and_values():
    depth, _, mask = ray_sphere(CAM, SPHERE_C, SPHERE_R)
    dist = depth_to_distance(depth, CAM)
    pts = backproject(depth, CAM)
    np.testing.assert_allclose(dist[mask], np.linalg.norm(pts[mask], axis=1), rtol=1e-12)
    np.testing.assert_allclose(distance_to_depth(dist, CAM), depth, rtol=1e-12)
    assert np.all(dist[~mask] == 0)
    # On a tilted plane ray distance and planar depth differ by far more than noise.
    pd, _, _ = ray_plane(CAM, PLANE_P, PLANE_N)
    assert np.max(depth_to_distance(pd, CAM) - pd) > 0.1


@settings(max_examples=50, deadline=None)
@given(
    fx=st.floats(50, 2000), fy=st.floats(50, 2000), w=st.integers(2, 300),
    h=st.integers(2, 300), ex=st.floats(-5, 5), ey=st.floats(-5, 5), ez=st.floats(1, 5),
)  # fmt: skip
def test_project_backproject_round_trip(fx, fy, w, h, ex, ey, ez):
    intr = Intrinsics(fx, fy, w * 0.4, h * 0.6, w, h)
    pose = look_at((ex, ey, ez), (0.1, 0.2, -0.3))
    depth = np.random.default_rng(0).uniform(0.5, 20.0, size=(h, w))
    world = backproject(depth, intr, pose)
    uv, z = project(world.reshape(-1, 3), intr, pose)
    u, v = np.meshgrid(np.arange(w) + 0.5, np.arange(h) + 0.5)
    np.testing.assert_allclose(uv, np.column_stack([u.ravel(), v.ravel()]), atol=1e-7)
    np.testing.assert_allclose(z, depth.ravel(), rtol=1e-9)


def test_normals_frames_round_trip():
    pose = look_at((3, -2, 1), (0, 0, 0))
    n_world = np.random.default_rng(1).normal(size=(10, 3))
    n_world[0] = 0
    n_cam = normals_to_camera(n_world, pose)
    np.testing.assert_allclose(normals_to_world(n_cam, pose), n_world, atol=1e-12)
    assert np.all(n_cam[0] == 0)
    # The direction toward the camera, in the camera frame, is -z.
    toward = (pose[:3, 3] - 0) / np.linalg.norm(pose[:3, 3])
    np.testing.assert_allclose(normals_to_camera(toward, pose), [0, 0, -1], atol=1e-12)


def test_shapes_are_checked():
    with pytest.raises(BlendtruthError, match="depth has shape"):
        backproject(np.ones((3, 3)), CAM)
    with pytest.raises(BlendtruthError, match=r"\(N, 3\)"):
        project(np.ones((4, 2)), CAM)
