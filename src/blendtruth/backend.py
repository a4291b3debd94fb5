"""The backend-neutral render interface, and the one place a View is put together.

A backend loads a scene description, then turns a :class:`Camera` into the arrays it can
make (:class:`Rendered`). What every backend's view has in common - the passes derived from
other passes, and the view's ``meta`` (scene, size, camera model) - is built once, here, by
:func:`finish_view`, after whichever backend rendered. Backends:

- :class:`blendtruth.blender.backend.BlenderBackend`: ground truth and RGB from Cycles;
- :class:`blendtruth.blender.raycast_backend.BlenderRaycastBackend`: ground truth ray cast
  from Blender's evaluated triangles (:mod:`blendtruth.raycast`), RGB from Cycles;
- :class:`blendtruth.testing.FakeBackend`: an analytic triangle scene cast without Blender,
  for tests of everything above the renderers.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

import numpy as np

from blendtruth.errors import BlendtruthError
from blendtruth.geometry.projection import model_meta
from blendtruth.raycast.scene import TriangleScene
from blendtruth.scene import SceneInfo, SceneSpec
from blendtruth.settings import RenderSettings
from blendtruth.view import Camera, View

# Passes computed from other passes (name -> the passes it is made from), by finish_view.
DERIVED: dict[str, tuple[str, ...]] = {
    "semantic": ("instance", "material"),
    "object_coords": ("position", "instance"),
    "boundary": ("depth", "mask", "instance"),
}


_CORE = ("depth", "distance", "normal", "mask")


@runtime_checkable
class Backend(Protocol):
    """Renders views of the scene it holds."""

    @property
    def info(self) -> SceneInfo:
        """The loaded scene's bounds, transform and id table (BlendtruthError if none)."""
        ...

    def load_scene(self, spec: SceneSpec) -> SceneInfo:
        """Replace the held scene with ``spec``; report its bounds and applied transform."""
        ...

    def default_camera(self, settings: RenderSettings) -> Camera:
        """The scene's own camera at the settings' resolution."""
        ...

    def render(self, camera: Camera, settings: RenderSettings) -> View:
        """Render one view: ground truth always, RGB when ``settings.rgb``."""
        ...

    def triangles(self) -> TriangleScene:
        """The loaded scene's world triangles, exactly those ground truth is made from."""
        ...

    def close(self) -> None:
        """Release what the backend holds (temporary files, caches); idempotent."""
        ...


@dataclass
class Rendered:
    """What a backend made for one view, before :func:`finish_view`.

    Arrays as in :class:`View` (H×W, camera frame); ``passes``: the other passes it made
    (the sources of derived ones included); ``meta``: the backend's own part of the view's
    meta (``ground_truth``, ``rgb``, ``device``, ``lighting``, ...).
    """

    depth: np.ndarray
    distance: np.ndarray
    normal: np.ndarray
    mask: np.ndarray
    rgb: np.ndarray | None = None
    alpha: np.ndarray | None = None
    passes: dict[str, np.ndarray] = field(default_factory=dict)
    meta: dict[str, Any] = field(default_factory=dict)


def source_passes(passes: tuple[str, ...]) -> tuple[str, ...]:
    """The passes a backend must make for ``passes``: derived ones replaced by their
    sources, in order (the four core passes are made whether named or not)."""
    out: list[str] = []
    for name in passes:
        for need in DERIVED.get(name, (name,)):
            if need not in out:
                out.append(need)
    return tuple(out)


def finish_view(
    rendered: Rendered,
    camera: Camera,
    settings: RenderSettings,
    info: SceneInfo,
    spec: SceneSpec | None,
) -> View:
    """The View of ``rendered``: derived passes computed, unrequested sources dropped, and
    the meta every backend's view carries added to the backend's own."""
    core = {"depth": rendered.depth, "mask": rendered.mask}
    have = {**rendered.passes, **core}
    mask = rendered.mask
    wanted = set(settings.passes)
    table = info.table
    if "semantic" in wanted:
        sem = table.semantic_of(have["instance"], have["material"])
        have["semantic"] = np.where(mask, sem, 0).astype(np.int32)
    if "object_coords" in wanted:
        have["object_coords"] = table.object_coords(have["position"], have["instance"])
    if "boundary" in wanted:
        # Here, not at import: correspondence imports OpenCV (`import blendtruth` stays fast).
        from blendtruth.geometry.correspondence import occlusion_boundary

        have["boundary"] = occlusion_boundary(rendered.depth, mask, have.get("instance"))
    extra = {n: have[n] for n in settings.passes if n in have and n not in _CORE}
    for name in ("amodal_ids", "amodal"):  # not in the pass table: settings.amodal asks
        if name in rendered.passes:
            extra[name] = rendered.passes[name]
    meta = {
        **rendered.meta,
        "scene": scene_meta(spec, info),
        "width": camera.width,
        "height": camera.height,
        **model_meta(camera),
    }
    return View(camera, rendered.depth, rendered.distance, rendered.normal, mask,
                rendered.rgb, rendered.alpha, meta, extra)  # fmt: skip


def check_size(camera: Camera, settings: RenderSettings) -> None:
    """Refuse settings whose size differs from the camera's."""
    if (camera.width, camera.height) != (settings.width, settings.height):
        raise BlendtruthError(
            f"camera is {camera.width}x{camera.height} but settings ask for "
            f"{settings.width}x{settings.height}"
        )


def scene_meta(spec: SceneSpec | None, info: SceneInfo) -> dict:
    """``meta["scene"]``: what was loaded and where it was put (world frame)."""
    return {
        "models": [str(p) for p in spec.models] if spec else [],
        "primitive": spec.primitive if spec else None,
        "normalize": spec.normalize if spec else False,
        "light": spec.light if spec else None,
        "material": spec.material if spec else None,
        "placed_objects": [list(p.objects) for p in spec.placements] if spec else [],
        "ground": None if not spec or spec.ground is None else vars(spec.ground),
        "model_to_world": np.asarray(info.model_to_world).tolist(),
        "bounding_sphere": {"center": np.asarray(info.center).tolist(), "radius": info.radius},
    }
