"""The ray caster as a :class:`~blendtruth.backend.Backend` (no bpy here).

:class:`RaycastBackend` casts one ray per pixel centre at a :class:`TriangleScene` and
makes every ray-castable pass; what the scene is and how RGB is made come from a subclass:
:class:`blendtruth.blender.raycast_backend.BlenderRaycastBackend` (Blender's evaluated
triangles, Cycles RGB) or :class:`blendtruth.testing.FakeBackend` (analytic triangles).
"""

from __future__ import annotations

import time

import numpy as np

from blendtruth import amodal
from blendtruth.backend import Rendered, check_size, finish_view, source_passes
from blendtruth.errors import BlendtruthError
from blendtruth.passes import PASSES
from blendtruth.raycast.cast import CAST_PASSES, RayCaster
from blendtruth.raycast.scene import TriangleScene
from blendtruth.scene import SceneInfo, SceneSpec
from blendtruth.settings import RenderSettings
from blendtruth.view import Camera, View

NOTE = ("one ray through each pixel centre against the scene's triangles (hit triangle "
        "rasterised in float64 or cast by Embree, hit refined in float64); depth and normal "
        "are not blended")  # fmt: skip


class RaycastBackend:
    """Ground truth cast at the triangles of :meth:`load_triangles`, once per scene.

    Subclasses implement :meth:`load_scene` (setting ``self._info``/``self._spec`` and
    calling :meth:`reset`), :meth:`load_triangles` and :meth:`default_camera`; they may
    override :meth:`rgb` (None: no RGB) and :meth:`fallback` (another backend's raw render
    where the ray caster cannot match it).
    """

    def __init__(self) -> None:
        self._info: SceneInfo | None = None
        self._spec: SceneSpec | None = None
        self.reset()

    def reset(self) -> None:
        """Forget the caster of the previous scene (after loading another)."""
        self._caster: RayCaster | None = None
        self._alone: dict[int, RayCaster] = {}
        self._albedo: tuple | None = None
        self.extract_seconds = 0.0

    def albedo_shader(self) -> tuple | None:
        """(shader with ``image(material, triangle, barycentric, uv)`` and ``describe(names)``,
        material names by id) when this backend knows the scene's materials, else None (the
        pure caster has no materials: no ``albedo``)."""
        return None

    @property
    def info(self) -> SceneInfo:
        if self._info is None:
            raise BlendtruthError("no scene loaded")
        return self._info

    def load_scene(self, spec: SceneSpec) -> SceneInfo:
        raise NotImplementedError

    def default_camera(self, settings: RenderSettings) -> Camera:
        raise NotImplementedError

    def load_triangles(self) -> TriangleScene:
        """The loaded scene's world triangles (called once per scene)."""
        raise NotImplementedError

    def rgb(self, camera: Camera, settings: RenderSettings) -> tuple:
        """(rgb uint8 H×W×3 or None, alpha float32 H×W or None, meta dict) for the view."""
        return None, None, {}

    def fallback(self, camera: Camera, settings: RenderSettings) -> Rendered | None:
        """Another backend's raw render where this one cannot make the view, else None."""
        return None

    def close(self) -> None:
        self.reset()

    def triangles(self) -> TriangleScene:
        if self._caster is not None:
            return self._caster.scene
        return self.load_triangles()

    def caster(self, threads: int) -> RayCaster:
        if self._caster is None:
            start = time.perf_counter()
            self._caster = RayCaster(self.load_triangles(), threads=threads)
            self.extract_seconds = time.perf_counter() - start
        return self._caster

    def render(self, camera: Camera, settings: RenderSettings) -> View:
        check_size(camera, settings)
        rendered = self.fallback(camera, settings) or self.render_raw(camera, settings)
        return finish_view(rendered, camera, settings, self.info, self._spec)

    def render_raw(self, camera: Camera, settings: RenderSettings) -> Rendered:
        """Every pass of ``settings.passes`` a cast makes (sources of derived ones
        included), the RGB of :meth:`rgb`, and the backend's meta."""
        caster = self.caster(settings.threads)
        wanted = set(source_passes(settings.passes))
        need = set(CAST_PASSES) & (wanted | {"depth", "distance", "normal", "mask"})
        near = self.info.clip_range(camera.cam_to_world[:3, 3])[0]  # Cycles' clip_start
        shading = self.albedo_shader() if "albedo" in wanted else None
        if shading is not None:  # albedo needs each hit's triangle, barycentrics and UV
            need |= {"material", "uv"}
        out = caster.cast(camera, tuple(need), near=near, internals=shading is not None)
        if shading is not None:
            out["albedo"] = shading[0].image(
                out["material"], out["triangle"], out["barycentric"], out["uv"]
            )
        h, w = camera.height, camera.width
        if "normal_bump" in wanted:  # no material perturbs it here (else not ray cast)
            out["normal_bump"] = out["normal"].copy()
        if "transparent" in wanted:  # every surface is opaque here (else not ray cast)
            out["transparent"] = PASSES["transparent"].empty(h, w)
        passes = {n: out[n] for n in wanted if n in out}
        amodal_meta = None
        if settings.amodal:
            ids_, masks = self.amodal_masks(camera, settings.threads, near)
            passes["amodal_ids"], passes["amodal"] = ids_, amodal.pack(masks)
            amodal_meta = amodal.summary(ids_, masks, passes.get("instance"))
        rgb, alpha, meta = self.rgb(camera, settings)
        meta = {"ground_truth": self.truth_meta(caster, settings), "amodal": amodal_meta, **meta}
        if shading is not None:
            meta["ground_truth"]["albedo"] = shading[0].describe(shading[1])
        return Rendered(out["depth"], out["distance"], out["normal"], out["mask"], rgb, alpha,
                        passes, meta)  # fmt: skip

    def truth_meta(self, caster: RayCaster, settings: RenderSettings) -> dict:
        """``meta["ground_truth"]`` of a ray-cast view."""
        return {
            "backend": "raycast",
            "requested": settings.truth,
            "engine": f"{caster.hits_by}, {caster.scene.triangle_count} triangles",
            "samples": 1,
            "note": NOTE,
            "passes": list(settings.passes),
            "normal": "shading normal without bump/normal maps (interpolated corner normals)",
            "transparency": {
                "alpha_threshold": settings.alpha_threshold,
                "policy": "every surface is opaque in this scene (scenes with see-through "
                "materials get Cycles ground truth and its policy)",
                "see_through_materials": [],
            },
            "fallback_reason": None,
        }

    def amodal_masks(
        self, camera: Camera, threads: int, near: float = 0.0
    ) -> tuple[np.ndarray, np.ndarray]:
        """Each instance's full silhouette: its triangles cast alone. Returns (ids int32 N,
        masks bool N×H×W), ids ascending; ``near`` as in the main cast (Cycles' clip_start)."""
        scene = self.caster(threads).scene
        ids = np.unique(scene.instance)
        ids = ids[ids > 0]
        masks = []
        for inst in ids:
            if inst not in self._alone:
                self._alone[inst] = RayCaster(scene.select(scene.instance == inst), threads)
            masks.append(self._alone[inst].cast(camera, ("mask",), near=near)["mask"])
        return ids.astype(np.int32), np.array(masks, bool).reshape(-1, camera.height, camera.width)
