"""The one place where ``bpy`` is imported, with a message that says how to get it."""

import atexit

from blendtruth.errors import BlendtruthError

try:
    import bpy  # noqa: F401  (re-exported for the rest of blendtruth.blender)
except ImportError as exc:  # pragma: no cover - depends on the environment
    raise BlendtruthError(
        f"cannot import Blender's Python module 'bpy' ({exc}); it is installed with "
        "blendtruth from PyPI and needs Python 3.11 and the X/GL libraries listed in the README"
    ) from exc


def _release_driver_namespace() -> None:
    # bpy 4.5 hangs forever in a C++ static destructor at process exit (its audio
    # "delayed close" thread still waits on the condition variable being destroyed) when
    # the bpy module outlives interpreter teardown. Blender's Python driver namespace,
    # created as soon as a file with a Python driver is loaded, keeps it alive; emptying
    # the namespace before teardown lets bpy shut its thread down (see docs/inputs.md).
    namespace = getattr(getattr(bpy, "app", None), "driver_namespace", None)
    if namespace is not None:
        namespace.clear()


# Registered after bpy's own atexit handler, so it runs before it.
atexit.register(_release_driver_namespace)

__all__ = ["bpy"]
