"""A calibration closes the loop on distorted RGB: a chessboard rendered through the OSL lens
camera at a dozen poses, its corners found by OpenCV and fed to cv2.calibrateCamera /
cv2.fisheye.calibrate, gives back our K (in OpenCV's pixel convention) and coefficients."""

from __future__ import annotations

import numpy as np
import pytest

pytestmark = [pytest.mark.render, pytest.mark.slow]
bpy = pytest.importorskip("bpy")

import cv2  # noqa: E402

from blendtruth.blender.osl_camera import apply_lens_camera  # noqa: E402
from blendtruth.blender.scene import place_camera_object  # noqa: E402
from blendtruth.geometry.camera import Intrinsics  # noqa: E402
from blendtruth.geometry.frames import look_at  # noqa: E402
from blendtruth.geometry.lens_distortion import OpenCV, OpenCVFisheye  # noqa: E402

W, H = 320, 240
SQUARES = (10, 8)  # squares along x, y: 9 × 7 inner corners
SIZE = 0.1  # metres per square
PX = 64  # texture pixels per square


def _board(tmp_path):
    cols, rows = SQUARES
    tile = (np.indices((rows * PX, cols * PX)) // PX).sum(axis=0) % 2
    image = np.where(tile[..., None] == 0, 255, 0).astype(np.uint8).repeat(3, axis=2)
    image = np.pad(image, ((PX, PX), (PX, PX), (0, 0)), constant_values=255)  # white margin
    path = tmp_path / "board.png"
    cv2.imwrite(str(path), image)
    bpy.ops.wm.read_factory_settings(use_empty=True)
    w, h = (cols + 2) * SIZE, (rows + 2) * SIZE
    bpy.ops.mesh.primitive_plane_add(size=1.0)
    plane = bpy.context.object
    plane.scale = (w, h, 1.0)
    # The texture's top-left corner at (-w/2, +h/2): image rows run along −y.
    mat = bpy.data.materials.new("board")
    mat.use_nodes = True
    nodes, links = mat.node_tree.nodes, mat.node_tree.links
    nodes.clear()
    tex = nodes.new("ShaderNodeTexImage")
    tex.image = bpy.data.images.load(str(path))
    emit = nodes.new("ShaderNodeEmission")
    out = nodes.new("ShaderNodeOutputMaterial")
    links.new(tex.outputs["Color"], emit.inputs["Color"])
    links.new(emit.outputs["Emission"], out.inputs["Surface"])
    plane.data.materials.append(mat)
    cam = bpy.data.objects.new("cam", bpy.data.cameras.new("cam"))
    bpy.context.scene.collection.objects.link(cam)
    sc = bpy.context.scene
    sc.camera = cam
    sc.render.engine = "CYCLES"
    sc.cycles.samples, sc.cycles.device = 16, "CPU"
    sc.cycles.pixel_filter_type, sc.cycles.filter_width = "BOX", 1.0
    sc.view_settings.view_transform = "Standard"
    # Inner corner (i, j), i along x, j along rows: world (x, y, 0).
    i, j = np.meshgrid(np.arange(1, cols), np.arange(1, rows))
    corners = np.column_stack([(i.ravel() - cols / 2) * SIZE, (rows / 2 - j.ravel()) * SIZE,
                               np.zeros(i.size)])  # fmt: skip
    return sc, cam, corners.astype(np.float32)


def _views(tmp_path, model):
    sc, cam, corners = _board(tmp_path)
    apply_lens_camera(cam, model)
    rng = np.random.default_rng(7)
    found_img, found_obj = [], []
    for k in range(12):
        eye = np.array([rng.uniform(-0.6, 0.6), rng.uniform(-0.5, 0.5), rng.uniform(1.5, 1.9)])
        target = np.array([rng.uniform(-0.08, 0.08), rng.uniform(-0.06, 0.06), 0.0])
        place_camera_object(cam, look_at(eye, target, up=(0.0, 1.0, 0.0)))
        sc.render.filepath = str(tmp_path / f"v{k}.png")
        bpy.ops.render.render(write_still=True)
        grey = cv2.cvtColor(cv2.imread(sc.render.filepath), cv2.COLOR_BGR2GRAY)
        ok, pts = cv2.findChessboardCorners(grey, (SQUARES[0] - 1, SQUARES[1] - 1))
        if not ok:
            continue
        crit = (cv2.TERM_CRITERIA_EPS + cv2.TERM_CRITERIA_MAX_ITER, 100, 1e-4)
        pts = cv2.cornerSubPix(grey, pts, (5, 5), (-1, -1), crit)
        # OpenCV orders the corners row by row; match the first to the nearer projection.
        found_img.append(pts.reshape(-1, 2))
        found_obj.append(corners)
    assert len(found_img) >= 10, len(found_img)
    return found_obj, found_img


def _orient(obj, img):
    """OpenCV may list the corners from either end; a homography picks the order."""
    out = []
    for o, p in zip(obj, img, strict=True):
        h, _ = cv2.findHomography(o[:, :2], p)
        back = cv2.perspectiveTransform(o[None, :, :2], h)[0]
        flipped = p[::-1]
        h2, _ = cv2.findHomography(o[:, :2], flipped)
        back2 = cv2.perspectiveTransform(o[None, :, :2], h2)[0]
        better = np.abs(back2 - flipped).mean() < np.abs(back - p).mean()
        out.append(flipped if better else p)
    return out


def test_calibrate_camera_recovers_opencv_lens(tmp_path):
    intr = Intrinsics(300.0, 305.0, 160.5, 120.3, W, H)
    coeffs = (-0.22, 0.06, 0.0012, -0.0008)  # k3 = 0: with it free, k2 and k3 trade off
    obj, img = _views(tmp_path, OpenCV(intr, coeffs))
    rms, k, dist, _, _ = cv2.calibrateCamera(obj, _orient(obj, img), (W, H), None, None,
                                             flags=cv2.CALIB_FIX_K3)  # fmt: skip
    assert rms < 0.1, rms
    np.testing.assert_allclose(k[[0, 1, 0, 1], [0, 1, 2, 2]],
                               [300.0, 305.0, 160.0, 119.8], atol=0.5)  # fmt: skip
    err = np.abs(dist.ravel()[:4] - np.array(coeffs[:4]))
    assert (err <= [0.01, 0.03, 5e-4, 5e-4]).all(), dist.ravel()


def test_fisheye_calibrate_recovers_opencv_fisheye_lens(tmp_path):
    intr = Intrinsics(200.0, 202.0, 160.2, 119.7, W, H)
    coeffs = (0.04, -0.01, 0.002, -0.0005)
    obj, img = _views(tmp_path, OpenCVFisheye(intr, coeffs))
    img = _orient(obj, img)
    rms, k, dist, _, _ = cv2.fisheye.calibrate(
        [o.reshape(-1, 1, 3).astype(np.float64) for o in obj],
        [p.reshape(-1, 1, 2).astype(np.float64) for p in img],
        (W, H), None, None,
        flags=cv2.fisheye.CALIB_RECOMPUTE_EXTRINSIC | cv2.fisheye.CALIB_FIX_SKEW,
    )  # fmt: skip
    assert rms < 0.1, rms
    np.testing.assert_allclose(k[[0, 1, 0, 1], [0, 1, 2, 2]],
                               [200.0, 202.0, 159.7, 119.2], atol=0.5)  # fmt: skip
    # k1..k4 trade off against each other over a limited field; what a calibration pins
    # down is the map θ -> θ_d over the angles seen: within half a pixel of ours there.
    seen = max(np.hypot((p[:, 0] - 159.7) / 200.0, (p[:, 1] - 119.2) / 202.0).max() for p in img)
    theta = np.linspace(0.0, seen, 200)  # θ_d ≈ θ here: the angles the corners cover

    def theta_d(t, k):
        return t * (1 + k[0] * t**2 + k[1] * t**4 + k[2] * t**6 + k[3] * t**8)

    err = 200.0 * np.abs(theta_d(theta, dist.ravel()) - theta_d(theta, coeffs))
    assert err.max() <= 0.5, (err.max(), dist.ravel())
