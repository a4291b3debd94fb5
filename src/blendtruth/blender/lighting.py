"""Lights and materials that show shape and never leave a visible object black."""

from __future__ import annotations

import os

import numpy as np

from blendtruth.blender import compat
from blendtruth.blender._bpy import bpy
from blendtruth.errors import BlendtruthError
from blendtruth.geometry.frames import opencv_to_opengl
from blendtruth.scenes.lights import HDRI_NAMES

KEY_LIGHT = "blendtruth_key"
HDRI_WORLD = "blendtruth_hdri"
_MAPPING_NODE = "blendtruth_hdri_mapping"
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


def bundled_hdri(name: str) -> str:
    """Path of one of the CC0 HDRIs the bpy wheel ships (licence: license.txt beside it)."""
    if name not in HDRI_NAMES:
        raise BlendtruthError(f"--light hdri:{name}: no such HDRI; choose from {HDRI_NAMES}")
    folder = bpy.utils.system_resource("DATAFILES", path="studiolights/world")
    path = os.path.join(folder or "", f"{name}.exr")
    if not os.path.isfile(path):
        raise BlendtruthError(f"--light hdri:{name}: this bpy has no {path}")
    return path


def hdri_label(light: str, hdri) -> str:
    """How meta names the HDRI: bundled ones relative to bpy's datafiles folder (the same
    on every machine), a user's file as given."""
    if light.startswith("hdri:"):
        return f"<bpy datafiles>/studiolights/world/{light.split(':', 1)[1]}.exr"
    return str(hdri)


def hdri_file(light: str, hdri) -> str:
    """The image file an HDRI light uses: the bundled one for "hdri:NAME", else ``hdri``."""
    return bundled_hdri(light.split(":", 1)[1]) if light.startswith("hdri:") else str(hdri)


def setup_hdri(path: str, strength: float) -> None:
    """Light the scene by the equirectangular environment ``path`` only (every lamp is
    removed): Texture Coordinate (Generated = world direction) -> Mapping (rotation about
    Z, see :func:`set_hdri_rotation`) -> Environment Texture -> Background."""
    for obj in [o for o in bpy.context.scene.objects if o.type == "LIGHT"]:
        bpy.data.objects.remove(obj, do_unlink=True)
    try:
        image = bpy.data.images.load(path, check_existing=True)
    except RuntimeError:
        raise BlendtruthError(f"--hdri {path}: Blender cannot read this image") from None
    if image.size[0] == 0 or image.size[1] == 0:
        raise BlendtruthError(f"--hdri {path}: Blender cannot read this image (no pixels)")
    world = bpy.data.worlds.new(HDRI_WORLD)
    compat.use_nodes(world)
    nodes, links = world.node_tree.nodes, world.node_tree.links
    background = nodes.get("Background")
    coords = nodes.new("ShaderNodeTexCoord")
    mapping = nodes.new("ShaderNodeMapping")
    mapping.name = _MAPPING_NODE
    # TEXTURE mapping applies the inverse rotation to the lookup direction, so the
    # environment itself turns by +angle (counter-clockwise seen from +Z).
    mapping.vector_type = "TEXTURE"
    env = nodes.new("ShaderNodeTexEnvironment")
    env.image = image
    env.interpolation = "Linear"
    env.projection = "EQUIRECTANGULAR"
    links.new(coords.outputs["Generated"], mapping.inputs["Vector"])
    links.new(mapping.outputs["Vector"], env.inputs["Vector"])
    links.new(env.outputs["Color"], background.inputs["Color"])
    background.inputs["Strength"].default_value = strength
    bpy.context.scene.world = world


def set_hdri_rotation(degrees: float) -> None:
    """Turn the HDRI by ``degrees`` about world +Z (no-op without an HDRI world)."""
    world = bpy.context.scene.world
    if world is None or world.node_tree is None:
        return
    mapping = world.node_tree.nodes.get(_MAPPING_NODE)
    if mapping is not None:
        mapping.inputs["Rotation"].default_value = (0.0, 0.0, float(np.radians(degrees)))
