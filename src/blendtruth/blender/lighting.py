"""Lights and materials that show shape and never leave a visible object black."""

from __future__ import annotations

import numpy as np

from blendtruth.blender import compat
from blendtruth.blender._bpy import bpy
from blendtruth.frames import opencv_to_opengl

KEY_LIGHT = "blendtruth_key"
# Irradiance of the sun lamp (W/m²) and radiance of the grey world: independent of scale,
# so a model in millimetres is lit like one in metres.
_SUN_STRENGTH = 3.0
_AMBIENT = {"studio": 0.35, "sun": 0.35, "ambient": 1.0}


def setup_lighting(preset: str, center: np.ndarray, radius: float, up: np.ndarray) -> None:
    """Apply a lighting preset (see :class:`blendtruth.scene.SceneSpec`)."""
    if preset == "factory":
        return
    for obj in [o for o in bpy.context.scene.objects if o.type == "LIGHT"]:
        bpy.data.objects.remove(obj, do_unlink=True)
    _set_world(_AMBIENT[preset])
    if preset == "ambient":
        return
    data = bpy.data.lights.new(KEY_LIGHT, type="SUN")
    data.energy = _SUN_STRENGTH
    data.angle = np.radians(5.0)
    sun = bpy.data.objects.new(KEY_LIGHT, data)
    bpy.context.scene.collection.objects.link(sun)
    if preset == "sun":
        # From above (the up axis), a little off it so vertical faces differ in shade.
        side = np.cross(up, [1.0, 0.0, 0.0] if abs(up[0]) < 0.9 else [0.0, 1.0, 0.0])
        _aim_sun(sun, -up + 0.5 * side / np.linalg.norm(side))
        sun["fixed"] = True


def follow_camera(cam_to_world: np.ndarray) -> None:
    """Point the studio key light along the camera's view, from its upper left, so every
    view of every model is lit alike. No-op for the other presets."""
    sun = bpy.context.scene.objects.get(KEY_LIGHT)
    if sun is None or sun.get("fixed", False):
        return
    r = cam_to_world[:3, :3]  # OpenCV axes: columns are right, down, forward
    _aim_sun(sun, r[:, 2] + 0.5 * r[:, 0] + 0.6 * r[:, 1])


def use_clay() -> None:
    """Replace every material with one uniform diffuse grey (shape-only images)."""
    mat = bpy.data.materials.get("blendtruth_clay") or bpy.data.materials.new("blendtruth_clay")
    mat.diffuse_color = (0.8, 0.8, 0.8, 1.0)
    compat.use_nodes(mat)
    bsdf = mat.node_tree.nodes.get("Principled BSDF")
    if bsdf is not None:
        bsdf.inputs["Base Color"].default_value = (0.8, 0.8, 0.8, 1.0)
        bsdf.inputs["Roughness"].default_value = 0.7
        bsdf.inputs["Metallic"].default_value = 0.0
    for obj in bpy.context.scene.objects:
        if obj.type == "MESH":
            obj.data.materials.clear()
            obj.data.materials.append(mat)
            for slot in obj.material_slots:
                slot.link = "DATA"


def _aim_sun(sun, direction: np.ndarray) -> None:
    """Orient the sun so its light travels along ``direction`` (a sun shines along -Z)."""
    fwd = np.asarray(direction, dtype=np.float64)
    fwd /= np.linalg.norm(fwd)
    helper = np.array([0.0, 0.0, 1.0]) if abs(fwd[2]) < 0.9 else np.array([0.0, 1.0, 0.0])
    right = np.cross(fwd, helper)
    right /= np.linalg.norm(right)
    down = np.cross(fwd, right)
    pose = np.eye(4)
    pose[:3, :3] = np.column_stack([right, down, fwd])  # OpenCV-style: z along the light
    sun.matrix_world = opencv_to_opengl(pose).T.tolist()


def _set_world(strength: float) -> None:
    world = bpy.data.worlds.new("blendtruth_world")
    compat.use_nodes(world)
    background = world.node_tree.nodes.get("Background")
    background.inputs["Color"].default_value = (1.0, 1.0, 1.0, 1.0)
    background.inputs["Strength"].default_value = strength
    world.color = (strength, strength, strength)
    bpy.context.scene.world = world
