"""Ground truth ray cast from Blender's evaluated triangles (``--truth raycast``, the default).

Blender loads the scene (through a :class:`~blendtruth.blender.backend.BlenderBackend`, which
also renders the RGB image); per loaded scene the triangles are read once
(:mod:`blendtruth.blender.triangles`) and cast per view by the pure
:class:`~blendtruth.raycast.backend.RaycastBackend`. Where the ray caster cannot match
Cycles (:mod:`blendtruth.blender.fallback`), or ``settings.truth`` is "cycles", the view's
ground truth comes from the Cycles backend instead: said once as a warning and in every
view's ``meta["ground_truth"]``.
"""

from __future__ import annotations

import warnings

from blendtruth.backend import Rendered
from blendtruth.blender.backend import BlenderBackend
from blendtruth.errors import BlendtruthWarning
from blendtruth.raycast.backend import NOTE as _NOTE
from blendtruth.raycast.backend import RaycastBackend
from blendtruth.raycast.scene import TriangleScene
from blendtruth.scene import SceneInfo, SceneSpec
from blendtruth.settings import RenderSettings
from blendtruth.view import Camera

NOTE = _NOTE.replace("the scene's triangles", "Blender's evaluated triangles")


class BlenderRaycastBackend(RaycastBackend):
    """The ray caster over the scene loaded in this process's Blender; ``cycles`` (made
    when not given) loads scenes, renders RGB and the views the ray caster cannot."""

    def __init__(self, cycles: BlenderBackend | None = None) -> None:
        self.cycles = cycles or BlenderBackend()
        self._blockers: dict[tuple[str, ...], list[str]] = {}
        self._warned: set[str] = set()
        super().__init__()

    def load_scene(self, spec: SceneSpec) -> SceneInfo:
        self._info = None
        self._info = self.cycles.load_scene(spec)
        self._spec = spec
        self._blockers = {}
        self.reset()
        return self._info

    def default_camera(self, settings: RenderSettings) -> Camera:
        return self.cycles.default_camera(settings)

    def load_triangles(self) -> TriangleScene:
        from blendtruth.blender.triangles import extract_triangles

        return extract_triangles()

    def close(self) -> None:
        super().close()
        self.cycles.close()

    def set_frame(self, frame: int) -> None:
        """Move the scene to ``frame``; the ray caster reads that frame's triangles at the
        next cast (a rebuilt BVH, not a refit)."""
        self.cycles.set_frame(frame)
        self.reset()

    def albedo_shader(self) -> tuple:
        """The scene's materials as an albedo shader (built once per scene; the fallback
        check has already refused scenes with materials it cannot express)."""
        if self._albedo is None:
            from blendtruth.blender.albedo_materials import shader

            self._albedo = shader()
        return self._albedo

    def rgb(self, camera: Camera, settings: RenderSettings) -> tuple:
        return self.cycles.rgb(camera, settings)

    def truth_meta(self, caster, settings: RenderSettings) -> dict:
        return {**super().truth_meta(caster, settings), "note": NOTE}

    def blockers(self, passes: tuple[str, ...]) -> list[str]:
        """Reasons the ray caster cannot make these passes for this scene (cached)."""
        if passes not in self._blockers:
            from blendtruth.blender.fallback import raycast_blockers

            self._blockers[passes] = raycast_blockers(passes)
        return self._blockers[passes]

    def fallback(self, camera: Camera, settings: RenderSettings) -> Rendered | None:
        """Cycles' render where asked (``truth="cycles"``) or where the ray caster cannot
        match it (warned once per reason)."""
        if settings.truth != "raycast":
            return self.cycles.render_raw(camera, settings)
        reasons = self.blockers(settings.passes)
        if not reasons:
            return None
        text = "; ".join(reasons)
        if text not in self._warned:
            self._warned.add(text)
            warnings.warn(
                f"ground truth from Cycles, not the ray caster, for this scene: {text}",
                BlendtruthWarning,
                stacklevel=4,
            )
        rendered = self.cycles.render_raw(camera, settings)
        rendered.meta["ground_truth"]["fallback_reason"] = text
        return rendered
