"""Blender/Cycles behind the backend-neutral interface: one camera in, one View out.

Two renders per view, because anti-aliasing and ground truth want opposite things:
- ground truth: Cycles, 1 sample, pixel filter 0.01 px wide, so the one camera ray goes
  through the pixel centre. Depth and normals are then exact, with no "flying" pixels mixed
  from foreground and background at silhouettes;
- RGB: the requested engine and samples with the usual 1.5 px filter, on a transparent film
  plus Cycles' Environment pass, so coverage (alpha) is known and the composite
  ``combined + environment`` equals Blender's own opaque image.
Passes come back through a multilayer EXR in a private temporary folder (Blender skips
Viewer nodes in background mode, so the tutorial's compositor read-out returns zeros).
"""

from __future__ import annotations

import atexit
import itertools
import os
import shutil
import tempfile
from pathlib import Path

import numpy as np

from blendtruth import amodal
from blendtruth.backend import Rendered, check_size, finish_view, source_passes
from blendtruth.blender import (
    compat,
    device,
    exr,
    ids,
    lighting,
    placement,
    scene,
    truth_materials,
    truth_passes,
)
from blendtruth.blender._bpy import bpy
from blendtruth.blender.render_setup import (
    GROUND_TRUTH_FILTER_PX,
    common_setup,
    ground_truth_setup,
    rgb_meta,
    rgb_setup,
)
from blendtruth.color import linear_to_srgb8
from blendtruth.errors import BlendtruthError
from blendtruth.geometry.rays import depth_to_distance, normals_to_camera, unit_vectors
from blendtruth.raycast.scene import TriangleScene
from blendtruth.runtime.processes import pid_alive
from blendtruth.scene import SceneInfo, SceneSpec
from blendtruth.scenes.lights import composite_background, parse_background, rotation_for_view
from blendtruth.settings import RenderSettings
from blendtruth.view import Camera, View

# Cycles writes this depth where a pixel-centre ray hits nothing.
_BACKGROUND_DEPTH = 1e9


