"""Distorted lenses against OpenCV and COLMAP themselves: every ray of ours, projected by
cv2.projectPoints / cv2.fisheye.projectPoints (with K_opencv) and by pycolmap's camera
models, lands on its pixel centre; pixel -> ray -> pixel round trips to 1e-9 px; folding
models give invalid pixels, not exceptions or wrong rays; bad coefficients are one line."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from blendtruth.errors import BlendtruthError
from blendtruth.geometry.camera import Intrinsics
from blendtruth.geometry.lens_distortion import OpenCV, OpenCVFisheye

# fx != fy and an off-centre principal point, so a swapped or shifted intrinsic shows.
INTR = Intrinsics(500.0, 480.0, 320.5, 240.25, 640, 480)
CALIBRATIONS = [  # (k1, k2, p1, p2, k3, k4, k5, k6): barrel, pincushion, rational, tangential
    (-0.25, 0.10, 0.001, -0.002, -0.02, 0.0, 0.0, 0.0),
    (0.30, 0.05, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0),
    (-0.28, 0.07, 0.0003, 0.0008, 0.01, 0.15, -0.02, 0.005),
    (0.0, 0.0, 0.004, -0.003, 0.0, 0.0, 0.0, 0.0),
]
FISHEYES = [(0.05, -0.01, 0.002, -0.0005), (-0.02, 0.004, 0.0, 0.0), (0.0, 0.0, 0.0, 0.0)]


def _k_opencv(intr: Intrinsics) -> np.ndarray:
    return intr.K_opencv


@pytest.mark.parametrize("coeffs", CALIBRATIONS)
def test_opencv_rays_land_on_their_pixel_centres_through_opencv(coeffs):
    lens = OpenCV(INTR, coeffs)
    uv = lens.pixel_grid()
    _, d, valid = lens.rays(uv)
    assert valid.all()
    points = np.ascontiguousarray((d * 2.5)[valid])
    img, _ = cv2.projectPoints(points, np.zeros(3), np.zeros(3), _k_opencv(INTR),
                               np.array(coeffs))  # fmt: skip
    # OpenCV's pixel centres are at integers: ours are at +0.5.
    np.testing.assert_allclose(img[:, 0] + 0.5, uv[valid], atol=1e-6)
    back, z, ok = lens.project(d * 2.5)
    assert ok[valid].all()
    assert np.abs(back - uv)[valid].max() <= 1e-9
    np.testing.assert_allclose(z[valid], 2.5 * d[valid][:, 2])


@pytest.mark.parametrize("coeffs", FISHEYES)
def test_fisheye_rays_land_on_their_pixel_centres_through_opencv(coeffs):
    intr = Intrinsics(350.0, 340.0, 320.0, 240.5, 640, 480)
    lens = OpenCVFisheye(intr, coeffs)
    uv = lens.pixel_grid()
    _, d, valid = lens.rays(uv)
    assert valid.all()
    points = np.ascontiguousarray((d * 1.7)[valid]).reshape(-1, 1, 3)
    img, _ = cv2.fisheye.projectPoints(points, np.zeros(3), np.zeros(3), _k_opencv(intr),
                                       np.array(coeffs))  # fmt: skip
    np.testing.assert_allclose(img[:, 0] + 0.5, uv[valid], atol=1e-6)
    back, _, ok = lens.project(d * 1.7)
    assert ok[valid].all() and np.abs(back - uv)[valid].max() <= 1e-9


def test_colmap_camera_models_agree():
    pycolmap = pytest.importorskip("pycolmap")
    rng = np.random.default_rng(4)
    points = np.column_stack([rng.uniform(-1, 1, (500, 2)), rng.uniform(1.5, 4, 500)])
    for lens in (OpenCV(INTR, CALIBRATIONS[0]), OpenCV(INTR, CALIBRATIONS[2]),
                 OpenCVFisheye(INTR, FISHEYES[0])):  # fmt: skip
        name, params = lens.colmap()
        cam = pycolmap.Camera(model=name, width=640, height=480, params=params)
        ours, _, valid = lens.project(points)
        np.testing.assert_allclose(cam.img_from_cam(points[valid]), ours[valid], atol=1e-6)
    assert OpenCV(INTR, CALIBRATIONS[0]).colmap()[0] == "FULL_OPENCV"
    assert OpenCV(INTR, CALIBRATIONS[3]).colmap()[0] == "OPENCV"


def test_a_folding_model_marks_pixels_invalid():
    # Strong barrel distortion on a wide lens: r·g(r) turns back at r = 1/sqrt(3 * 0.45).
    intr = Intrinsics(500.0, 500.0, 320.0, 240.0, 640, 480)
    lens = OpenCV(intr, (-0.45, 0.0, 0.0, 0.0))
    assert lens.fold_radius == pytest.approx(1 / np.sqrt(3 * 0.45), abs=1e-4)
    uv = lens.pixel_grid()
    _, d, valid = lens.rays(uv)
    # The image of the fold: distorted radius r·g(r) at the fold radius, in pixels.
    rf = lens.fold_radius
    edge = 500.0 * rf * (1 - 0.45 * rf * rf)
    radius = np.hypot(uv[..., 0] - 320.0, uv[..., 1] - 240.0)
    assert not valid[radius > edge + 1].any()  # beyond the fold: no ray
    assert valid[radius < edge - 1].all()
    assert 0.5 < valid.mean() < 1.0
    assert np.isfinite(d).all()


def test_bad_coefficients_are_one_line():
    with pytest.raises(BlendtruthError, match="finite"):
        OpenCV(INTR, (np.nan, 0.0))
    with pytest.raises(BlendtruthError, match="out of range"):
        OpenCV(INTR, (1e6, 0.0))
    with pytest.raises(BlendtruthError, match="at most 4"):
        OpenCVFisheye(INTR, (0.1, 0.0, 0.0, 0.0, 0.0))
    with pytest.raises(BlendtruthError, match="folds over"):
        OpenCV(Intrinsics(100.0, 100.0, 320.0, 240.0, 640, 480), (-1.0, 0.0))
