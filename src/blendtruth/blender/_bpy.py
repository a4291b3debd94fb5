"""The one place where ``bpy`` is imported, with a message that says how to get it."""

from blendtruth.errors import BlendtruthError

try:
    import bpy  # noqa: F401  (re-exported for the rest of blendtruth.blender)
except ImportError as exc:  # pragma: no cover - depends on the environment
    raise BlendtruthError(
        f"cannot import Blender's Python module 'bpy' ({exc}); it is installed with "
        "blendtruth from PyPI and needs Python 3.11 and the X/GL libraries listed in the README"
    ) from exc

__all__ = ["bpy"]
