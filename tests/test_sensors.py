"""Depth-sensor simulation against its own stated equations and closed-form geometry:
plane sweeps (noise spread within 10 % of each preset's σ(z)), disparity quantisation,
the stereo shadow band beside a step (width and side), grazing, mixed-pixel and range
dropouts, seeding, and one-line errors."""

from __future__ import annotations

import numpy as np
import pytest

from blendtruth.errors import BlendtruthError
from blendtruth.sensors.models import SENSORS, sensor
from blendtruth.sensors.simulate import CAUSES, simulate

H = W = 256
K = np.array([[300.0, 0.0, W / 2], [0.0, 300.0, H / 2], [0.0, 0.0, 1.0]])


def _facing(height: int = H, width: int = W) -> np.ndarray:
    n = np.zeros((height, width, 3))
    n[..., 2] = -1.0
    return n


@pytest.mark.parametrize(
    ("name", "distances"),
    [
        ("realsense-d435", (0.5, 1.0, 2.0, 3.0, 4.0)),
        ("realsense-d415", (0.6, 1.0, 2.0, 3.0, 5.0)),
        ("azure-kinect-nfov", (0.6, 1.0, 2.0, 3.0, 3.5)),
    ],
)
def test_plane_sweep_spread_follows_the_model(name, distances):
    model = SENSORS[name]
    for z in distances:
        out = simulate(model, np.full((H, W), z), _facing(), K, seed=3)
        assert out.valid.all(), (name, z, np.bincount(out.cause.ravel()))
        spread = out.depth_sensor.astype(np.float64).std()
        assert spread == pytest.approx(model.sigma_z(z), rel=0.10), (name, z)
        # Centred on the truth: the bias is far below the spread (catches a scale error).
        assert abs(out.depth_sensor.mean() - z) < 0.1 * model.sigma_z(z) + 1e-3 * z


def test_kinect_v1_reports_depths_on_its_eighth_pixel_disparity_grid():
    model = SENSORS["kinect-v1"]
    fb = model.focal_px * model.baseline_m
    for z in (0.9, 1.7, 3.1):
        out = simulate(model, np.full((64, 64), z), _facing(64, 64), K, seed=5)
        steps = fb / out.depth_sensor[out.valid].astype(np.float64) / model.disparity_step_px
        np.testing.assert_allclose(steps, np.round(steps), atol=2e-3 * z)
        # Nearest grid depths around z: every reading is one of the two or three nearest.
        assert np.abs(out.depth_sensor - z).max() <= z * z / fb * model.disparity_step_px * 2


def test_same_seed_same_bits_other_seed_other_noise():
    d = np.full((32, 48), 1.5)
    a = simulate(sensor("realsense-d435"), d, _facing(32, 48), K, seed=11)
    b = simulate(sensor("realsense-d435"), d, _facing(32, 48), K, seed=11)
    c = simulate(sensor("realsense-d435"), d, _facing(32, 48), K, seed=12)
    assert a.depth_sensor.tobytes() == b.depth_sensor.tobytes()
    assert not np.array_equal(a.depth_sensor, c.depth_sensor)


def test_stereo_shadow_band_left_of_a_nearer_step():
    # Background wall at 2 m, a nearer plate at 1 m over columns >= 100. The second imager
    # sits B = 50 mm along +x: disparities 300·0.05/1 = 15 px and /2 = 7.5 px, so the wall
    # pixels whose centres lie within 15 − 7.5 = 7.5 px left of the plate's edge are hidden.
    model = SENSORS["realsense-d435"]
    depth = np.full((8, 160), 2.0)
    depth[:, 100:] = 1.0
    out = simulate(model, depth, _facing(8, 160), K, seed=0)
    shadow = out.cause == 4
    cols = np.flatnonzero(shadow.all(axis=0))
    # Centre u = c + 0.5 lands at u − 7.5; the plate's first centre lands at 100.5 − 15.
    assert cols.tolist() == list(range(93, 100))
    assert not shadow[:, 100:].any() and not shadow[:, :93].any()
    assert CAUSES[4] == "shadow"


def test_grazing_surfaces_drop_out_and_others_stay():
    model = SENSORS["realsense-d435"]
    for tilt, dropped in ((80.0, True), (60.0, False)):
        n = np.zeros((16, 16, 3))
        a = np.radians(tilt)
        n[..., 0], n[..., 2] = np.sin(a), -np.cos(a)
        k16 = np.array([[300.0, 0.0, 8.0], [0.0, 300.0, 8.0], [0.0, 0.0, 1.0]])
        out = simulate(model, np.full((16, 16), 1.0), n, k16, seed=0)
        # Rays near the image centre: angle to the normal is within 1 deg of the tilt.
        centre = out.cause[6:10, 6:10]
        assert (centre == 5).all() if dropped else (centre == 0).all(), tilt


def test_tof_mixed_pixels_at_silhouettes_and_depth_steps():
    model = SENSORS["azure-kinect-nfov"]
    depth = np.zeros((20, 20))
    depth[5:15, 5:15] = 1.0
    depth[5:15, 10:15] = 1.2  # a 20 % step inside the object
    out = simulate(model, depth, _facing(20, 20), K, seed=0)
    edge = out.cause == 6
    assert edge[5, 7] and edge[7, 5] and edge[14, 12]  # silhouette
    assert edge[8, 9] and edge[8, 10]  # both sides of the step
    assert not edge[8, 7] and not edge[8, 12]  # interiors keep their readings
    assert (out.cause[depth == 0] == 1).all()


def test_range_transparency_and_units():
    model = SENSORS["kinect-v1"]
    depth = np.array([[0.5, 2.0, 5.0, 2.0]])
    transparent = np.array([[False, False, False, True]])
    out = simulate(model, depth, _facing(1, 4), K, seed=0, transparent=transparent)
    assert out.cause.tolist() == [[2, 0, 2, 3]]
    assert (out.depth_sensor[~out.valid] == 0).all() and out.depth_sensor.dtype == np.float32
    # Scene units of 2 m: a wall at 1 unit is 2 m away; the output stays in scene units.
    half = simulate(model, np.full((64, 64), 1.0), _facing(64, 64), K, metres_per_unit=2.0)
    metric = simulate(model, np.full((64, 64), 2.0), _facing(64, 64), K)
    np.testing.assert_allclose(half.depth_sensor * 2.0, metric.depth_sensor, rtol=1e-6)


def test_bad_sensor_name_and_inputs_are_one_line():
    with pytest.raises(BlendtruthError, match="choose from azure-kinect-nfov, kinect-v1"):
        sensor("kinect-v3")
    with pytest.raises(BlendtruthError, match="normal must be"):
        simulate(SENSORS["kinect-v1"], np.ones((4, 4)), np.zeros((4, 3)), K)
    with pytest.raises(BlendtruthError, match="metres per unit"):
        simulate(SENSORS["kinect-v1"], np.ones((4, 4)), _facing(4, 4), K, metres_per_unit=0)
