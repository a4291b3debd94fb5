"""The Python API: render views in a loop without re-importing or reloading Blender."""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path
from typing import Any

from blendtruth.backend import Backend
from blendtruth.errors import BlendtruthError
from blendtruth.scene import SceneSpec
from blendtruth.settings import RenderSettings
from blendtruth.view import Camera, View

SceneLike = str | Path | SceneSpec | list | tuple

_backend: Any = None
_scene_key: object = None


def _stamps(spec: SceneSpec) -> tuple:
    """(path, mtime in ns, size) of every model file of ``spec``: a file edited in place
    changes its stamp, so the scene is loaded again (materials and textures it references
    are not stamped)."""
    paths = list(spec.models) + [p.model for p in spec.placements]
    out = []
    for path in paths:
        try:
            st = os.stat(path)
        except OSError:
            out.append((str(path), None, None))  # the load reports the missing file
            continue
        out.append((str(path), st.st_mtime_ns, st.st_size))
    return tuple(out)


def backend_for(scene: SceneLike) -> Backend:
    """The process's Blender backend with ``scene`` loaded (reloaded when the scene or one
    of its model files changes)."""
    global _backend, _scene_key
    spec = SceneSpec.parse(scene)
    if _backend is None:
        from blendtruth.blender.backend import BlenderBackend

        _backend = BlenderBackend()
    key = (spec, _stamps(spec))
    if _scene_key != key:
        _scene_key = None
        _backend.load_scene(spec)
        _scene_key = key
    return _backend


def render_view(
    camera: Camera | SceneLike | None = None,
    settings: RenderSettings | None = None,
    scene: SceneLike = "default",
    **overrides: Any,
) -> View:
    """Render one view of ``scene``.

    ``scene`` is "default" (the tutorial's scene: Blender's factory cube, camera and light,
    unchanged), a built-in primitive ("cube", "uv_sphere", "monkey", "plane") in the cube's
    place, model file path(s), or a :class:`SceneSpec`. A scene stays loaded between calls
    (and is loaded again when a model file changes on disk). A model path may also be
    given first: ``render_view("bunny.obj")``.

    ``camera`` defaults to the scene's own camera for "default" and the primitives, and for
    model files to the first of the views ``blendtruth render MODEL`` frames (the model fills
    ``ViewPlan.fill`` of the frame; :func:`blendtruth.multiview.plan_cameras`). A given
    camera brings its own image size. ``overrides`` are :class:`RenderSettings` fields,
    e.g. ``render_view(width=128, height=96, rgb=False)``.
    """
    if isinstance(camera, str | Path | SceneSpec | list | tuple):
        if scene != "default":
            raise BlendtruthError("render_view: give the scene once (first or as scene=)")
        camera, scene = None, camera
    if camera is not None and not isinstance(camera, Camera):
        raise BlendtruthError(f"render_view: camera must be a Camera, got {type(camera).__name__}")
    if camera is not None:
        size = {"width": camera.width, "height": camera.height}
        asked = {k: overrides[k] for k in size if k in overrides}
        if any(asked[k] != size[k] for k in asked):
            raise BlendtruthError(
                f"render_view: the camera is {camera.width}x{camera.height} but "
                f"{asked} was asked for; give a camera of that size"
            )
        overrides = {**overrides, **size}
    settings = dataclasses.replace(settings or RenderSettings(), **overrides)
    spec = SceneSpec.parse(scene)
    backend = backend_for(spec)
    if camera is None:
        camera = _framing_camera(backend, spec, settings)
    return backend.render(camera, settings)


def _framing_camera(backend: Backend, spec: SceneSpec, settings: RenderSettings) -> Camera:
    """The scene's own camera for the factory scene and primitives; for models, the first
    camera the CLI's default view plan places (their files carry no camera we use)."""
    if not (spec.models or spec.placements):
        return backend.default_camera(settings)
    from blendtruth.multiview import ViewPlan, plan_cameras

    # The CLI's defaults (ViewPlan()), so the view equals `blendtruth render MODEL`'s first.
    return plan_cameras(ViewPlan(), backend.info, settings, settings.seed)[0]


def default_camera(
    settings: RenderSettings | None = None, scene: SceneLike = "default", **overrides: Any
) -> Camera:
    """The scene's own camera (the factory camera) at the settings' resolution."""
    settings = dataclasses.replace(settings or RenderSettings(), **overrides)
    return backend_for(scene).default_camera(settings)


def forget_loaded_scene() -> None:
    """Mark the loaded scene stale (after something else reset Blender, e.g. a physics
    run), so the next :func:`backend_for` loads its scene again."""
    global _scene_key
    _scene_key = None
