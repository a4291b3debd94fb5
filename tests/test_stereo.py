"""Stereo pairs: exact disparity (closed form: the right camera sees the left pixel's point at
u − d), strict occlusion against an independent trimesh + embreex cast, and the PFM and KITTI
files read back by OpenCV."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from blendtruth.errors import BlendtruthError
from blendtruth.geometry.camera import Intrinsics
from blendtruth.geometry.stereo import disparity_from_depth, stereo_pair
from blendtruth.raycast.cast import RayCaster
from blendtruth.raycast.scene import concatenate, from_arrays
from blendtruth.raycast.visibility import hidden_from
from blendtruth.view import Camera
from blendtruth.writers.disparity import write_kitti_disparity, write_pfm

trimesh = pytest.importorskip("trimesh")

W, H, FX, B = 96, 64, 80.0, 0.12


@pytest.fixture(scope="module")
def scene():
    wall = trimesh.Trimesh([[-4, -4, 2.0], [4, -4, 2.0], [4, 4, 2.0], [-4, 4, 2.0]],
                           [[0, 1, 2], [0, 2, 3]])  # fmt: skip
    box = trimesh.creation.box(extents=(0.5, 0.5, 0.5))
    box.apply_translation((0.05, 0.0, 1.0))
    tris = concatenate([from_arrays(m.vertices, m.faces, instance=i + 1)
                        for i, m in enumerate((wall, box))])  # fmt: skip
    mesh = trimesh.util.concatenate([wall, box])
    return tris, mesh


def _left() -> Camera:
    return Camera(Intrinsics(FX, FX, W / 2 + 0.3, H / 2 - 0.2, W, H), np.eye(4))


def test_pair_geometry_and_disparity_are_exact(scene):
    tris, _ = scene
    left, right = stereo_pair(_left(), B)
    np.testing.assert_allclose(right.cam_to_world[:3, 3], [B, 0, 0])
    np.testing.assert_array_equal(right.cam_to_world[:3, :3], left.cam_to_world[:3, :3])
    caster = RayCaster(tris)
    depth = caster.cast(left, ("depth", "mask"))["depth"].astype(np.float64)
    d = disparity_from_depth(depth, FX, B)
    surface = depth > 0
    np.testing.assert_allclose(d[surface] * depth[surface], FX * B, rtol=1e-6)
    assert (d[~surface] == 0).all()
    # The right camera sees each left pixel's point at (u − d, v): exact, sign included.
    rows, cols = np.nonzero(surface)
    k = left.intrinsics
    x = (cols + 0.5 - k.cx) / k.fx * depth[rows, cols]
    y = (rows + 0.5 - k.cy) / k.fy * depth[rows, cols]
    points = np.column_stack([x, y, depth[rows, cols]])
    uv, _, _ = right.projection.project(points - right.cam_to_world[:3, 3])
    np.testing.assert_allclose(uv[:, 0], cols + 0.5 - d[rows, cols], atol=1e-4)
    np.testing.assert_allclose(uv[:, 1], rows + 0.5, atol=1e-9)


def test_occlusion_equals_an_independent_ray_cast(scene):
    tris, mesh = scene
    left, right = stereo_pair(_left(), B)
    caster = RayCaster(tris)
    for view, other in ((left, right), (right, left)):
        cast = caster.cast(view, ("depth", "position", "mask"))
        mask = cast["mask"]
        points = cast["position"][mask].astype(np.float64)
        ours = hidden_from(caster, points, other)
        # Independent: trimesh's Embree from the other centre to each point.
        centre = other.cam_to_world[:3, 3]
        ray = points - centre
        dist = np.linalg.norm(ray, axis=1)
        unit = ray / dist[:, None]
        loc, idx, _ = mesh.ray.intersects_location(
            np.broadcast_to(centre, ray.shape), unit, multiple_hits=False
        )
        first = np.full(len(points), np.inf)
        first[idx] = np.linalg.norm(loc - centre, axis=1)
        uv, _, ok = other.projection.project(points - centre)
        inside = ok & (uv[:, 0] >= 0) & (uv[:, 0] < W) & (uv[:, 1] >= 0) & (uv[:, 1] < H)
        theirs = ~inside | (first < dist * (1 - 1e-4))
        # Equal except where the two float32 casts disagree on a grazing box edge.
        assert (ours != theirs).sum() <= 2, (ours != theirs).sum()
        assert 0.02 < ours.mean() < 0.5  # a real occlusion band and out-of-view strip


def test_left_view_shadow_band_is_left_of_the_box(scene):
    tris, _ = scene
    left, right = stereo_pair(_left(), B)
    caster = RayCaster(tris)
    cast = caster.cast(left, ("depth", "instance", "position", "mask"))
    hidden = np.zeros((H, W), bool)
    hidden[cast["mask"]] = hidden_from(caster, cast["position"][cast["mask"]], right)
    row = H // 2
    box = np.flatnonzero(cast["instance"][row] == 2)
    band = np.flatnonzero(hidden[row] & (cast["instance"][row] == 1))
    band = band[(band > 8) & (band < W - 8)]  # not the out-of-view strip at the border
    # The wall just left of the box: width fx·B·(1/z_box − 1/z_wall) = 9.6·(1/0.75 − 1/2).
    assert band.max() == box.min() - 1
    assert abs(len(band) - FX * B * (1 / 0.75 - 1 / 2.0)) <= 1.0


def test_disparity_files_read_back_by_opencv(tmp_path):
    rng = np.random.default_rng(0)
    d = rng.uniform(0.5, 120.0, (H, W)).astype(np.float32)
    valid = rng.random((H, W)) > 0.2
    write_pfm(tmp_path / "d.pfm", d)
    back = cv2.imread(str(tmp_path / "d.pfm"), cv2.IMREAD_UNCHANGED)
    np.testing.assert_array_equal(back, d)  # rows in order: a flipped file would differ
    write_kitti_disparity(tmp_path / "d.png", d, valid)
    k = cv2.imread(str(tmp_path / "d.png"), cv2.IMREAD_UNCHANGED)
    assert k.dtype == np.uint16
    assert (k[~valid] == 0).all()
    assert np.abs(k[valid] / 256.0 - d[valid]).max() <= 1 / 512 + 1e-6


def test_bad_stereo_options_are_one_line():
    with pytest.raises(BlendtruthError, match="baseline must be a number > 0"):
        stereo_pair(_left(), 0.0)
    with pytest.raises(BlendtruthError, match="baseline"):
        stereo_pair(_left(), float("nan"))
    fish = Camera(Intrinsics(W / np.pi, H / np.pi, W / 2, H / 2, W, H), np.eye(4), "fisheye",
                  180.0)  # fmt: skip
    with pytest.raises(BlendtruthError, match="cannot be rectified"):
        stereo_pair(fish, 0.1)
