"""Camera samplers (pure): aiming, coverage, framing, the file sampler, bad options."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
from scipy.spatial import SphericalVoronoi

from blendtruth.errors import BlendtruthError
from blendtruth.geometry.camera import Intrinsics
from blendtruth.geometry.rays import project
from blendtruth.multiview import file_cameras
from blendtruth.scenes.samplers import auto_distance, directions, sample_cameras
from blendtruth.writers.nerf import write_cameras_json, write_transforms_json

INTR = Intrinsics(200.0, 180.0, 70.0, 60.0, 160, 120)  # off-centre principal point, fx != fy
CENTER = np.array([0.3, -0.2, 0.5])
PLACED = ["orbit", "sphere", "hemisphere", "random"]


def _eyes(cams) -> np.ndarray:
    return np.array([c.cam_to_world[:3, 3] for c in cams])


@pytest.mark.parametrize("sampler", PLACED)
def test_cameras_look_at_the_centre_with_z_up(sampler):
    cams = sample_cameras(sampler, 12, INTR, center=CENTER, radius=4.0, seed=3)
    assert len(cams) == 12
    for cam in cams:
        assert cam.intrinsics == INTR
        uv, z = project(CENTER[None], INTR, cam.cam_to_world)
        np.testing.assert_allclose(uv[0], [INTR.cx, INTR.cy], atol=1e-9)
        assert z[0] == pytest.approx(4.0)
        # No roll: the image's x axis is horizontal and its up (-y) leans towards +Z.
        x_axis, y_axis = cam.cam_to_world[:3, 0], cam.cam_to_world[:3, 1]
        assert abs(x_axis[2]) < 1e-12 and y_axis[2] <= 1e-12


@pytest.mark.parametrize("elevation", [90.0, -90.0])
def test_poles_use_plus_y_as_up(elevation):
    cams = sample_cameras("orbit", 3, INTR, center=CENTER, elevation_deg=elevation, radius=2.0)
    sign = math.copysign(1.0, elevation)
    np.testing.assert_allclose(_eyes(cams), [CENTER + [0, 0, 2 * sign]] * 3, atol=1e-12)
    for cam in cams:
        uv, _ = project(CENTER[None], INTR, cam.cam_to_world)
        np.testing.assert_allclose(uv[0], [INTR.cx, INTR.cy], atol=1e-9)
        np.testing.assert_allclose(-cam.cam_to_world[:3, 1], [0, 1, 0], atol=1e-12)


def test_random_is_reproducible_and_seeded():
    a = _eyes(sample_cameras("random", 5, INTR, seed=7))
    b = _eyes(sample_cameras("random", 5, INTR, seed=7))
    c = _eyes(sample_cameras("random", 5, INTR, seed=8))
    assert np.array_equal(a, b)
    assert not np.allclose(a, c)
    # The deterministic samplers do not depend on the seed.
    for sampler in ("orbit", "sphere", "hemisphere"):
        s1 = _eyes(sample_cameras(sampler, 5, INTR, seed=1))
        assert np.array_equal(s1, _eyes(sample_cameras(sampler, 5, INTR, seed=2)))


def _covering_radius(dirs: np.ndarray) -> float:
    """Exact largest angular distance (rad) from any direction to its nearest view: the
    farthest points from a spherical point set are the vertices of its Voronoi diagram."""
    vertices = SphericalVoronoi(dirs).vertices
    return float(np.arccos(np.clip(vertices @ dirs.T, -1, 1).max(axis=1)).max())


@pytest.mark.parametrize("n", [50, 200, 1000])
def test_fibonacci_sphere_covers_evenly(n):
    dirs = directions("sphere", n)
    np.testing.assert_allclose(np.linalg.norm(dirs, axis=1), 1)
    # No n directions do better than caps of area 4π/n covering the sphere: radius
    # θn = acos(1 - 2/n). A perfect hexagonal lattice reaches 1.10 θn, a square one
    # 1.25 θn (circumradius of the square cell of area 4π/n). The Fibonacci lattice is
    # such a lattice, sheared by latitude; near the poles it is Vogel's spiral at scale
    # θn (polar angle θn·sqrt(k + 1/2)), whose largest hole is a fixed multiple of θn
    # (1.36 here for every n). Random directions leave holes growing like sqrt(ln n) θn,
    # 2.0-3.4 θn for these n. So 1.5 θn accepts the lattice and rejects clumping.
    theta = math.acos(1 - 2 / n)
    assert theta <= _covering_radius(dirs) < 1.5 * theta
    rand = np.random.default_rng(1).normal(size=(n, 3))
    rand /= np.linalg.norm(rand, axis=1, keepdims=True)
    assert _covering_radius(rand) > 1.5 * theta
    # Equal-area bands hold equal counts (z uniform in [-1, 1], Archimedes).
    counts, _ = np.histogram(dirs[:, 2], bins=10, range=(-1, 1))
    assert counts.min() == counts.max() == n // 10


def test_hemisphere_stays_above_the_centre_and_is_even():
    cams = sample_cameras("hemisphere", 100, INTR, center=CENTER, radius=3.0)
    rel = _eyes(cams) - CENTER
    np.testing.assert_allclose(np.linalg.norm(rel, axis=1), 3.0)
    assert (rel[:, 2] >= 0).all()
    counts, _ = np.histogram(rel[:, 2] / 3.0, bins=10, range=(0, 1))
    assert counts.min() == counts.max() == 10
    # Azimuths are spread too: every 90° quadrant holds about a quarter.
    quadrant = (np.arctan2(rel[:, 1], rel[:, 0]) // (np.pi / 2)).astype(int)
    assert np.bincount(quadrant + 2, minlength=4).min() >= 20


@pytest.mark.parametrize("elevation", [-45.0, 0.0, 30.0, 75.0])
def test_orbit_elevation_and_azimuth_are_exact(elevation):
    n = 8
    rel = _eyes(
        sample_cameras("orbit", n, INTR, center=CENTER, radius=2.5, elevation_deg=elevation)
    )
    rel -= CENTER
    np.testing.assert_allclose(np.degrees(np.arcsin(rel[:, 2] / 2.5)), elevation, atol=1e-12)
    # Azimuth 0 is +X, then counter-clockwise seen from +Z in steps of 360°/n.
    az = np.degrees(np.arctan2(rel[:, 1], rel[:, 0])) % 360
    np.testing.assert_allclose(az, 360 * np.arange(n) / n, atol=1e-9)


def _silhouette(eye: np.ndarray, center: np.ndarray, r: float, m: int = 3600) -> np.ndarray:
    """m points of the circle where rays from ``eye`` graze the sphere (center, r)."""
    d = np.linalg.norm(center - eye)
    axis = (center - eye) / d
    b1 = np.cross(axis, [0.3, 0.5, 0.8])
    b1 /= np.linalg.norm(b1)
    b2 = np.cross(axis, b1)
    t = np.linspace(0, 2 * np.pi, m, endpoint=False)[:, None]
    ring = eye + axis * (d * d - r * r) / d
    return ring + r * math.sqrt(d * d - r * r) / d * (np.cos(t) * b1 + np.sin(t) * b2)


@pytest.mark.parametrize(
    "intr",
    [
        Intrinsics.from_fov(50.0, 128, 128),
        INTR,
        Intrinsics(150.0, 190.0, 70.0, 100.0, 90, 140),  # portrait, tight at the right/bottom
    ],
)
@pytest.mark.parametrize("fill", [0.5, 0.8, 1.0])
def test_auto_distance_fills_the_frame(intr, fill):
    r = 0.7
    d = auto_distance(intr, r, fill)
    cams = sample_cameras("sphere", 10, intr, center=CENTER, object_radius=r, fill=fill)
    cams += sample_cameras("orbit", 2, intr, center=CENTER, object_radius=r, elevation_deg=90)
    cams += sample_cameras("orbit", 2, intr, center=CENTER, object_radius=r, elevation_deg=-90)
    halves = np.array([intr.cx, intr.width - intr.cx, intr.cy, intr.height - intr.cy])
    for cam in cams[:10]:
        eye = cam.cam_to_world[:3, 3]
        assert np.linalg.norm(eye - CENTER) == pytest.approx(d, rel=1e-12)
        rim = _silhouette(eye, CENTER, r)
        np.testing.assert_allclose(np.linalg.norm(rim - CENTER, axis=1), r)
        uv, z = project(rim, intr, cam.cam_to_world)
        assert (z > 0).all()
        # How far the silhouette reaches towards each border, as a fraction of the
        # principal point's distance to it: the tightest border is reached at `fill`.
        reach = np.array(
            [
                intr.cx - uv[:, 0].min(),
                uv[:, 0].max() - intr.cx,
                intr.cy - uv[:, 1].min(),
                uv[:, 1].max() - intr.cy,
            ]
        )
        reach /= halves
        assert reach.max() == pytest.approx(fill, rel=1e-5)
        assert (reach <= fill * (1 + 1e-12)).all()
    # Points anywhere on the sphere stay inside the image from every direction.
    rng = np.random.default_rng(2)
    surf = rng.normal(size=(4000, 3))
    surf = CENTER + r * surf / np.linalg.norm(surf, axis=1, keepdims=True)
    for cam in cams:
        uv, _ = project(surf, intr, cam.cam_to_world)
        assert (uv >= -1e-9).all()
        assert (uv[:, 0] <= intr.width + 1e-9).all() and (uv[:, 1] <= intr.height + 1e-9).all()


def test_auto_distance_is_the_stated_formula():
    fill, r = 0.8, 1.3
    tightest = min(70 / 200, 90 / 200, 60 / 180, 60 / 180)
    assert auto_distance(INTR, r, fill) == pytest.approx(r / math.sin(math.atan(fill * tightest)))


def test_explicit_radius_wins():
    cams = sample_cameras("sphere", 4, INTR, center=CENTER, radius=7.5, object_radius=100.0)
    np.testing.assert_allclose(np.linalg.norm(_eyes(cams) - CENTER, axis=1), 7.5)


def test_file_sampler_reads_cameras_json_and_transforms_json(tmp_path):
    cams = sample_cameras("random", 3, INTR, center=CENTER, seed=5)
    cams[1] = sample_cameras("orbit", 1, Intrinsics(90.0, 95.0, 33.0, 20.0, 64, 48))[0]
    write_cameras_json(tmp_path / "cameras.json", cams, ["a", "b", "c"])
    write_transforms_json(tmp_path / "transforms.json", cams, ["a.png", "b.png", "c.png"])
    for name in ("cameras.json", "transforms.json"):
        # n_views and the placement options are ignored: the file is the whole plan.
        got = file_cameras(tmp_path / name)
        assert len(got) == 3
        for a, b in zip(got, cams, strict=True):
            assert a.intrinsics == b.intrinsics
            assert np.array_equal(a.cam_to_world, b.cam_to_world)


@pytest.mark.parametrize(
    ("kwargs", "needle"),
    [
        ({"sampler": "spiral"}, "--sampler"),
        ({"n_views": 0}, "--views"),
        ({"n_views": 2.5}, "--views"),
        ({"fill": 1.5}, "--fill"),
        ({"fill": 0.0}, "--fill"),
        ({"radius": -1.0}, "--radius"),
        ({"radius": 0.0}, "--radius"),
        ({"elevation_deg": 95.0}, "--elevation"),
        ({"object_radius": -2.0}, "object_radius"),
        ({"center": (0.0, 1.0)}, "center"),
        ({"sampler": "file"}, "--cameras"),
    ],
)
def test_bad_sampler_options(kwargs, needle):
    args = {"sampler": "sphere", "n_views": 4, "intr": INTR} | kwargs
    with pytest.raises(BlendtruthError, match=needle):
        sample_cameras(**args)


def test_principal_point_outside_the_image_needs_a_radius():
    off = Intrinsics(100.0, 100.0, -5.0, 30.0, 64, 64)
    with pytest.raises(BlendtruthError, match="--radius"):
        sample_cameras("sphere", 2, off)
    assert len(sample_cameras("sphere", 2, off, radius=3.0)) == 2


def test_bad_camera_files_name_the_file(tmp_path):
    with pytest.raises(BlendtruthError, match="missing.json: cannot read"):
        file_cameras(tmp_path / "missing.json")
    (tmp_path / "garbled.json").write_text('{"frames": [')
    with pytest.raises(BlendtruthError, match="garbled.json: not a cameras.json"):
        file_cameras(tmp_path / "garbled.json")
    (tmp_path / "odd.json").write_text(json.dumps({"frames": [{"pose": 1}]}))
    with pytest.raises(BlendtruthError, match="odd.json: .*neither"):
        file_cameras(tmp_path / "odd.json")
