"""Ground truth by ray casting Blender's evaluated triangles (``--truth raycast``).

Per loaded scene the triangles are read once (:mod:`blendtruth.blender.triangles`) and an
Embree scene is built once; each view is one cast (:mod:`blendtruth.raycast.cast`). Where
the ray caster cannot match Cycles (:mod:`blendtruth.blender.fallback`) the scene's ground
truth comes from Cycles instead, said once as a warning and in every view's ``meta``.
"""

from __future__ import annotations

import time
import warnings

import numpy as np

from blendtruth.errors import BlendtruthWarning
from blendtruth.geometry.correspondence import occlusion_boundary
from blendtruth.passes import PASSES
from blendtruth.raycast.cast import CAST_PASSES, RayCaster
from blendtruth.scene import SceneInfo
from blendtruth.settings import RenderSettings
from blendtruth.view import Camera

NOTE = ("one ray through each pixel centre against Blender's evaluated triangles (hit "
        "triangle rasterised in float64 or cast by Embree, hit refined in float64); depth "
        "and normal are not blended")  # fmt: skip


class RaycastTruth:
    """The ray caster of the loaded scene, or why Cycles must make its ground truth."""

    def __init__(self) -> None:
        self._caster: RayCaster | None = None
        self._alone: dict[int, RayCaster] = {}
        self._blockers: dict[tuple[str, ...], list[str]] = {}
        self._albedo = None  # (AlbedoShader, material names by id), built on first use
        self._warned: set[str] = set()
        self.extract_seconds = 0.0

    def blockers(self, passes: tuple[str, ...]) -> list[str]:
        """Reasons the ray caster cannot make these passes for this scene (cached)."""
        if passes not in self._blockers:
            from blendtruth.blender.fallback import raycast_blockers

            self._blockers[passes] = raycast_blockers(passes)
        return self._blockers[passes]

    def usable(self, settings: RenderSettings, camera: Camera | None = None) -> bool:
        """True to ray-cast; False (after warning once per reason) to use Cycles."""
        if settings.truth != "raycast":
            return False
        reasons = self.blockers(settings.passes)
        if reasons:
            text = "; ".join(reasons)
            if text not in self._warned:
                self._warned.add(text)
                warnings.warn(
                    f"ground truth from Cycles, not the ray caster, for this scene: {text}",
                    BlendtruthWarning,
                    stacklevel=3,
                )
        return not reasons

    def cycles_meta(self, settings: RenderSettings, camera: Camera | None = None) -> dict:
        """``meta["ground_truth"]`` additions when Cycles made the ground truth."""
        reasons = []
        if settings.truth == "raycast":
            reasons = self.blockers(settings.passes)
        return {
            "backend": "cycles",
            "requested": settings.truth,
            "fallback_reason": "; ".join(reasons) or None,
        }

    def triangles(self):
        """The scene's evaluated world triangles (the caster's, when it has been built)."""
        if self._caster is not None:
            return self._caster.scene
        from blendtruth.blender.triangles import extract_triangles

        return extract_triangles()

    def caster(self, threads: int) -> RayCaster:
        if self._caster is None:
            from blendtruth.blender.triangles import extract_triangles

            start = time.perf_counter()
            self._caster = RayCaster(extract_triangles(), threads=threads)
            self.extract_seconds = time.perf_counter() - start
        return self._caster

    def cast(
        self, camera: Camera, settings: RenderSettings, info: SceneInfo
    ) -> tuple[dict[str, np.ndarray], dict]:
        """Every requested pass of ``settings.passes`` for ``camera`` and the
        ``meta["ground_truth"]`` of the view."""
        caster = self.caster(settings.threads)
        wanted = set(settings.passes)
        need = set(CAST_PASSES) & (wanted | {"normal"})
        if wanted & {"semantic", "object_coords", "boundary"}:
            need |= {"instance", "material", "position"}
        near = info.clip_range(camera.cam_to_world[:3, 3])[0]  # Cycles' clip_start
        albedo = "albedo" in wanted
        out = caster.cast(camera, tuple(need | ({"material", "uv"} if albedo else set())),
                          near=near, internals=albedo)  # fmt: skip
        h, w = camera.height, camera.width
        table = getattr(info, "table", None)
        if "normal_bump" in wanted:  # no material perturbs it here (else a blocker)
            out["normal_bump"] = out["normal"].copy()
        if "transparent" in wanted:  # every surface is opaque here (else a blocker)
            out["transparent"] = PASSES["transparent"].empty(h, w)
        if "semantic" in wanted and table is not None:
            out["semantic"] = table.semantic_of(out["instance"], out["material"])
        if "object_coords" in wanted and table is not None:
            out["object_coords"] = table.object_coords(out["position"], out["instance"])
        if "boundary" in wanted:
            out["boundary"] = occlusion_boundary(out["depth"], out["mask"], out.get("instance"))
        if albedo:
            if self._albedo is None:
                from blendtruth.blender.albedo_materials import shader

                self._albedo = shader()
            out["albedo"] = self._albedo[0].image(
                out["material"], out["triangle"], out["barycentric"], out["uv"]
            )
        passes = {name: out[name] for name in settings.passes if name in out}
        meta = {
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
        if albedo:
            meta["albedo"] = self._albedo[0].describe(self._albedo[1])
        return passes, meta

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
        shape = (0, camera.height, camera.width)
        return ids.astype(np.int32), np.array(masks, bool).reshape(-1, *shape[1:])
