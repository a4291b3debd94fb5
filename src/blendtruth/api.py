"""The Python API: render views in a loop without re-importing or reloading Blender.

A :class:`Renderer` holds one backend and the scene loaded in it::

    with blendtruth.Renderer() as r:
        view = r.render_view("bunny.obj", width=256, height=256)
        for view in r.render_views("bunny.obj", blendtruth.ViewPlan(views=12)):
            ...

:func:`render_view` and :func:`default_camera` are the same calls on a module-level default
Renderer (one per process), which the CLI and the dataset workers use too.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from blendtruth.backend import Backend
from blendtruth.errors import BlendtruthError
from blendtruth.scene import SceneSpec
from blendtruth.settings import RenderSettings
from blendtruth.view import Camera, View

if TYPE_CHECKING:
    from blendtruth.planning import ViewPlan

SceneLike = str | Path | SceneSpec | list | tuple


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


def blender_backend() -> Backend:
    """The default backend: ground truth ray cast from Blender's triangles (Cycles where
    asked or where the ray caster cannot match it), RGB from Blender."""
    from blendtruth.blender.raycast_backend import BlenderRaycastBackend

    return BlenderRaycastBackend()


class Renderer:
    """One backend and the scene it holds.

    ``backend``: a :class:`~blendtruth.backend.Backend`, or a callable making one when first
    needed (default :func:`blender_backend`; :class:`blendtruth.testing.FakeBackend` renders
    without Blender). A scene stays loaded between calls and is loaded again when it
    differs or one of its model files changes on disk (mtime or size). Use it as a context
    manager (or call :meth:`close`) to release the backend's temporary files.
    """

    def __init__(self, backend: Backend | Callable[[], Backend] | None = None) -> None:
        # A class or function makes the backend; an object with render() is one.
        made = backend is None or not hasattr(type(backend), "render")
        self._make: Callable[[], Backend] | None = (backend or blender_backend) if made else None
        self._backend: Backend | None = None if made else backend
        self._key: object = None

    def __enter__(self) -> Renderer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def backend(self) -> Backend:
        """The backend (made on first use)."""
        if self._backend is None:
            assert self._make is not None
            self._backend = self._make()
        return self._backend

    def load(self, scene: SceneLike) -> Backend:
        """The backend with ``scene`` loaded (loaded again only when it changed)."""
        spec = SceneSpec.parse(scene)
        backend = self.backend
        key = (spec, _stamps(spec))
        if self._key != key:
            self._key = None  # a load that fails leaves no scene counted as loaded
            backend.load_scene(spec)
            self._key = key
        return backend

    def forget(self) -> None:
        """Mark the loaded scene stale (after something else reset Blender, e.g. a physics
        run), so the next call loads its scene again."""
        self._key = None

    def close(self) -> None:
        """Release the backend; the next call makes a new one (when made from a callable)."""
        if self._backend is not None:
            self._backend.close()
            if self._make is not None:
                self._backend = None
        self._key = None

    def render_view(
        self,
        camera: Camera | SceneLike | None = None,
        settings: RenderSettings | None = None,
        scene: SceneLike = "default",
        **overrides: Any,
    ) -> View:
        """Render one view of ``scene``; see :func:`blendtruth.api.render_view`."""
        if isinstance(camera, str | Path | SceneSpec | list | tuple):
            if scene != "default":
                raise BlendtruthError("render_view: give the scene once (first or as scene=)")
            camera, scene = None, camera
        if camera is not None and not isinstance(camera, Camera):
            raise BlendtruthError(
                f"render_view: camera must be a Camera, got {type(camera).__name__}"
            )
        if camera is not None:
            overrides = _camera_size(camera, overrides)
        settings = dataclasses.replace(settings or RenderSettings(), **overrides)
        spec = SceneSpec.parse(scene)
        backend = self.load(spec)
        if camera is None:
            camera = _framing_camera(backend, spec, settings)
        return backend.render(camera, settings)

    def default_camera(
        self, settings: RenderSettings | None = None, scene: SceneLike = "default", **overrides
    ) -> Camera:
        """The scene's own camera (the factory camera) at the settings' resolution."""
        settings = dataclasses.replace(settings or RenderSettings(), **overrides)
        return self.load(scene).default_camera(settings)

    def render_views(
        self,
        scene: SceneLike,
        plan: ViewPlan | None = None,
        settings: RenderSettings | None = None,
        **overrides: Any,
    ) -> Iterator[View]:
        """Every view ``blendtruth render`` would write for ``scene`` and ``plan`` (default
        ``ViewPlan()``), in memory, one at a time, in the same order; no files. The scene is
        loaded and the cameras placed and checked now (bad input raises here), each view
        is rendered when the iterator reaches it."""
        from blendtruth.planning import ViewPlan, plan_views, render_planned

        settings = dataclasses.replace(settings or RenderSettings(), **overrides)
        spec = SceneSpec.parse(scene)
        backend = self.load(spec)
        cameras = plan_views(spec, plan or ViewPlan(), settings, backend.info)
        return render_planned(backend, cameras, settings)


def _camera_size(camera: Camera, overrides: dict[str, Any]) -> dict[str, Any]:
    """``overrides`` with the camera's width and height (refusing a different size)."""
    size = {"width": camera.width, "height": camera.height}
    asked = {k: overrides[k] for k in size if k in overrides}
    if any(asked[k] != size[k] for k in asked):
        raise BlendtruthError(
            f"render_view: the camera is {camera.width}x{camera.height} but "
            f"{asked} was asked for; give a camera of that size"
        )
    return {**overrides, **size}