class BlenderBackend:
    """Renders the scene loaded in this process's Blender."""

    def __init__(self) -> None:
        _remove_orphaned_temp_dirs()
        self._tmp = Path(tempfile.mkdtemp(prefix=f"{_TMP_PREFIX}{os.getpid()}-"))
        atexit.register(self.close)
        self._counter = itertools.count()
        self._device: tuple[str, str] | None = None
        self._info: SceneInfo | None = None
        self._spec: SceneSpec | None = None
        self._default_cameras: dict[tuple[int, int], Camera] = {}
        self._perturbed: list[str] | None = None
        self._see_through: list[str] | None = None

    @property
    def info(self) -> SceneInfo:
        if self._info is None:
            raise BlendtruthError("no scene loaded")
        return self._info

    def close(self) -> None:
        """Remove the private temporary folder (also done at interpreter exit)."""
        shutil.rmtree(self._tmp, ignore_errors=True)

    def load_scene(self, spec: SceneSpec) -> SceneInfo:
        """Replace whatever is loaded with ``spec``; return its bounds and transform."""
        self._info = scene.build_scene(spec)
        truth_passes.inject_aovs(ids.renderable_meshes())
        truth_passes.register_aovs(bpy.context.view_layer)
        truth_materials.install()
        self._spec = spec
        self._perturbed: list[str] | None = None
        self._see_through: list[str] | None = None
        self._device = None
        self._default_cameras: dict[tuple[int, int], Camera] = {}
        return self._info

    def set_frame(self, frame: int) -> None:
        """Move the scene to ``frame`` (Blender evaluates its animation)."""
        bpy.context.scene.frame_set(int(frame))

    def triangles(self) -> TriangleScene:
        """The world triangles of the loaded scene, as Blender triangulated them."""
        from blendtruth.blender.triangles import extract_triangles

        return extract_triangles()

    def default_camera(self, settings: RenderSettings) -> Camera:
        # The scene's own camera as loaded: rendering moves Blender's camera object (and
        # rounds its pose to float32), so it is read once per scene and size.
        key = (settings.width, settings.height)
        if key not in self._default_cameras:
            self._default_cameras[key] = scene.scene_camera(*key)
        return self._default_cameras[key]

    def render(self, camera: Camera, settings: RenderSettings) -> View:
        check_size(camera, settings)
        return finish_view(self.render_raw(camera, settings), camera, settings, self.info,
                           self._spec)  # fmt: skip

    def render_raw(self, camera: Camera, settings: RenderSettings) -> Rendered:
        """Ground truth from Cycles' 1-sample renders (the sources of derived passes
        included), RGB when ``settings.rgb``, and this backend's meta."""
        sources = source_passes(settings.passes)
        bscene = bpy.context.scene
        info = self.info
        scene.apply_camera(camera, clip=info.clip_range(camera.cam_to_world[:3, 3]))
        lighting.follow_camera(camera.cam_to_world)
        light_meta = self._lighting_for_view(camera, settings)
        used_device = self._select_device(settings.device)
        common_setup(bscene, settings)
        truth_passes.enable_passes(bpy.context.view_layer, sources)
        bpy.context.view_layer.pass_alpha_threshold = settings.alpha_threshold

        truth_materials.for_ground_truth(settings.alpha_threshold)
        channels = self._render_passes(ground_truth_setup)
        depth = channels["Depth.Z"]
        mask = depth < _BACKGROUND_DEPTH
        depth = np.where(mask, depth, 0.0).astype(np.float32)
        normal_world = exr.stack(channels, "Normal", "XYZ").astype(np.float64)
        normal = normals_to_camera(normal_world, camera.cam_to_world)
        normal = unit_vectors(np.where(mask[..., None], normal, 0.0)).astype(np.float32)
        if camera.model == "pinhole":
            distance = depth_to_distance(depth, camera.intrinsics).astype(np.float32)
        else:  # ortho: along the parallel ray = depth; panoramic: Cycles' Z is the distance
            distance = depth.copy()
        extra = truth_passes.extract(channels, sources, mask, info.table)
        if self._perturbed is None:
            self._perturbed = truth_passes.perturbed_normals()
            self._see_through = truth_passes.non_opaque_materials()
        normal_bump = normal
        normal = truth_passes.camera_normals(
            exr.stack(channels, truth_passes.AOV_SHADING, "RGB"), camera, mask
        )
        if "normal_geometric" in settings.passes:
            extra["normal_geometric"] = truth_passes.camera_normals(
                exr.stack(channels, truth_passes.AOV_GEOMETRIC, "RGB"), camera, mask, True
            )
        if "normal_bump" in settings.passes:
            extra["normal_bump"] = normal_bump.copy()
        if "transparent" in settings.passes:
            extra["transparent"] = self._transparent(mask, settings)
        amodal_meta = None
        if settings.amodal:
            ids_, masks = self._amodal_masks()
            extra["amodal_ids"], extra["amodal"] = ids_, amodal.pack(masks)
            amodal_meta = amodal.summary(ids_, masks, extra.get("instance"))

        rgb = alpha = None
        truth_materials.for_rgb()
        if settings.rgb:
            rgb, alpha = self._render_rgb(settings)

        meta = {
            "blender_version": compat.VERSION_STRING,
            "ground_truth": {
                "engine": "CYCLES",
                "samples": 1,
                "filter_width_px": GROUND_TRUTH_FILTER_PX,
                "note": "one ray through each pixel centre; depth and normal are not blended",
                "passes": list(settings.passes),
                "normal": (
                    "shading normal without bump/normal maps (materials perturbing it: "
                    f"{', '.join(self._perturbed) or 'none'}; with them: normal_bump)"
                ),
                "transparency": {
                    "alpha_threshold": settings.alpha_threshold,
                    "policy": (
                        "a surface whose material alpha at the hit is below alpha_threshold "
                        "is skipped by every ground-truth pass (the ray goes on); other "
                        "surfaces, glass and transmissive ones included, count as hits. "
                        "'transparent' flags pixels whose first surface is see-through"
                    ),
                    "alpha": (
                        "stepped at alpha_threshold (1 at or above, else 0) in the "
                        "ground-truth renders, so every pixel's hit is deterministic; the RGB "
                        "render keeps the materials' own alpha"
                    ),
                    "see_through_materials": self._see_through,
                },
            },
            "rgb": None if rgb is None else rgb_meta(settings),
            "amodal": amodal_meta,
            "device": used_device,
            "lighting": light_meta,
        }
        meta["ground_truth"].update(backend="cycles", requested=settings.truth,
                                    fallback_reason=None)  # fmt: skip
        return Rendered(depth, distance, normal, mask, rgb, alpha, extra, meta)

    def _amodal_masks(self) -> tuple[np.ndarray, np.ndarray]:
        """Each instance's full silhouette: one 1-sample render per instance with every
        other object hidden from camera rays. Returns (ids int32 N, masks bool N×H×W)."""
        objects = {o.pass_index: o for o in ids.renderable_meshes()}
        view_layer = bpy.context.view_layer
        kept = (
            view_layer.use_pass_object_index,
            view_layer.use_pass_material_index,
            view_layer.use_pass_position,
            view_layer.use_pass_uv,
            view_layer.use_pass_diffuse_color,
        )
        truth_passes.enable_passes(view_layer, ("instance",))
        order = sorted(objects)
        masks = []
        try:
            for inst in order:

                def alone(bscene, inst=inst):
                    ground_truth_setup(bscene)  # after it: it sets the ground's visibility
                    for other, obj in objects.items():
                        obj.visible_camera = other == inst

                channels = self._render_passes(alone)
                hit = channels["Depth.Z"] < _BACKGROUND_DEPTH
                # By id: a ground plane kept in the ground truth is not hidden here.
                masks.append(hit & (np.rint(channels[f"{compat.OBJECT_INDEX_PASS}.X"]) == inst))
        finally:
            for obj in objects.values():
                obj.visible_camera = True
            placement.set_ground_visibility(truth_pass=False)
            (
                view_layer.use_pass_object_index,
                view_layer.use_pass_material_index,
                view_layer.use_pass_position,
                view_layer.use_pass_uv,
                view_layer.use_pass_diffuse_color,
            ) = kept
        return np.array(order, dtype=np.int32), np.array(masks, dtype=bool)

    def _transparent(self, mask: np.ndarray, settings: RenderSettings) -> np.ndarray:
        """Where the first surface along the ray is not opaque: one more 1-sample render
        that counts every surface (alpha threshold 0), only if any material is see-through."""
        if self._see_through is None:
            self._see_through = truth_passes.non_opaque_materials()
        if not self._see_through:
            return np.zeros_like(mask)
        view_layer = bpy.context.view_layer
        kept = view_layer.pass_alpha_threshold
        view_layer.pass_alpha_threshold = 0.0
        truth_materials.for_ground_truth(0.0)
        try:
            first = self._render_passes(ground_truth_setup)
        finally:
            view_layer.pass_alpha_threshold = kept
            truth_materials.for_ground_truth(settings.alpha_threshold)
        hit = first["Depth.Z"] < _BACKGROUND_DEPTH
        material = np.where(hit, np.rint(first[f"{compat.MATERIAL_INDEX_PASS}.X"]), 0).astype(
            np.int32
        )
        flag = truth_passes.transparent_flag(material, self.info.table, self._see_through)
        return flag & mask  # like every pass, background (False) where nothing is hit

    def rgb(self, camera: Camera, settings: RenderSettings) -> tuple:
        """The view's RGB render alone (for a backend that makes ground truth otherwise):
        (rgb or None, alpha or None, meta: blender_version, rgb, device, lighting)."""
        rgb = alpha = None
        used_device = self._select_device(settings.device)  # for RGB; Embree uses the CPU
        light_meta = self._lighting_for_view(camera, settings)
        if settings.rgb:  # as in render_raw(), without the ground-truth render
            scene.apply_camera(camera, clip=self.info.clip_range(camera.cam_to_world[:3, 3]))
            lighting.follow_camera(camera.cam_to_world)
            common_setup(bpy.context.scene, settings)
            truth_passes.enable_passes(bpy.context.view_layer, ())
            truth_materials.for_rgb()
            rgb, alpha = self._render_rgb(settings)
        meta = {
            "blender_version": compat.VERSION_STRING,
            "rgb": None if rgb is None else rgb_meta(settings),
            "device": used_device,
            "lighting": light_meta,
        }
        return rgb, alpha, meta

    def _select_device(self, request: str) -> str:
        if self._device is None or self._device[0] != request:
            self._device = (request, device.select_device(request))
        return self._device[1]

    def _render_passes(self, configure) -> dict[str, np.ndarray]:
        bscene = bpy.context.scene
        configure(bscene)
        self._tmp.mkdir(exist_ok=True)  # again after close(): a closed backend may be reused
        path = self._tmp / f"pass_{next(self._counter)}.exr"
        try:
            with compat.quiet_stdout():
                bpy.ops.render.render(write_still=False)
            with compat.square_pixels_for_saving(bscene.render):
                bpy.data.images["Render Result"].save_render(str(path), scene=bscene)
            if not path.exists():
                raise BlendtruthError("Blender rendered but wrote no image (see its log above)")
            return exr.read_channels(path)
        finally:
            path.unlink(missing_ok=True)

    def _lighting_for_view(self, camera: Camera, settings: RenderSettings) -> dict:
        spec = self._spec or SceneSpec()
        meta = {"light": spec.light, "background": spec.background}
        if spec.light.startswith("hdri"):
            names = [p.name for p in spec.models] + [p.model.name for p in spec.placements]
            key = ",".join(names + [spec.primitive or ""])
            angle = rotation_for_view(spec.hdri_rotation, settings.seed, key, camera.cam_to_world)
            lighting.set_hdri_rotation(angle)
            meta.update(
                hdri=lighting.hdri_label(spec.light, spec.hdri),
                hdri_strength=spec.hdri_strength,
                hdri_rotation_mode=spec.hdri_rotation
                if isinstance(spec.hdri_rotation, str)
                else "fixed",
                hdri_rotation_deg=angle,
            )
        return meta

    def _render_rgb(self, settings: RenderSettings) -> tuple[np.ndarray, np.ndarray | None]:
        background = parse_background((self._spec or SceneSpec()).background)
        if background not in ("world", "hdri"):
            channels = self._render_passes(lambda s: rgb_setup(s, settings, transparent=True))
            rgba = exr.stack(channels, "Combined", "RGBA")
            linear, alpha = composite_background(rgba, None, background)
            return linear_to_srgb8(linear), alpha
        channels = self._render_passes(lambda s: rgb_setup(s, settings))
        rgba = exr.stack(channels, "Combined", "RGBA")
        if settings.engine == "cycles":
            linear = rgba[..., :3] + exr.stack(channels, compat.ENVIRONMENT_PASS, "RGB")
            alpha = rgba[..., 3].astype(np.float32)
        else:
            linear, alpha = rgba[..., :3], None
        return linear_to_srgb8(linear), alpha


_TMP_PREFIX = "blendtruth-"


def _remove_orphaned_temp_dirs() -> None:
    """Remove temp folders of blendtruth processes that died without cleaning up (a
    worker killed for a timeout cannot run its atexit handler)."""
    for path in Path(tempfile.gettempdir()).glob(f"{_TMP_PREFIX}*-*"):
        pid = path.name[len(_TMP_PREFIX) :].split("-", 1)[0]
        if pid.isdigit() and not pid_alive(int(pid)):
            shutil.rmtree(path, ignore_errors=True)
