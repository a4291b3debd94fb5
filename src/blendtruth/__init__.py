"""blendtruth: exact ground truth for 3D reconstruction, rendered headless with Blender.

``import blendtruth`` is fast and does not import Blender; the first render does.
"""

from blendtruth.api import Renderer, default_camera, render_view, render_views
from blendtruth.conventions import conventions
from blendtruth.errors import BlendtruthError
from blendtruth.geometry.camera import Intrinsics
from blendtruth.scene import SceneSpec
from blendtruth.settings import RenderSettings
from blendtruth.view import Camera, View


def __getattr__(name: str):
    # Lazy, so `import blendtruth` stays fast (the writers import OpenCV).
    if name == "render_model":
        from blendtruth.multiview import render_model

        return render_model
    if name == "load":
        from blendtruth.loader import load

        return load
    if name == "evaluate":
        from blendtruth.evaluation.run import evaluate

        return evaluate
    if name == "ViewPlan":
        from blendtruth.multiview import ViewPlan

        return ViewPlan
    raise AttributeError(f"module 'blendtruth' has no attribute {name!r}")


__all__ = [
    "BlendtruthError",
    "Camera",
    "Intrinsics",
    "RenderSettings",
    "Renderer",
    "SceneSpec",
    "ViewPlan",
    "View",
    "conventions",
    "default_camera",
    "evaluate",
    "load",
    "render_model",
    "render_view",
    "render_views",
]
