"""Dataset rigs reproduce their documented camera sets (positions, look-at, FOV) to 1e-9,
recomputed here from the published numbers without the module's helpers."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from blendtruth.errors import BlendtruthError
from blendtruth.scenes.rigs import (
    RIGS,
    make_rig,
    place_rig,
    radical_inverse,
    rig_intrinsics,
    rig_scale,
)

TOL = 1e-9
ZERO123_FOV = 2 * math.degrees(math.atan(16 / 35))  # lens 35 mm, sensor 32 mm


def _check_looks_at_origin(rig) -> None:
    for pose in rig.poses:
        R, eye = pose[:3, :3], pose[:3, 3]
        np.testing.assert_allclose(R.T @ R, np.eye(3), atol=TOL)
        assert np.linalg.det(R) == pytest.approx(1.0, abs=TOL)
        # The optical axis (camera +z) points from the eye at the origin.
        np.testing.assert_allclose(R[:, 2], -eye / np.linalg.norm(eye), atol=TOL)


def _check_z_up(rig) -> None:
    """Image up (-y) is world +Z projected into the image plane (no roll)."""
    for pose in rig.poses:
        fwd, down = pose[:3, 2], pose[:3, 1]
        up = np.array([0.0, 0.0, 1.0]) - fwd[2] * fwd
        np.testing.assert_allclose(-down, up / np.linalg.norm(up), atol=TOL)


def test_hunyuan3d_six_orthographic_views():
    rig = make_rig("hunyuan3d-6")
    assert rig.projection == "orthographic" and rig.ortho_scale == 1.2 and rig.fov_deg is None
    assert rig.normalization == ("bounding_radius", 0.6)
    # get_mv_matrix: azimuth + 90°, elevation negated, distance 1.45: front (azimuth 0)
    # looks from +Y, elevation +90 from below (-Z).
    d = 1.45
    eyes = [(0, d, 0), (-d, 0, 0), (0, -d, 0), (d, 0, 0), (0, 0, -d), (0, 0, d)]
    np.testing.assert_allclose(rig.poses[:, :3, 3], eyes, atol=TOL)
    _check_looks_at_origin(rig)
    _check_z_up(type(rig)(**{**rig.__dict__, "poses": rig.poses[:4]}))
    # The poles' roll: right = (-sin a', cos a', 0), a' = azimuth + 90°.
    np.testing.assert_allclose(rig.poses[4, :3, 0], [-1.0, 0.0, 0.0], atol=TOL)
    np.testing.assert_allclose(rig.poses[5, :3, 0], [1.0, 0.0, 0.0], atol=TOL)


def test_syncdreamer_fixed_orbit():
    rig = make_rig("syncdreamer-16")
    assert len(rig.poses) == 16 and rig.fov_deg == pytest.approx(ZERO123_FOV, abs=TOL)
    assert rig.fov_deg == pytest.approx(49.1343426, abs=1e-6)
    for k, pose in enumerate(rig.poses):
        az, el = 2 * math.pi * k / 16, math.pi / 6
        expected = 1.5 * np.array(
            [math.cos(az) * math.cos(el), math.sin(az) * math.cos(el), math.sin(el)]
        )
        np.testing.assert_allclose(pose[:3, 3], expected, atol=TOL)
    _check_looks_at_origin(rig)
    _check_z_up(rig)


def test_zero123_random_sphere():
    rig = make_rig("zero123", seed=5)
    assert len(rig.poses) == 12 and rig.fov_deg == pytest.approx(ZERO123_FOV, abs=TOL)
    rng = np.random.default_rng(5)
    expected = []
    while len(expected) < 12:
        v, r = rng.uniform(-1, 1, 3), rng.uniform(1.5, 2.2)
        if abs(v[2] / np.linalg.norm(v) * r) < 2.2:
            expected.append(v * r / math.sqrt(v @ v))
    np.testing.assert_allclose(rig.poses[:, :3, 3], expected, atol=TOL)
    radii = np.linalg.norm(rig.poses[:, :3, 3], axis=1)
    assert np.all((radii >= 1.5) & (radii <= 2.2))
    _check_looks_at_origin(rig)
    _check_z_up(rig)
    assert np.array_equal(make_rig("zero123", seed=5).poses, rig.poses)
    assert not np.allclose(make_rig("zero123", seed=6).poses, rig.poses)
    assert len(make_rig("zero123", seed=5, views=3).poses) == 3


def _bit_reversed(i: int) -> float:
    """Base-2 radical inverse by reversing the bits of a 32-bit integer."""
    return int(f"{i:032b}"[::-1], 2) / 2**32


def test_trellis_hammersley_sphere():
    rig = make_rig("trellis-150", seed=11)
    assert len(rig.poses) == 150 and rig.fov_deg == 40.0
    assert rig.normalization == ("longest_side", 1.0)
    off = np.random.default_rng(11).random(2)
    for i, pose in enumerate(rig.poses):
        u = (i + off[0]) / 150
        u = 2 * u if u < 0.25 else 2 * u / 3 + 1 / 3
        pitch = math.asin(2 * u - 1)  # = arccos(1 - 2u) - π/2
        yaw = 2 * math.pi * (_bit_reversed(i) + off[1])
        expected = 2.0 * np.array(
            [math.cos(yaw) * math.cos(pitch), math.sin(yaw) * math.cos(pitch), math.sin(pitch)]
        )
        np.testing.assert_allclose(pose[:3, 3], expected, atol=TOL)
    assert [radical_inverse(2, i) for i in range(6)] == [0, 0.5, 0.25, 0.75, 0.125, 0.625]
    _check_looks_at_origin(rig)
    _check_z_up(rig)


def test_placement_scale_and_intrinsics():
    rig = make_rig("syncdreamer-16")
    intr = rig_intrinsics(rig, 64, 48)
    assert intr.fx == pytest.approx(64 / (2 * math.tan(math.radians(rig.fov_deg) / 2)), abs=TOL)
    assert (intr.fy, intr.cx, intr.cy) == (intr.fx, 32.0, 24.0)
    portrait = rig_intrinsics(rig, 48, 64)  # the FOV spans the larger (vertical) side
    assert portrait.fy == pytest.approx(intr.fx, abs=TOL)
    extent = np.array([0.5, 3.0, 1.0])
    scale = rig_scale(rig, 7.0, extent)
    assert scale == 3.0
    center = np.array([1.0, -2.0, 0.5])
    cams = place_rig(rig, intr, center, scale)
    for cam, pose in zip(cams, rig.poses, strict=True):
        np.testing.assert_allclose(cam.cam_to_world[:3, 3], center + 3.0 * pose[:3, 3], atol=TOL)
        np.testing.assert_array_equal(cam.cam_to_world[:3, :3], pose[:3, :3])
    assert rig_scale(make_rig("hunyuan3d-6"), 1.2, None) == pytest.approx(2.0)


def test_bad_rig_options():
    with pytest.raises(BlendtruthError, match="--rig must be one of"):
        make_rig("nerf-synthetic")
    with pytest.raises(BlendtruthError, match="fixed number of views"):
        make_rig("syncdreamer-16", views=4)
    with pytest.raises(BlendtruthError, match="--views"):
        make_rig("zero123", views=0)
    assert set(RIGS) == {"hunyuan3d-6", "syncdreamer-16", "zero123", "trellis-150"}


@pytest.mark.render
def test_rig_on_the_cli_places_cameras_around_the_scene(tmp_path):
    from blendtruth.cli import main

    out = tmp_path / "o"
    args = ["render", "uv_sphere", "--rig", "zero123", "--views", "2", "--seed", "3"]
    code = main([*args, "--width", "32", "--height", "24", "--no-rgb", "--out", str(out)])
    assert code == 0
    frames = json.loads((out / "cameras.json").read_text())["frames"]
    rig = make_rig("zero123", seed=3, views=2)
    # The primitive is not normalised: the UV sphere's box is 2 wide, so 2 scene units
    # per rig unit (zero123 normalises the longest side to 1).
    for frame, pose in zip(frames, rig.poses, strict=True):
        got = np.array(frame["cam_to_world"])
        np.testing.assert_allclose(got[:3, 3], 2.0 * pose[:3, 3], atol=1e-6)
        np.testing.assert_allclose(got[:3, :3], pose[:3, :3], atol=1e-9)
        K = np.array(frame["K"])
        assert K[0, 0] == pytest.approx(32 / (2 * math.tan(math.radians(ZERO123_FOV) / 2)))


@pytest.mark.render
def test_hunyuan_rig_renders_orthographic_views_framing_the_bounding_sphere(tmp_path):
    from blendtruth.cli import main

    out = tmp_path / "h"
    args = ["render", "uv_sphere", "--rig", "hunyuan3d-6", "--width", "32", "--height", "32"]
    assert main([*args, "--no-rgb", "--out", str(out)]) == 0
    frames = json.loads((out / "cameras.json").read_text())["frames"]
    assert len(frames) == 6
    for frame, pose in zip(frames, make_rig("hunyuan3d-6").poses, strict=True):
        # Unit bounding sphere -> 1/0.6 scene units per rig unit: view width 1.2/0.6 = 2.
        assert frame["camera_model"] == "ortho"
        assert frame["ortho_scale"] == pytest.approx(2.0, rel=1e-6)  # float32 vertices
        assert frame["pixel_size"] == pytest.approx(2.0 / 32, rel=1e-6)
        np.testing.assert_allclose(
            np.array(frame["cam_to_world"])[:3, 3], pose[:3, 3] / 0.6, atol=1e-5
        )
    transforms = json.loads((out / "transforms.json").read_text())
    assert transforms["frames"] == [] and "ortho" in transforms["blendtruth"]["cannot_express"]
    with np.load(out / "views" / "0000.npz") as v:
        mask, depth = v["mask"], v["depth"]
    # The sphere's silhouette spans the view: its widest row covers nearly all 32 pixels.
    assert mask.sum(axis=1).max() >= 30
    # Depth along the parallel rays: the nearest point is 1.45/0.6 - 1 from the image
    # plane, plus < 0.01 because no pixel centre meets the faceted sphere's front vertex.
    assert 0 <= depth[mask].min() - (1.45 / 0.6 - 1.0) < 0.01
