"""Distorted RGB through Cycles' Custom (OSL) camera agrees with the exact distorted ground
truth: the alpha of a 64-sample render (box filter of one pixel) against our ray cast of
the same triangles along the lens model's rays; and with zero distortion it equals
Blender's own perspective camera with the same K."""

from __future__ import annotations

import numpy as np
import pytest

pytestmark = pytest.mark.render
bpy = pytest.importorskip("bpy")

import cv2  # noqa: E402

from blendtruth.blender.osl_camera import apply_lens_camera  # noqa: E402
from blendtruth.blender.scene import place_camera_object  # noqa: E402
from blendtruth.blender.triangles import extract_triangles  # noqa: E402
from blendtruth.geometry.camera import Intrinsics  # noqa: E402
from blendtruth.geometry.frames import look_at  # noqa: E402
from blendtruth.geometry.lens_distortion import OpenCV, OpenCVFisheye  # noqa: E402
from blendtruth.raycast.cast import RayCaster  # noqa: E402
from blendtruth.view import Camera  # noqa: E402

W, H = 96, 72
POSE = look_at((0.5, -4.0, 1.5), (0.3, 0.0, 0.2))


def _scene():
    bpy.ops.wm.read_factory_settings(use_empty=False)
    bpy.data.objects.remove(bpy.data.objects["Cube"])
    bpy.ops.mesh.primitive_monkey_add(size=2.0, rotation=(0.3, 0.2, 0.9))
    bpy.ops.mesh.primitive_cube_add(size=0.6, location=(1.6, 0.4, 0.9))
    sc = bpy.context.scene
    sc.render.engine = "CYCLES"
    sc.cycles.samples, sc.cycles.device = 64, "CPU"
    sc.render.film_transparent = True
    sc.cycles.pixel_filter_type, sc.cycles.filter_width = "BOX", 1.0
    place_camera_object(sc.camera, POSE)
    return sc


def _alpha(sc, path) -> np.ndarray:
    sc.render.filepath = str(path)
    bpy.ops.render.render(write_still=True)
    return cv2.imread(str(path), cv2.IMREAD_UNCHANGED)[..., 3].astype(float) / 255


def _lens_camera(model) -> Camera:
    # A Camera carrying a lens model (until Camera takes distortion itself).
    camera = Camera(model.intrinsics, POSE)
    object.__setattr__(camera, "model", model.name)
    object.__setattr__(camera, "_projection", model)
    return camera


@pytest.mark.parametrize(
    "model",
    [
        OpenCV(Intrinsics(70, 72, 47.3, 36.6, W, H), (-0.3, 0.12, 0.002, -0.001, -0.02)),
        OpenCVFisheye(Intrinsics(40, 41, 48.2, 35.7, W, H), (0.05, -0.01, 0.002, -0.0005)),
    ],
    ids=["opencv", "opencv-fisheye"],
)
def test_distorted_rgb_silhouettes_equal_the_distorted_ground_truth(tmp_path, model):
    sc = _scene()
    apply_lens_camera(sc.camera, model)
    alpha = _alpha(sc, tmp_path / "rgb.png")
    mask = RayCaster(extract_triangles()).cast(_lens_camera(model), ("depth", "mask"))["mask"]
    hard = (alpha > 0.99) | (alpha < 0.01)  # not a silhouette pixel
    assert mask.sum() > 200
    assert ((alpha[hard] > 0.5) != mask[hard]).sum() == 0
    # At silhouettes the coverage straddles 0.5 where the centre ray does (measured <= 4).
    assert ((alpha > 0.5) != mask).sum() <= 0.01 * mask.sum()


def test_zero_distortion_equals_blenders_perspective_camera(tmp_path):
    from blendtruth.blender.scene import apply_camera

    sc = _scene()
    intr = Intrinsics(70.0, 72.0, 47.3, 36.6, W, H)
    apply_camera(Camera(intr, POSE))
    persp = _alpha(sc, tmp_path / "persp.png")
    apply_lens_camera(sc.camera, OpenCV(intr, ()))
    lens = _alpha(sc, tmp_path / "lens.png")
    assert np.abs(persp - lens).max() <= 2 / 255
