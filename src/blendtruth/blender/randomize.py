"""Apply a scene's drawn randomisation (scenes/randomize.py) in Blender: one procedural
material per placement, an HDRI world, extra lights. Only the RGB render sees them."""

from __future__ import annotations

import numpy as np

from blendtruth.blender import compat, lighting
from blendtruth.blender._bpy import bpy
from blendtruth.blender.lighting import _aim_sun

_BLENDER_LIGHT = {"point": "POINT", "spot": "SPOT", "area": "AREA", "sun": "SUN"}


def apply(record: dict, placed: list[list]) -> None:
    """``record``: the ``randomization`` of scene.json; ``placed``: each placement's
    Blender objects, in placement order."""
    materials = record.get("materials") or []
    if not materials:
        placed = []
    for index, (params, objects) in enumerate(zip(materials, placed, strict=True)):
        mat = _material(f"blendtruth_random_{index:03d}", params)
        for obj in objects:
            if obj.type != "MESH":
                continue
            obj.data.materials.clear()
            obj.data.materials.append(mat)
            for slot in obj.material_slots:
                slot.link = "DATA"
    if "hdri" in record:  # first: it removes every lamp
        hdri = record["hdri"]
        lighting.setup_hdri(lighting.bundled_hdri(hdri["name"]), hdri["strength"])
        lighting.set_hdri_rotation(hdri["rotation_deg"])
    for index, light in enumerate(record.get("lights", [])):
        _light(f"blendtruth_random_light_{index:02d}", light)
    if "ceiling" in record:
        ceiling = record["ceiling"]
        below = np.asarray(ceiling["position"]) - [0.0, 0.0, 1.0]
        obj = _light("blendtruth_random_ceiling", {**ceiling, "type": "area", "target": below})
        obj.data.size = ceiling["size"]


def _material(name: str, p: dict):
    mat = bpy.data.materials.new(name)
    compat.use_nodes(mat)
    nodes, links = mat.node_tree.nodes, mat.node_tree.links
    bsdf = nodes.get("Principled BSDF")
    bsdf.inputs["Roughness"].default_value = p["roughness"]
    bsdf.inputs["Metallic"].default_value = p["metallic"]
    first, second = (*p["base_color"], 1.0), (*p["second_color"], 1.0)
    bsdf.inputs["Base Color"].default_value = first
    if p["texture"] == "none":
        return mat
    coords = nodes.new("ShaderNodeTexCoord")
    kind = {"noise": "ShaderNodeTexNoise", "voronoi": "ShaderNodeTexVoronoi",
            "checker": "ShaderNodeTexChecker"}[p["texture"]]  # fmt: skip
    tex = nodes.new(kind)
    tex.inputs["Scale"].default_value = p["texture_scale"]
    links.new(coords.outputs["Object"], tex.inputs["Vector"])
    if p["texture"] == "checker":
        tex.inputs["Color1"].default_value = first
        tex.inputs["Color2"].default_value = second
        links.new(tex.outputs["Color"], bsdf.inputs["Base Color"])
        return mat
    ramp = nodes.new("ShaderNodeValToRGB")
    ramp.color_ramp.elements[0].color = first
    ramp.color_ramp.elements[1].color = second
    value = "Fac" if p["texture"] == "noise" else "Distance"
    links.new(tex.outputs[value], ramp.inputs["Fac"])
    links.new(ramp.outputs["Color"], bsdf.inputs["Base Color"])
    return mat


def _light(name: str, p: dict):
    data = bpy.data.lights.new(name, type=_BLENDER_LIGHT[p["type"]])
    data.energy = p["strength"]
    data.color = p["color"]
    obj = bpy.data.objects.new(name, data)
    bpy.context.scene.collection.objects.link(obj)
    _aim_sun(obj, np.asarray(p["target"]) - np.asarray(p["position"]))  # lights shine along -Z
    obj.location = p["position"]
    return obj
