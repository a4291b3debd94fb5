"""Everything that touches Blender's ``bpy`` lives in this subpackage.

Code above it talks to :class:`blendtruth.blender.backend.BlenderBackend` through the
backend-neutral :class:`blendtruth.backend.Backend` interface, and never imports ``bpy``.
"""
