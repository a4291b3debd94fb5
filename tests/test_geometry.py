"""Depth, distance, back-projection and projection against analytic surfaces (pure)."""

from __future__ import annotations

import json

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from blendtruth.conventions import CONVENTIONS_VERSION, conventions
from blendtruth.errors import BlendtruthError
from blendtruth.geometry.camera import Intrinsics
from blendtruth.geometry.frames import look_at
from blendtruth.geometry.rays import (
    backproject,
    depth_to_distance,
    distance_to_depth,
    normals_to_camera,
    normals_to_world,
    pixel_centers,
    project,
    ray_directions,
)

from analytic import ray_box, ray_plane, ray_sphere

# Non-square image, fx != fy, principal point well off-centre.
CAM = Intrinsics(fx=210.0, fy=190.0, cx=91.3, cy=52.7, width=160, height=120)
SPHERE_C, SPHERE_R = np.array([0.15, -0.1, 3.0]), 0.8
TILT = np.radians(30.0)
PLANE_P, PLANE_N = np.array([0.0, 0.0, 2.5]), np.array([0.0, np.sin(TILT), -np.cos(TILT)])

# Random valid cameras: portrait and landscape, fx != fy, principal point anywhere inside.
cameras = st.builds(
    lambda fx, ratio, w, h, ox, oy: Intrinsics(fx, fx * ratio, w * ox, h * oy, w, h),
    st.floats(30, 3000), st.floats(0.5, 2.0), st.integers(2, 200), st.integers(2, 200),
    st.floats(0.0, 1.0), st.floats(0.0, 1.0),
)  # fmt: skip
eyes = st.tuples(st.floats(-5, 5), st.floats(-5, 5), st.floats(1, 5))


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


def test_backprojected_world_points_lie_on_the_box():
    lo, hi = np.array([-0.4, -0.3, 0.0]), np.array([0.5, 0.2, 0.6])
    pose = look_at((2.0, -1.5, 1.8), (0.05, -0.05, 0.3))
    depth, distance, normal_world, mask = ray_box(CAM, pose, lo, hi)
    assert mask.sum() > 1000 and (~mask).sum() > 1000
    pts = backproject(depth, CAM, pose)[mask]
    # Each point is on the box surface: inside the box and on the face its normal names.
    assert np.all(pts >= lo - 1e-9) and np.all(pts <= hi + 1e-9)
    n = normal_world[mask]
    face = np.where(n.sum(axis=1, keepdims=True) > 0, hi, lo)
    np.testing.assert_allclose(np.sum(pts * np.abs(n), 1), np.sum(face * np.abs(n), 1), atol=1e-9)
    np.testing.assert_allclose(depth_to_distance(depth, CAM), distance, rtol=1e-12)
    # Visible faces face the camera.
    assert np.all(np.sum(n * (pose[:3, 3] - pts), axis=1) > 0)


def test_depth_distance_round_trip_and_values():
    depth, _, mask = ray_sphere(CAM, SPHERE_C, SPHERE_R)
    dist = depth_to_distance(depth, CAM)
    pts = backproject(depth, CAM)
    np.testing.assert_allclose(dist[mask], np.linalg.norm(pts[mask], axis=1), rtol=1e-12)
    np.testing.assert_allclose(distance_to_depth(dist, CAM), depth, rtol=1e-12)
    assert np.all(dist[~mask] == 0) and np.all(distance_to_depth(dist, CAM)[~mask] == 0)
    # On a tilted plane ray distance and planar depth differ by far more than noise.
    pd, _, _ = ray_plane(CAM, PLANE_P, PLANE_N)
    assert np.max(depth_to_distance(pd, CAM) - pd) > 0.1


def test_float32_in_float64_out():
    depth, _, _ = ray_sphere(CAM, SPHERE_C, SPHERE_R)
    d32 = depth.astype(np.float32)
    for out in (depth_to_distance(d32, CAM), distance_to_depth(d32, CAM), backproject(d32, CAM)):
        assert out.dtype == np.float64
    uv, z = project(np.ones((3, 3), np.float32), CAM)
    assert uv.dtype == np.float64 and z.dtype == np.float64


@settings(max_examples=50, deadline=None)
@given(intr=cameras, eye=eyes)
def test_project_backproject_round_trip(intr, eye):
    pose = look_at(eye, (0.1, 0.2, -0.3))
    depth = np.random.default_rng(0).uniform(0.5, 20.0, size=(intr.height, intr.width))
    world = backproject(depth, intr, pose)
    uv, z = project(world.reshape(-1, 3), intr, pose)
    u, v = pixel_centers(intr.width, intr.height)
    np.testing.assert_allclose(uv, np.column_stack([u.ravel(), v.ravel()]), atol=1e-7)
    np.testing.assert_allclose(z, depth.ravel(), rtol=1e-9)


