"""Camera samplers (pure)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from blendtruth.camera import Intrinsics
from blendtruth.errors import BlendtruthError
from blendtruth.geometry import project
from blendtruth.samplers import auto_distance, directions, sample_cameras

INTR = Intrinsics(200.0, 180.0, 70.0, 60.0, 160, 120)  # off-centre principal point
CENTER = np.array([0.3, -0.2, 0.5])


def _eyes(cams):
    return np.array([c.cam_to_world[:3, 3] for c in cams])


@pytest.mark.parametrize("sampler", ["orbit", "sphere", "hemisphere", "random"])
def test_cameras_look_at_the_centre(sampler):
    cams = sample_cameras(sampler, 12, INTR, center=CENTER, radius=4.0, seed=3)
    assert len(cams) == 12
    for cam in cams:
        uv, z = project(CENTER[None], INTR, cam.cam_to_world)
        np.testing.assert_allclose(uv[0], [INTR.cx, INTR.cy], atol=1e-9)
        assert z[0] == pytest.approx(4.0)


def test_random_is_reproducible():
    a = _eyes(sample_cameras("random", 5, INTR, seed=7))
    b = _eyes(sample_cameras("random", 5, INTR, seed=7))
    c = _eyes(sample_cameras("random", 5, INTR, seed=8))
    assert np.array_equal(a, b) and not np.allclose(a, c)


def test_fibonacci_sphere_covers_evenly():
    n = 200
    dirs = directions("sphere", n)
    np.testing.assert_allclose(np.linalg.norm(dirs, axis=1), 1)
    probes = np.random.default_rng(0).normal(size=(20000, 3))
    probes /= np.linalg.norm(probes, axis=1, keepdims=True)
    gap = np.degrees(np.arccos(np.clip(probes @ dirs.T, -1, 1).max(axis=1)))
    # Cap-shaped cells of area 4π/n have radius ≈ 2/sqrt(n) rad = 8.1°. Measured: the
    # Fibonacci lattice's largest gap is 1.25-1.35× that for n = 50-1000; random
    # directions leave holes of 2.5-3.1× (five seeds), so 1.5× separates the two.
    ideal = math.degrees(2 / math.sqrt(n))
    assert gap.max() < 1.5 * ideal, gap.max()
    rand = np.random.default_rng(1).normal(size=(n, 3))
    rand /= np.linalg.norm(rand, axis=1, keepdims=True)
    assert np.degrees(np.arccos(np.clip(probes @ rand.T, -1, 1).max(axis=1))).max() > 2.0 * ideal
    # Equal-area bands hold equal counts (z uniform in [-1, 1]).
    counts, _ = np.histogram(dirs[:, 2], bins=10, range=(-1, 1))
    assert counts.min() == counts.max() == n // 10


def test_hemisphere_and_orbit_geometry():
    hemi = directions("hemisphere", 50)
    assert (hemi[:, 2] > 0).all()
    orbit = directions("orbit", 8, elevation_deg=30.0)
    np.testing.assert_allclose(np.degrees(np.arcsin(orbit[:, 2])), 30.0)
    np.testing.assert_allclose(orbit[0], [math.cos(math.radians(30)), 0, 0.5])
    # Straight above the centre the camera still gets a valid pose.
    top = sample_cameras("orbit", 3, INTR, elevation_deg=90.0, radius=2.0)
    np.testing.assert_allclose(_eyes(top), [[0, 0, 2]] * 3, atol=1e-12)


def test_auto_distance_fills_the_frame():
    fill = 0.8
    d = auto_distance(INTR, 1.0, fill)
    cams = sample_cameras("sphere", 20, INTR, center=CENTER, object_radius=1.0, fill=fill)
    rng = np.random.default_rng(2)
    surf = rng.normal(size=(5000, 3))
    surf = CENTER + surf / np.linalg.norm(surf, axis=1, keepdims=True)
    half = min(
        INTR.cx,
        INTR.width - INTR.cx,
        INTR.cy * INTR.fx / INTR.fy,
        (INTR.height - INTR.cy) * INTR.fx / INTR.fy,
    )
    for cam in cams:
        assert np.linalg.norm(cam.cam_to_world[:3, 3] - CENTER) == pytest.approx(d)
        uv, _ = project(surf, INTR, cam.cam_to_world)
        assert (uv[:, 0] > 0).all() and (uv[:, 0] < INTR.width).all()
        assert (uv[:, 1] > 0).all() and (uv[:, 1] < INTR.height).all()
    # The silhouette's angular radius is exactly atan(fill * tightest half-extent / f).
    ang = math.asin(1.0 / d)
    assert math.tan(ang) * INTR.fx == pytest.approx(fill * half)


@pytest.mark.parametrize(
    ("kwargs", "needle"),
    [
        ({"sampler": "spiral"}, "--sampler"),
        ({"n_views": 0}, "--views"),
        ({"fill": 1.5}, "--fill"),
        ({"radius": -1.0}, "--radius"),
        ({"sampler": "file"}, "--cameras"),
    ],
)
def test_bad_sampler_options(kwargs, needle):
    args = {"sampler": "sphere", "n_views": 4, "intr": INTR} | kwargs
    with pytest.raises(BlendtruthError, match=needle):
        sample_cameras(**args)
