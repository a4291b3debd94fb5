"""Intrinsics, the pixel-centre rule and the K <-> Blender camera conversion (pure)."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from blendtruth.errors import BlendtruthError
from blendtruth.geometry.camera import (
    BlenderCamera,
    Intrinsics,
    intrinsics_from_blender,
    intrinsics_to_blender,
)
from blendtruth.geometry.rays import pixel_centers, project, ray_directions

from analytic import camera_rays


def _close(a: Intrinsics, b: Intrinsics, tol: float = 1e-9) -> None:
    assert (a.width, a.height) == (b.width, b.height)
    for name in ("fx", "fy", "cx", "cy"):
        x, y = getattr(a, name), getattr(b, name)
        assert abs(x - y) <= tol * max(1.0, abs(x)), (name, x, y)


@pytest.mark.parametrize(
    "intr",
    [
        Intrinsics(500.0, 500.0, 320.0, 240.0, 640, 480),  # square pixels, centred
        Intrinsics(612.3, 548.9, 301.7, 255.2, 640, 480),  # fx > fy, off-centre
        Intrinsics(400.0, 455.5, 90.25, 310.0, 200, 480),  # portrait, fx < fy
        Intrinsics(210.0, 190.0, 91.3, 52.7, 160, 120),  # the pure tests' camera
        Intrinsics(1000.0, 1000.0, -50.0, 700.0, 300, 200),  # principal point outside
    ],
)
def test_blender_round_trip_is_exact(intr):
    params = intrinsics_to_blender(intr)
    assert params.sensor_fit == "HORIZONTAL" and params.sensor_width_mm == 36.0
    assert params.sensor_height_mm == pytest.approx(36.0 * intr.height / intr.width)
    assert min(params.pixel_aspect_x, params.pixel_aspect_y) == 1.0
    _close(intrinsics_from_blender(params), intr)


@given(
    fx=st.floats(10, 5000), ratio=st.floats(0.5, 2.0), w=st.integers(1, 4096),
    h=st.integers(1, 4096), ox=st.floats(-0.5, 0.5), oy=st.floats(-0.5, 0.5),
    sensor=st.floats(1.0, 100.0),
)  # fmt: skip
def test_blender_round_trip_property(fx, ratio, w, h, ox, oy, sensor):
    # Portrait and landscape, fx != fy, principal point anywhere in the image.
    intr = Intrinsics(fx, fx * ratio, w * (0.5 + ox), h * (0.5 + oy), w, h)
    params = intrinsics_to_blender(intr, sensor_width_mm=sensor)
    assert params.pixel_aspect_x >= 1 and params.pixel_aspect_y >= 1
    _close(intrinsics_from_blender(params), intr)


def test_to_blender_by_hand():
    intr = Intrinsics(1000.0, 500.0, 180.0, 170.0, 400, 300)
    cam = intrinsics_to_blender(intr, sensor_width_mm=36.0)
    assert cam.lens_mm == pytest.approx(1000 * 36 / 400)
    assert (cam.pixel_aspect_x, cam.pixel_aspect_y) == (1.0, 2.0)
    assert cam.shift_x == pytest.approx((200 - 180) / 400)  # principal point left: shift +x
    assert cam.shift_y == pytest.approx((170 - 150) / (400 * 0.5))  # below centre: shift +y
    tall = intrinsics_to_blender(Intrinsics(500.0, 800.0, 50.0, 60.0, 100, 120))
    assert (tall.pixel_aspect_x, tall.pixel_aspect_y) == (1.6, 1.0)


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
    # VERTICAL on a portrait image: sensor_height across the height, shifts in its units.
    cam = BlenderCamera(40, 36, 30, "VERTICAL", -0.05, 0.1, 480, 640)
    f = 40 / 30 * 640
    _close(
        intrinsics_from_blender(cam), Intrinsics(f, f, 240 + 0.05 * 640, 320 + 0.1 * 640, 480, 640)
    )
    # HORIZONTAL with non-square pixels (aspect 1 : 2): fy is half of fx.
    cam = BlenderCamera(50, 36, 24, "HORIZONTAL", 0, 0.1, 400, 300, 1.0, 2.0)
    fx = 50 / 36 * 400
    _close(intrinsics_from_blender(cam), Intrinsics(fx, fx / 2, 200, 150 + 0.1 * 400 / 2, 400, 300))
    # AUTO decides on the pixel-aspect-corrected size: 1000x800 pixels of aspect 1 : 2 are
    # 1000 x 1600 "square" units, so the fit is vertical; the extent is 800 * 2 / 1 = 1600
    # and the sensor is still sensor_width.
    cam = BlenderCamera(50, 36, 24, "AUTO", 0.02, 0.03, 1000, 800, 1.0, 2.0)
    fx = 50 / 36 * 1600
    _close(
        intrinsics_from_blender(cam),
        Intrinsics(fx, fx / 2, 500 - 0.02 * 1600, 400 + 0.03 * 1600 / 2, 1000, 800),
    )


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


@pytest.mark.parametrize("shift", [(0.0, 0.0), (0.5, 0.0), (0.0, 0.5), (-0.5, -0.5)])
def test_principal_point_on_a_pixel_centre_is_the_optical_axis(shift):
    # Put (cx, cy) on the centre of pixel (column 37, row 21). Its ray must be exactly the
    # optical axis, and a point on the axis must project to (cx, cy). The parametrised
    # half-pixel shifts move the principal point onto pixel edges: then no pixel's ray is
    # the axis, which the same checks must notice.
    dx, dy = shift
    intr = Intrinsics(250.0, 230.0, 37.5 + dx, 21.5 + dy, 64, 48)
    rays = ray_directions(intr)
    on_axis = np.all(rays[..., :2] == 0, axis=-1)
    if shift == (0.0, 0.0):
        assert np.argwhere(on_axis).tolist() == [[21, 37]]
    else:
        assert not on_axis.any()
        assert np.abs(rays[21, 37, :2]).max() == pytest.approx(0.5 / 250.0, rel=0.1)
    uv, z = project(np.array([[0.0, 0.0, 4.0]]), intr)
    assert uv[0].tolist() == [intr.cx, intr.cy] and z[0] == 4.0


def test_rays_match_inverse_K():
    # Independent construction: K^-1 (u + 0.5, v + 0.5, 1) with numpy's solver.
    intr = Intrinsics(210.0, 190.0, 91.3, 52.7, 160, 120)
    np.testing.assert_allclose(ray_directions(intr), camera_rays(intr), rtol=0, atol=1e-14)


def test_K_and_from_K():  # noqa: N802
    intr = Intrinsics(612.3, 548.9, 301.7, 255.2, 640, 480)
    K = intr.K  # noqa: N806
    assert K.dtype == np.float64 and K.shape == (3, 3)
    assert K.tolist() == [[612.3, 0.0, 301.7], [0.0, 548.9, 255.2], [0.0, 0.0, 1.0]]
    assert Intrinsics.from_K(K, 640, 480) == intr
    assert Intrinsics.from_K(K.astype(np.float32), 640.0, 480).width == 640


def test_from_fov():
    intr = Intrinsics.from_fov(90.0, 200, 100)
    assert intr.fx == pytest.approx(100.0) and intr.fy == pytest.approx(100.0)
    assert (intr.cx, intr.cy) == (100.0, 50.0)
    intr = Intrinsics.from_fov(90.0, 200, 100, fov_y_deg=90.0)
    assert intr.fy == pytest.approx(50.0)


@pytest.mark.parametrize(
    ("make", "needle"),
    [
        (lambda: Intrinsics.from_K([[100, 1.0, 50], [0, 100, 50], [0, 0, 1]], 100, 100), "skew"),
        (lambda: Intrinsics.from_K([[100, 0, 50], [0.5, 100, 50], [0, 0, 1]], 100, 100), "skew"),
        (lambda: Intrinsics.from_K([[100, 0, 50], [0, 100, 50], [0, 0, 2]], 100, 100), "last row"),
        (lambda: Intrinsics.from_K([[100, 0, 50], [0, 100, 50], [0, 1, 1]], 100, 100), "last row"),
        (lambda: Intrinsics.from_K(np.eye(4), 100, 100), "3x3"),
        (lambda: Intrinsics(-1.0, 100.0, 50, 50, 100, 100), "fx"),
        (lambda: Intrinsics(100.0, np.nan, 50, 50, 100, 100), "fy"),
        (lambda: Intrinsics(100.0, 100.0, np.inf, 50, 100, 100), "cx"),
        (lambda: Intrinsics(100.0, 100.0, 50, 50, 0, 100), "width"),
        (lambda: Intrinsics(100.0, 100.0, 50, 50, 100, 12.5), "height"),
        (lambda: Intrinsics(100.0, 100.0, 50, 50, True, 100), "width"),
        (lambda: Intrinsics("100", 100.0, 50, 50, 100, 100), "fx"),
        (lambda: Intrinsics.from_fov(180.0, 100, 100), "--fov"),
        (lambda: Intrinsics.from_fov(60.0, 100, 100, fov_y_deg=0.0), "fov_y_deg"),
        (lambda: BlenderCamera(50, 36, 24, "DIAGONAL", 0, 0, 100, 100), "sensor_fit"),
        (lambda: BlenderCamera(0, 36, 24, "AUTO", 0, 0, 100, 100), "lens_mm"),
        (lambda: BlenderCamera(50, 36, 24, "AUTO", 0, 0, 100, 0), "resolution_y"),
        (lambda: BlenderCamera(50, 36, 24, "AUTO", 0, 0, 100, 100, 0.0), "pixel_aspect_x"),
        (lambda: intrinsics_to_blender(Intrinsics.from_fov(60, 10, 10), -1.0), "sensor_width"),
    ],
)
def test_bad_cameras_name_the_culprit(make, needle):
    with pytest.raises(BlendtruthError, match=needle):
        make()