@settings(max_examples=50, deadline=None)
@given(intr=cameras)
def test_depth_distance_property(intr):
    depth = np.random.default_rng(1).uniform(0.0, 10.0, size=(intr.height, intr.width))
    depth[::3, ::2] = 0
    dist = depth_to_distance(depth, intr)
    assert np.all(dist >= depth) and np.all((dist == 0) == (depth == 0))
    np.testing.assert_allclose(distance_to_depth(dist, intr), depth, rtol=1e-12)
    pts = backproject(depth, intr)
    hit = depth > 0
    np.testing.assert_allclose(np.linalg.norm(pts[hit], axis=1), dist[hit], rtol=1e-12)
    # The z = 1 rays are exactly (u - cx)/fx, (v - cy)/fy at the pixel centres.
    rays = ray_directions(intr)
    assert np.all(rays[..., 2] == 1)
    assert rays[0, 0, 0] == (0.5 - intr.cx) / intr.fx and rays[0, 0, 1] == (0.5 - intr.cy) / intr.fy


@settings(max_examples=50, deadline=None)
@given(eye=eyes, target=eyes)
def test_normals_frames_property(eye, target):
    if np.linalg.norm(np.subtract(eye, target)) < 1e-3:
        return
    if np.hypot(*np.subtract(target, eye)[:2]) < 1e-3 * np.linalg.norm(np.subtract(target, eye)):
        return  # look_at refuses straight up/down with +Z up; tested in test_frames
    pose = look_at(eye, target)
    n_world = np.random.default_rng(2).normal(size=(7, 5, 3))
    n_world[0, 0] = 0
    n_cam = normals_to_camera(n_world, pose)
    np.testing.assert_allclose(normals_to_world(n_cam, pose), n_world, atol=1e-12)
    np.testing.assert_allclose(np.linalg.norm(n_cam, axis=-1), np.linalg.norm(n_world, axis=-1))
    assert np.all(n_cam[0, 0] == 0)
    # The direction from the target toward the camera is -z in the camera frame.
    toward = np.subtract(eye, target) / np.linalg.norm(np.subtract(eye, target))
    np.testing.assert_allclose(normals_to_camera(toward, pose), [0, 0, -1], atol=1e-12)


def test_normals_to_camera_by_hand():
    # Camera on +X looking at the origin, Z up: camera x (right) = world +Y, y (down) =
    # world -Z, z (forward) = world -X. So world +Z (up) is camera -y, world +X (toward
    # the camera) is camera -z and world +Y is camera +x.
    pose = look_at((4, 0, 0), (0, 0, 0))
    n = normals_to_camera(np.array([[0.0, 0, 1], [1.0, 0, 0], [0.0, 1, 0]]), pose)
    np.testing.assert_allclose(n, [[0, -1, 0], [0, 0, -1], [1, 0, 0]], atol=1e-15)


@pytest.mark.parametrize(
    ("call", "needle"),
    [
        (lambda: backproject(np.ones((3, 3)), CAM), r"depth has shape \(3, 3\)"),
        (lambda: backproject(np.ones((120, 160, 1)), CAM), "depth has shape"),
        (lambda: depth_to_distance(np.ones((160, 120)), CAM), r"expected \(120, 160\)"),
        (lambda: distance_to_depth(np.ones((120, 161)), CAM), "distance has shape"),
        (lambda: backproject(np.ones((120, 160), bool), CAM), "real-valued"),
        (lambda: backproject(np.ones((120, 160)), CAM, np.diag([1, 2, 1, 1.0])), "orthonormal"),
        (lambda: project(np.ones((4, 2)), CAM), r"\(N, 3\)"),
        (lambda: project(np.ones(3), CAM), r"\(N, 3\)"),
        (lambda: project(np.ones((4, 3)), CAM, np.eye(3)), "cam_to_world"),
        (lambda: normals_to_camera(np.ones((4, 4)), np.eye(4)), "normal_world"),
        (lambda: normals_to_world(np.ones((4, 3)), np.diag([1, 1, -1, 1.0])), "determinant"),
    ],
)
def test_bad_input_names_the_culprit(call, needle):
    with pytest.raises(BlendtruthError, match=needle):
        call()


def test_conventions_are_json_and_state_the_rules():
    data = conventions()
    assert json.loads(json.dumps(data)) == data and data["version"] == CONVENTIONS_VERSION
    for key, needles in {
        "world_frame": ["Z up", "right-handed", "metres"],
        "camera_axes": ["x right", "y down", "z forward"],
        "pixel_grid": ["(u + 0.5, v + 0.5)", "top-left", "top-down"],
        "depth": ["planar", "0.0 where mask is False"],
        "distance": ["Euclidean", "0.0 where mask is False"],
        "normal": ["unit", "camera frame", "shading normal", "without bump", "0.0 where mask"],
        "normal_geometric": ["face normal", "facing the", "camera frame"],
        "instance": ["int32", "stable", "instances.json"],
        "rgb": ["sRGB", "Standard"],
        "tutorial_d_npz": ["dmap", "(-zx, -zy, 1)", "(t + 1)/2", "reversed"],
    }.items():
        for needle in needles:
            assert needle in data[key], (key, needle)
