"""blendtruth: exact ground truth for 3D reconstruction, rendered headless with Blender.

``import blendtruth`` is fast and does not import Blender; the first render does.
"""

from blendtruth.api import default_camera, render_view
from blendtruth.camera import Intrinsics
from blendtruth.conventions import conventions
from blendtruth.errors import BlendtruthError
from blendtruth.settings import RenderSettings
from blendtruth.view import Camera, View

__all__ = [
    "BlendtruthError",
    "Camera",
    "Intrinsics",
    "RenderSettings",
    "View",
    "conventions",
    "default_camera",
    "render_view",
]
