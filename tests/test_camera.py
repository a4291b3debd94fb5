"""Intrinsics and the K <-> Blender camera conversion (pure)."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from blendtruth.camera import (
    BlenderCamera,
    Intrinsics,
    intrinsics_from_blender,
    intrinsics_to_blender,
)
from blendtruth.errors import BlendtruthError
from blendtruth.geometry import pixel_centers, ray_directions


def _close(a: Intrinsics, b: Intrinsics, tol: float = 1e-9) -> None:
    assert (a.width, a.height) == (b.width, b.height)
    for name in ("fx", "fy", "cx", "cy"):
        x, y = getattr(a, name), getattr(b, name)
        assert abs(x - y) <= tol * max(1.0, abs(x)), (name, x, y)


@pytest.mark.parametrize(
    "intr",
    [
        Intrinsics(500.0, 500.0, 320.0, 240.0, 640, 480),  # square, centred
        Intrinsics(612.3, 548.9, 301.7, 255.2, 640, 480),  # fx > fy, off-centre
        Intrinsics(400.0, 455.5, 90.25, 310.0, 200, 480),  # portrait, fx < fy
        Intrinsics(1000.0, 1000.0, -50.0, 700.0, 300, 200),  # principal point outside
    ],
)
def test_blender_round_trip_is_exact(intr):
    _close(intrinsics_from_blender(intrinsics_to_blender(intr)), intr)


@given(
    fx=st.floats(10, 5000), ratio=st.floats(0.5, 2.0), w=st.integers(1, 4096),
    h=st.integers(1, 4096), ox=st.floats(-0.5, 0.5), oy=st.floats(-0.5, 0.5),
    sensor=st.floats(1.0, 100.0),
)  # fmt: skip
def test_blender_round_trip_property(fx, ratio, w, h, ox, oy, sensor):
    intr = Intrinsics(fx, fx * ratio, w * (0.5 + ox), h * (0.5 + oy), w, h)
    params = intrinsics_to_blender(intr, sensor_width_mm=sensor)
    assert params.pixel_aspect_x >= 1 and params.pixel_aspect_y >= 1
    _close(intrinsics_from_blender(params), intr)


def test_blender_fits_by_hand():
    # Factory camera: 50 mm lens, 36 mm sensor, AUTO fit, landscape 1920x1080.
    cam = BlenderCamera(50, 36, 24, "AUTO", 0, 0, 1920, 1080)
    _close(
        intrinsics_from_blender(cam),
        Intrinsics(50 / 36 * 1920, 50 / 36 * 1920, 960, 540, 1920, 1080),
    )
    # AUTO on a portrait image fits the 36 mm sensor_width to the *height*.
    cam = BlenderCamera(50, 36, 24, "AUTO", 0.1, -0.2, 600, 800)
    f = 50 / 36 * 800
    _close(
        intrinsics_from_blender(cam), Intrinsics(f, f, 300 - 0.1 * 800, 400 - 0.2 * 800, 600, 800)
    )
    # VERTICAL uses sensor_height across the image height, even on a landscape image.
    cam = BlenderCamera(35, 36, 24, "VERTICAL", 0.0, 0.05, 800, 600)
    f = 35 / 24 * 600
    _close(intrinsics_from_blender(cam), Intrinsics(f, f, 400, 300 + 0.05 * 600, 800, 600))
    # HORIZONTAL with non-square pixels (aspect 1 : 2): fy is half of fx.
    cam = BlenderCamera(50, 36, 24, "HORIZONTAL", 0, 0.1, 400, 300, 1.0, 2.0)
    fx = 50 / 36 * 400
    _close(intrinsics_from_blender(cam), Intrinsics(fx, fx / 2, 200, 150 + 0.1 * 400 / 2, 400, 300))


def test_pixel_centre_convention():
    intr = Intrinsics(100.0, 100.0, 2.0, 1.5, 4, 3)
    u, v = pixel_centers(4, 3)
    assert u[0].tolist() == [0.5, 1.5, 2.5, 3.5] and v[:, 0].tolist() == [0.5, 1.5, 2.5]
    # Pixel (1, 1) has its centre at (1.5, 1.5): the principal point (2.0, 1.5) is half a
    # pixel to its right, so its ray leans left by exactly 0.5 / fx.
    d = ray_directions(intr)
    assert d[1, 1].tolist() == [-0.005, 0.0, 1.0]
    # A centred principal point of an even-sized image lies on a pixel corner.
    even = Intrinsics.from_fov(90.0, 4, 2)
    assert (even.cx, even.cy) == (2.0, 1.0)
    np.testing.assert_allclose(ray_directions(even)[0, 1:3, 0], [-0.25, 0.25])


def test_from_fov():
    intr = Intrinsics.from_fov(90.0, 200, 100)
    assert intr.fx == pytest.approx(100.0) and intr.fy == pytest.approx(100.0)
    intr = Intrinsics.from_fov(90.0, 200, 100, fov_y_deg=90.0)
    assert intr.fy == pytest.approx(50.0)


@pytest.mark.parametrize(
    ("make", "needle"),
    [
        (lambda: Intrinsics.from_K([[100, 1.0, 50], [0, 100, 50], [0, 0, 1]], 100, 100), "skew"),
        (lambda: Intrinsics.from_K([[100, 0, 50], [0, 100, 50], [0, 0, 2]], 100, 100), "last row"),
        (lambda: Intrinsics.from_K(np.eye(4), 100, 100), "3x3"),
        (lambda: Intrinsics(-1.0, 100.0, 50, 50, 100, 100), "fx"),
        (lambda: Intrinsics(100.0, np.nan, 50, 50, 100, 100), "fy"),
        (lambda: Intrinsics(100.0, 100.0, 50, 50, 0, 100), "width"),
        (lambda: Intrinsics.from_fov(180.0, 100, 100), "--fov"),
    ],
)
def test_bad_intrinsics(make, needle):
    with pytest.raises(BlendtruthError, match=needle):
        make()
