"""The backend-neutral render interface.

A backend loads a scene description, then turns a :class:`Camera` into a :class:`View` of
ground-truth arrays. Blender/Cycles is the first backend; a ray caster (Embree) can produce
the same depth, distance, normal and mask arrays behind the same three calls.
"""

from __future__ import annotations

from typing import Protocol

from blendtruth.raycast.scene import TriangleScene
from blendtruth.scene import SceneInfo, SceneSpec
from blendtruth.settings import RenderSettings
from blendtruth.view import Camera, View


class Backend(Protocol):
    """Renders views of the scene it holds."""

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