def _framing_camera(backend: Backend, spec: SceneSpec, settings: RenderSettings) -> Camera:
    """The scene's own camera for the factory scene and primitives; for models, the first
    camera the CLI's default view plan places (their files carry no camera we use)."""
    if not (spec.models or spec.placements):
        return backend.default_camera(settings)
    from blendtruth.planning import ViewPlan, plan_cameras

    # The CLI's defaults (ViewPlan()), so the view equals `blendtruth render MODEL`'s first.
    return plan_cameras(ViewPlan(), backend.info, settings, settings.seed)[0]


_default = Renderer()


def default_renderer() -> Renderer:
    """The process's default Renderer (behind :func:`render_view`, the CLI and workers)."""
    return _default


def use_backend(backend: Backend | Callable[[], Backend] | None) -> None:
    """Make the default Renderer render with ``backend`` (None: Blender again), e.g. a
    :class:`blendtruth.testing.FakeBackend` in a dataset worker."""
    global _default
    _default.close()
    _default = Renderer(backend)


def backend_for(scene: SceneLike) -> Backend:
    """The default Renderer's backend with ``scene`` loaded (see :meth:`Renderer.load`)."""
    return _default.load(scene)


def render_view(
    camera: Camera | SceneLike | None = None,
    settings: RenderSettings | None = None,
    scene: SceneLike = "default",
    **overrides: Any,
) -> View:
    """Render one view of ``scene`` with the default :class:`Renderer`.

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
    return _default.render_view(camera, settings, scene, **overrides)


def render_views(
    scene: SceneLike,
    plan: ViewPlan | None = None,
    settings: RenderSettings | None = None,
    **overrides: Any,
) -> Iterator[View]:
    """:meth:`Renderer.render_views` with the default Renderer."""
    return _default.render_views(scene, plan, settings, **overrides)


def default_camera(
    settings: RenderSettings | None = None, scene: SceneLike = "default", **overrides: Any
) -> Camera:
    """The scene's own camera (the factory camera) at the settings' resolution."""
    return _default.default_camera(settings, scene, **overrides)


def forget_loaded_scene() -> None:
    """Mark the default Renderer's scene stale (after something else reset Blender, e.g. a
    physics run), so the next :func:`backend_for` loads its scene again."""
    _default.forget()
