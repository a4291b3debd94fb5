"""Blender cameras for the models beyond pinhole (blendtruth.geometry.projection): orthographic,
equirectangular and equidistant fisheye panoramas (Cycles' own panoramic cameras)."""

from __future__ import annotations

import math

from blendtruth.blender._bpy import bpy
from blendtruth.errors import BlendtruthError
from blendtruth.geometry.frames import opencv_to_opengl
from blendtruth.view import Camera


def _ortho(data, camera: Camera) -> None:
    intr, w, h = camera.intrinsics, camera.width, camera.height
    data.type = "ORTHO"
    data.sensor_fit = "HORIZONTAL"
    data.ortho_scale = w / intr.fx  # view width in scene units
    data.shift_x = (w / 2 - intr.cx) / w  # in units of the width, as for pinhole
    data.shift_y = (intr.cy - h / 2) / w


def _equirect(data, camera: Camera) -> None:
    data.type = "PANO"
    data.sensor_fit = "AUTO"
    data.panorama_type = "EQUIRECTANGULAR"
    data.latitude_min, data.latitude_max = -math.pi / 2, math.pi / 2
    data.longitude_min, data.longitude_max = -math.pi, math.pi


def _fisheye(data, camera: Camera) -> None:
    data.type = "PANO"
    data.sensor_fit = "AUTO"
    data.panorama_type = "FISHEYE_EQUIDISTANT"
    data.fisheye_fov = math.radians(camera.fisheye_fov_deg)


# The Blender camera of each model beyond pinhole (blender/scene.py sets pinhole); a model
# missing here (e.g. a distorted lens) is refused rather than rendered as another one.
_SETUP = {"ortho": _ortho, "equirect": _equirect, "fisheye": _fisheye}


def apply_model_camera(obj, camera: Camera, clip: tuple[float, float] | None) -> None:
    """Make ``obj`` (the scene camera) render ``camera``: its model, resolution, pose."""
    setup = _SETUP.get(camera.model)
    if setup is None:
        raise BlendtruthError(f"Cycles cannot render the {camera.model} camera model")
    intr, data = camera.intrinsics, obj.data
    w, h = intr.width, intr.height
    data.shift_x = data.shift_y = 0.0
    data.dof.use_dof = False
    setup(data, camera)
    if clip is not None:
        data.clip_start, data.clip_end = clip
    render = bpy.context.scene.render
    render.resolution_x, render.resolution_y = w, h
    render.resolution_percentage = 100
    render.pixel_aspect_x = render.pixel_aspect_y = 1.0
    render.use_border = False
    place_camera_object(obj, camera.cam_to_world)
    if camera.model == "ortho":
        err = abs(data.ortho_scale - w / intr.fx) / (w / intr.fx)
        if err > 1e-6:
            raise BlendtruthError(
                f"orthographic view width {w / intr.fx:g} cannot be held by Blender "
                f"(relative error {err:.2g})"
            )


def place_camera_object(obj, cam_to_world) -> None:
    """Put the camera object exactly at ``cam_to_world`` (4×4, OpenCV axes): no parent,
    constraints or animation may move it."""
    obj.parent = None
    obj.constraints.clear()
    obj.animation_data_clear()
    obj.matrix_world = opencv_to_opengl(cam_to_world).T.tolist()
    bpy.context.view_layer.update()
