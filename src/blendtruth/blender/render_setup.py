"""Blender render settings for the two kinds of render a view needs (see
:mod:`blendtruth.blender.backend`): the 1-sample ground-truth render and the RGB render."""

from __future__ import annotations

from blendtruth.blender import compat, placement
from blendtruth.blender._bpy import bpy
from blendtruth.settings import RenderSettings

GROUND_TRUTH_FILTER_PX = 0.01


def common_setup(bscene, settings: RenderSettings) -> None:
    render = bscene.render
    render.threads_mode = "AUTO" if settings.threads == 0 else "FIXED"
    if settings.threads:
        render.threads = settings.threads
    render.use_motion_blur = False
    render.use_persistent_data = True
    view_layer = bpy.context.view_layer
    view_layer.use_pass_z = True
    view_layer.use_pass_normal = True
    view_layer.use_pass_environment = True
    compat.set_exr_multilayer(render.image_settings)
    view = bscene.view_settings
    view.view_transform = "Standard"
    view.look = "None"
    view.exposure = 0.0
    view.gamma = 1.0


def ground_truth_setup(bscene) -> None:
    placement.set_ground_visibility(truth_pass=True)
    bscene.render.engine = "CYCLES"
    bscene.render.film_transparent = True
    cycles = bscene.cycles
    cycles.samples = 1
    cycles.use_adaptive_sampling = False
    cycles.use_denoising = False
    cycles.max_bounces = 0
    cycles.filter_width = GROUND_TRUTH_FILTER_PX
    cycles.seed = 0
    cycles.use_animated_seed = False


def rgb_setup(bscene, settings: RenderSettings, transparent: bool = False) -> None:
    placement.set_ground_visibility(truth_pass=False)
    bscene.render.engine = compat.ENGINES[settings.engine]
    cycles = bscene.cycles
    cycles.filter_width = 1.5
    if settings.engine == "cycles":
        bscene.render.film_transparent = True
        cycles.samples = settings.samples
        cycles.use_adaptive_sampling = False
        cycles.use_denoising = settings.denoise
        if settings.denoise:
            cycles.denoiser = "OPENIMAGEDENOISE"
        cycles.max_bounces = 12
        cycles.seed = settings.seed
    else:
        bscene.render.film_transparent = transparent
        if settings.engine == "eevee":
            bscene.eevee.taa_render_samples = settings.samples


def rgb_meta(settings: RenderSettings) -> dict:
    return {
        "engine": compat.ENGINES[settings.engine],
        "samples": settings.samples,
        "denoise": settings.denoise,
        "seed": settings.seed,
        "view_transform": "Standard",
    }
