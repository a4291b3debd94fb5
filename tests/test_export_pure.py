"""Pure parts of the exports: intrinsics conventions, mesh.ply, reprojection, formats."""

from __future__ import annotations

import numpy as np
import pytest

from blendtruth.errors import BlendtruthError
from blendtruth.exports import parse_formats
from blendtruth.exports.colmap import _quaternion
from blendtruth.exports.png16 import auto_depth_scale
from blendtruth.geometry.camera import Intrinsics
from blendtruth.geometry.reproject import interpolate_depth, project, visibility
from blendtruth.view import Camera
from blendtruth.writers.meshfile import read_mesh_ply, write_mesh_ply

INTR = Intrinsics(60.0, 55.0, 30.5, 25.25, 64, 48)


def test_K_opencv_is_K_with_the_principal_point_half_a_pixel_lower():  # noqa: N802
    np.testing.assert_array_equal(INTR.K_opencv, [[60, 0, 30.0], [0, 55, 24.75], [0, 0, 1]])
    for name in ("opencv", "open3d"):
        np.testing.assert_array_equal(INTR.K_for(name), INTR.K_opencv)
    for name in ("colmap", "nerfstudio", "blendtruth"):
        np.testing.assert_array_equal(INTR.K_for(name), INTR.K)
    cam = Camera(INTR, np.eye(4))
    np.testing.assert_array_equal(cam.K_for("opencv"), INTR.K_opencv)


def test_opengl_projection_maps_image_edges_and_depth_range():
    near, far = 0.5, 20.0
    P = INTR.K_for("opengl", near=near, far=far)  # noqa: N806
    rng = np.random.default_rng(0)
    u, v = rng.uniform(0, 64, 50), rng.uniform(0, 48, 50)
    z = rng.uniform(near, far, 50)
    # The camera-frame (OpenCV) point seen at continuous pixel (u, v) and depth z.
    x_cv = np.stack([(u - INTR.cx) / INTR.fx * z, (v - INTR.cy) / INTR.fy * z, z], axis=1)
    x_gl = x_cv * [1, -1, -1]
    clip = np.c_[x_gl, np.ones(50)] @ P.T
    ndc = clip[:, :3] / clip[:, 3:]
    np.testing.assert_allclose(ndc[:, 0], 2 * u / 64 - 1, atol=1e-12)
    np.testing.assert_allclose(ndc[:, 1], 1 - 2 * v / 48, atol=1e-12)
    for depth, expect in ((near, -1.0), (far, 1.0)):
        c = P @ [0, 0, -depth, 1]
        assert c[2] / c[3] == pytest.approx(expect, abs=1e-12)
    with pytest.raises(BlendtruthError, match="near < far"):
        INTR.K_for("opengl", near=2.0, far=1.0)
    with pytest.raises(BlendtruthError, match="unknown intrinsics convention"):
        INTR.K_for("directx")


def test_mesh_ply_contract_read_by_trimesh(tmp_path):
    trimesh = pytest.importorskip("trimesh")
    vertices = np.random.default_rng(1).normal(size=(30, 3))
    faces = np.random.default_rng(2).integers(0, 30, size=(40, 3))
    path = tmp_path / "mesh.ply"
    write_mesh_ply(path, vertices, faces)
    header = path.read_bytes().split(b"end_header\n")[0].decode()
    assert "format binary_little_endian 1.0" in header
    assert "property float x" in header and "property list uchar int vertex_indices" in header
    mesh = trimesh.load(path, process=False)
    np.testing.assert_array_equal(mesh.vertices, vertices.astype(np.float32))
    np.testing.assert_array_equal(mesh.faces, faces)
    v, f = read_mesh_ply(path)
    np.testing.assert_array_equal(v, vertices.astype(np.float32))
    np.testing.assert_array_equal(f, faces)
    (tmp_path / "bad.ply").write_bytes(b"ply\nformat ascii 1.0\nend_header\n")
    with pytest.raises(BlendtruthError, match="binary little-endian"):
        read_mesh_ply(tmp_path / "bad.ply")


def test_interpolated_depth_is_exact_on_a_plane_and_visibility_signs():
    # The plane z = 3 + 0.4 x - 0.2 y (camera frame), seen by an identity camera.
    cam = Camera(INTR, np.eye(4))
    vv, uu = np.mgrid[0:48, 0:64] + 0.5
    a, b = (uu - INTR.cx) / INTR.fx, (vv - INTR.cy) / INTR.fy
    depth = 3 / (1 - 0.4 * a + 0.2 * b)  # ray (a, b, 1) * z meets the plane
    mask = np.ones_like(depth, bool)
    rng = np.random.default_rng(3)
    x, y = rng.uniform(-0.5, 0.5, 200), rng.uniform(-0.4, 0.4, 200)
    pts = np.stack([x, y, 3 + 0.4 * x - 0.2 * y], axis=1)
    uv, z = project(pts, cam)
    d, valid = interpolate_depth(depth, mask, uv)
    assert valid.all()
    np.testing.assert_allclose(d, z, rtol=1e-12)
    _, seen, _ = visibility(pts, cam, depth, mask, 1e-9)
    assert seen.all()
    _, seen, r = visibility(pts * [1, 1, 0.99], cam, depth, mask, 1e-3)  # in front
    assert not seen.any() and (r < -1e-3).all()
    # Half a pixel off: the interpolation is no longer the point's depth.
    d2, _ = interpolate_depth(depth, mask, uv + 0.5)
    assert np.abs(d2 - z).max() > 1e-4


def test_colmap_quaternion_matches_scipy():
    rotation = pytest.importorskip("scipy.spatial.transform").Rotation
    for r in rotation.random(50, random_state=4):
        q = _quaternion(r.as_matrix())
        x, y, z, w = r.as_quat()
        expect = np.array([w, x, y, z]) * (1 if w >= 0 else -1)
        np.testing.assert_allclose(q, expect, atol=1e-12)


def test_parse_formats_and_auto_scale():
    assert parse_formats("colmap, exr,colmap") == ["colmap", "exr"]
    with pytest.raises(BlendtruthError, match="unknown format tiff"):
        parse_formats("exr,tiff")
    assert auto_depth_scale(3.0) == 1e-4
    assert auto_depth_scale(6.6) == pytest.approx(1e-3)
    assert auto_depth_scale(70.0) == pytest.approx(1e-2)


def test_import_blendtruth_and_load_stay_light():
    import subprocess
    import sys

    code = (
        "import sys, blendtruth; blendtruth.load; "
        "print(sorted(m for m in ('bpy', 'cv2', 'OpenEXR', 'trimesh', 'pycolmap', "
        "'webdataset', 'rich') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]", out.stdout


def test_bench_baseline_open3d_imports():
    # bench/truth_speed.py's baseline: the test extra installs it, .ci/run its libusb.
    import open3d as o3d  # no skip: a missing system library must fail CI

    assert hasattr(o3d.t.geometry, "RaycastingScene")
