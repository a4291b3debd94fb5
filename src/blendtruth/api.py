"""The Python API: render views in a loop without re-importing or reloading Blender."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

from blendtruth.backend import Backend
from blendtruth.scene import SceneSpec
from blendtruth.settings import RenderSettings
from blendtruth.view import Camera, View

SceneLike = str | Path | SceneSpec | list | tuple

_backend: Any = None
_scene_key: object = None


def backend_for(scene: SceneLike) -> Backend:
    """The process's Blender backend with ``scene`` loaded (reloaded only when it changes)."""
    global _backend, _scene_key
    spec = SceneSpec.parse(scene)
    if _backend is None:
        from blendtruth.blender.backend import BlenderBackend

        _backend = BlenderBackend()
    if _scene_key != spec:
        _scene_key = None
        _backend.load_scene(spec)
        _scene_key = spec
    return _backend


def render_view(
    camera: Camera | None = None,
    settings: RenderSettings | None = None,
    scene: SceneLike = "default",
    **overrides: Any,
) -> View:
    """Render one view of ``scene``.

    ``scene`` is "default" (the tutorial's scene: Blender's factory cube, camera and light,
    unchanged), a built-in primitive ("cube", "uv_sphere", "monkey", "plane") in the cube's
    place, model file path(s), or a :class:`SceneSpec`. A scene stays loaded between calls.

    ``camera`` defaults to the scene's own camera at the settings' resolution. ``overrides``
    are :class:`RenderSettings` fields, e.g. ``render_view(width=128, height=96, rgb=False)``.
    """
    settings = dataclasses.replace(settings or RenderSettings(), **overrides)
    backend = backend_for(scene)
    if camera is None:
        camera = backend.default_camera(settings)
    return backend.render(camera, settings)


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
