"""Exact ray-cast ground truth from Blender's own evaluated triangles (no bpy here).

:mod:`blendtruth.raycast.scene` holds the world-space triangles (a pure-numpy
:class:`~blendtruth.raycast.scene.TriangleScene`), :mod:`blendtruth.raycast.cast` casts one
ray per pixel centre with Embree (``embreex``, imported lazily) and refines every hit in
float64. ``blendtruth.blender.triangles`` fills the scene from Blender.
"""
