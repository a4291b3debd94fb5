"""Cameras for the view plans beyond a pinhole sampler: dataset rigs and the orthographic,
equirectangular and fisheye models (blendtruth.scenes.rigs, blendtruth.geometry.projection)."""

from __future__ import annotations

import dataclasses

import numpy as np

from blendtruth.errors import BlendtruthError
from blendtruth.geometry.camera import Intrinsics
from blendtruth.scene import SceneInfo
from blendtruth.scenes.samplers import sample_cameras
from blendtruth.settings import RenderSettings
from blendtruth.view import Camera


def rig_cameras(plan, info: SceneInfo, settings: RenderSettings, seed: int) -> list[Camera]:
    from blendtruth.scenes.rigs import make_rig, place_rig, rig_intrinsics, rig_scale

    rig = make_rig(plan.rig, seed, plan.rig_views)
    scale = rig_scale(rig, info.radius, info.extent)
    if rig.projection == "orthographic":
        w, h = settings.width, settings.height
        f = max(w, h) / (rig.ortho_scale * scale)
        ortho = Intrinsics(f, f, w / 2, h / 2, w, h)
        cameras = place_rig(rig, ortho, info.center, scale)
        return [dataclasses.replace(c, model="ortho") for c in cameras]
    intr = rig_intrinsics(rig, settings.width, settings.height)
    return place_rig(rig, intr, info.center, scale)


def check_model_options(plan) -> None:
    from blendtruth.geometry.projection import CAMERA_MODELS

    if plan.camera_model not in CAMERA_MODELS:
        raise BlendtruthError(
            f"--camera must be one of {', '.join(CAMERA_MODELS)}; got {plan.camera_model!r}"
        )
    scale = plan.ortho_scale
    if scale is not None and not (np.isfinite(scale) and scale > 0):
        raise BlendtruthError(f"--ortho-scale must be a number > 0, got {plan.ortho_scale}")
    if not (np.isfinite(plan.fisheye_fov) and 0 < plan.fisheye_fov <= 360):
        raise BlendtruthError(f"--fisheye-fov must be in (0, 360] degrees, got {plan.fisheye_fov}")
    if plan.camera_model != "pinhole" and (plan.K is not None or plan.rig is not None):
        raise BlendtruthError(f"--camera {plan.camera_model} excludes --K and --rig")
    if plan.camera_model != "pinhole" and plan.pairs != "none":
        raise BlendtruthError(
            f"--pairs: flow and covisibility are computed for pinhole cameras only; "
            f"--camera {plan.camera_model} views are refused rather than given pinhole flow"
        )
    if plan.camera_model != "pinhole" and plan.camera_file is not None:
        raise BlendtruthError(
            f"--camera {plan.camera_model} and --cameras exclude each other (a cameras.json "
            "brings each camera's model)"
        )


def model_cameras(plan, info: SceneInfo, settings: RenderSettings, seed: int) -> list[Camera]:
    """Sampler placement for the non-pinhole models. Distance: --radius, else 2.5 ×
    the bounding radius (outside the object: an orthographic camera plane must not cut
    it)."""
    from blendtruth.geometry.projection import model_intrinsics

    w, h = settings.width, settings.height
    if plan.camera_model == "ortho":
        extent = plan.ortho_scale
        if extent is None:  # the bounding sphere fills --fill of the smaller side
            extent = 2 * info.radius / plan.fill * max(w, h) / min(w, h)
        f = max(w, h) / extent
        intr = Intrinsics(f, f, w / 2, h / 2, w, h)
    else:
        intr = model_intrinsics(plan.camera_model, w, h, plan.fisheye_fov)
    cameras = sample_cameras(
        plan.sampler,
        plan.views,
        Intrinsics.from_fov(plan.fov_deg, w, h),
        center=tuple(info.center),
        radius=plan.radius or 2.5 * info.radius,
        elevation_deg=plan.elevation_deg,
        seed=seed,
    )
    fov = plan.fisheye_fov if plan.camera_model == "fisheye" else None
    return [Camera(intr, c.cam_to_world, plan.camera_model, fov) for c in cameras]
