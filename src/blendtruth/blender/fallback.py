"""When the ray caster cannot reproduce what Cycles sees, and why.

The ray caster knows triangles, corner normals, UVs and ids, not shaders. A scene falls
back to Cycles ground truth when camera rays could see something other than opaque
triangles (non-mesh renderables, hair, volumes, transparent or true-displaced materials),
or when a requested pass needs a material's shader: ``normal_bump`` where a material has
a bump or normal map, ``albedo`` where a material's base colour is not one the ray caster
evaluates (:mod:`blendtruth.blender.albedo_materials`: constant, image texture at the
active UV map, colour attribute). One such material sends the whole scene to Cycles.
"""

from __future__ import annotations

from blendtruth.blender import compat, placement
from blendtruth.blender._bpy import bpy

# Object types that Cycles renders but that are not mesh triangles to the ray caster.
_NON_MESH = ("CURVE", "SURFACE", "META", "FONT", "CURVES", "POINTCLOUD", "VOLUME",
             "GREASEPENCIL", "GPENCIL")  # fmt: skip
# See-through materials (alpha, transmission, transparent/glass/refraction BSDFs) are
# found by truth_passes.non_opaque_materials, the Cycles path's own list.
_OTHER_NODES = ("HOLDOUT", "BSDF_HAIR", "BSDF_HAIR_PRINCIPLED")
_BUMP_NODES = ("BUMP", "NORMAL_MAP")


def raycast_blockers(passes: tuple[str, ...]) -> list[str]:
    """Reasons this scene's ground truth must come from Cycles (empty: ray-cast it)."""
    from blendtruth.passes import PASSES, RAYCAST

    reasons = [
        f"the {name} pass needs Cycles' material evaluation"
        for name in passes
        if RAYCAST not in PASSES[name].backends
    ]
    depsgraph = bpy.context.evaluated_depsgraph_get()
    materials = {}
    for inst in depsgraph.object_instances:
        obj = inst.object
        if not inst.show_self or not obj.visible_camera:
            continue
        if not inst.is_instance and obj.original.hide_render:
            continue
        if not placement.in_ground_truth(obj.original):
            continue
        if obj.type in _NON_MESH:
            reasons.append(f"object {obj.name!r} is a {obj.type.lower()}, not a mesh")
            continue
        if obj.type != "MESH":
            continue
        for psys in obj.original.particle_systems:
            if psys.settings.type == "HAIR" and psys.settings.render_type == "PATH":
                reasons.append(f"object {obj.name!r} has hair")
        for slot in obj.material_slots:
            if slot.material is not None:
                materials[slot.material.original.name] = slot.material.original
    for name in sorted(materials):
        reasons += _material_blockers(materials[name], passes)
    if "albedo" in passes:
        from blendtruth.blender import albedo_materials

        reasons += albedo_materials.blockers(materials[name] for name in sorted(materials))
    # The Cycles path's own lists (truth_passes), so both backends agree on what is
    # see-through or bump-mapped.
    from blendtruth.blender import truth_passes

    for name in truth_passes.non_opaque_materials():
        if name in materials:
            reasons.append(f"material {name!r} is see-through (alpha or transmission)")
    if "normal_bump" in passes:
        for name in truth_passes.perturbed_normals():
            if name in materials:
                reasons.append(f"material {name!r} has a bump or normal map (normal_bump)")
    return list(dict.fromkeys(reasons))


def _material_blockers(mat, passes: tuple[str, ...]) -> list[str]:
    out: list[str] = []
    if getattr(mat, "surface_render_method", "DITHERED") == "BLENDED":
        out.append(f"material {mat.name!r} is alpha-blended")
    if not compat.uses_nodes(mat) or mat.node_tree is None:
        return out
    output = compat.active_output(mat.node_tree)
    if output is None:
        return out
    if output.inputs["Volume"].is_linked:
        out.append(f"material {mat.name!r} has a volume")
    surface = _upstream(output.inputs["Surface"])
    node_types = {node.type for node in surface}
    if node_types & set(_OTHER_NODES):
        out.append(f"material {mat.name!r} has a holdout or hair shader")
    method = getattr(mat, "displacement_method", None) or mat.cycles.displacement_method
    displaced = output.inputs["Displacement"].is_linked
    if displaced and method in ("DISPLACEMENT", "BOTH"):
        out.append(f"material {mat.name!r} displaces its surface")
    bumped = (node_types & set(_BUMP_NODES)) or (displaced and method == "BUMP")
    if bumped and "normal_bump" in passes:
        out.append(f"material {mat.name!r} has a bump or normal map (normal_bump)")
    return out


def _upstream(socket) -> list:
    """Every node feeding ``socket``, through node groups, each once."""
    seen: dict[int, object] = {}
    stack = [link.from_node for link in socket.links if not link.is_muted]
    while stack:
        node = stack.pop()
        if node.as_pointer() in seen:
            continue
        seen[node.as_pointer()] = node
        if node.type == "GROUP" and node.node_tree is not None:
            stack += list(node.node_tree.nodes)
        for inp in node.inputs:
            stack += [link.from_node for link in inp.links if not link.is_muted]
    return list(seen.values())
