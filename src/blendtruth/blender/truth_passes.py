"""Cycles' data passes turned into the ground-truth passes of :mod:`blendtruth.passes`.

All of them come from the same 1-sample pixel-centre render as depth, so they share its
silhouette. Cycles has no geometric-normal pass, and its Normal pass includes bump and
normal maps, so every material also writes two AOVs from a Geometry node: "True Normal"
(``normal_geometric``) and "Normal" (the shading normal before bump/normal-map nodes,
``normal``); Cycles' Normal pass becomes ``normal_bump``.
"""

from __future__ import annotations

import numpy as np

from blendtruth.blender import compat, exr
from blendtruth.blender._bpy import bpy
from blendtruth.geometry.projection import camera_rays
from blendtruth.geometry.rays import normals_to_camera, unit_vectors
from blendtruth.instances import SceneTable
from blendtruth.view import Camera

AOV_GEOMETRIC = "blendtruth_normal_geometric"
_OVERRIDE = "blendtruth_normals_override"
# Shader nodes that change the shading normal away from the mesh's own normal.
_PERTURBING = {"ShaderNodeBump", "ShaderNodeNormalMap", "ShaderNodeDisplacement",
               "ShaderNodeVectorDisplacement"}  # fmt: skip


def enable_passes(view_layer, passes: tuple[str, ...]) -> None:
    """Switch on the Cycles passes the requested ground-truth passes are made from."""
    need = set(passes)
    view_layer.use_pass_object_index = bool(need & {"instance", "semantic", "object_coords"})
    view_layer.use_pass_material_index = bool(need & {"material", "semantic", "transparent"})
    view_layer.use_pass_position = bool(need & {"position", "object_coords"})
    view_layer.use_pass_uv = "uv" in need
    view_layer.use_pass_diffuse_color = "albedo" in need


def perturbed_normals() -> list[str]:
    """Names of the renderable materials whose node trees perturb the shading normal."""
    found = []
    for mat in bpy.data.materials:
        if mat.users == 0 or mat.node_tree is None:
            continue
        if any(node.bl_idname in _PERTURBING for node in _all_nodes(mat.node_tree)):
            found.append(mat.name)
    return found


def _all_nodes(tree, seen=None):
    seen = set() if seen is None else seen
    for node in tree.nodes:
        yield node
        group = getattr(node, "node_tree", None)
        if group is not None and group.name not in seen:
            seen.add(group.name)
            yield from _all_nodes(group, seen)


_SEE_THROUGH = {"ShaderNodeBsdfTransparent", "ShaderNodeBsdfGlass", "ShaderNodeBsdfRefraction"}


def non_opaque_materials() -> list[str]:
    """Renderable materials a ray may see through: a Principled BSDF whose Alpha is below 1
    or driven by a texture, or with transmission, or a transparent/glass/refraction BSDF."""
    found = []
    for mat in bpy.data.materials:
        if mat.users == 0 or mat.node_tree is None or mat.name == _OVERRIDE:
            continue
        for node in _all_nodes(mat.node_tree):
            if node.bl_idname in _SEE_THROUGH or (
                node.bl_idname == "ShaderNodeBsdfPrincipled" and _principled_see_through(node)
            ):
                found.append(mat.name)
                break
    return found


def _principled_see_through(node) -> bool:
    alpha = node.inputs["Alpha"]
    if alpha.is_linked or alpha.default_value < 1.0:
        return True
    name = "Transmission Weight" if "Transmission Weight" in node.inputs else "Transmission"
    trans = node.inputs.get(name)
    return trans is not None and (trans.is_linked or trans.default_value > 0.0)


def transparent_flag(first_material: np.ndarray, table: SceneTable, names: list[str]) -> np.ndarray:
    """bool H×W: the first surface along the ray (whatever its alpha) has a non-opaque
    material, from a render's material-index pass with the alpha threshold at 0."""
    see_through = np.zeros(len(table.materials) + 1, dtype=bool)
    for mat in table.materials:
        see_through[mat.id] = mat.name in names
    return see_through[np.clip(first_material, 0, len(see_through) - 1)]


def needs_normals_render(passes: tuple[str, ...], perturbed: bool) -> bool:
    """Whether the second (material-override) render is needed for these passes."""
    return "normal_geometric" in passes or (
        perturbed and bool({"normal", "normal_bump"} & set(passes))
    )


AOV_SHADING = "blendtruth_normal"
_DEFAULT_MATERIAL = "blendtruth_default_surface"


def inject_aovs(objects) -> None:
    """Make every material of ``objects`` write Blender's geometric ("True Normal") and
    unperturbed shading ("Normal", before bump/normal-map nodes) normals to AOVs. This
    does not change shading. Material-less slots get a plain diffuse 0.8 grey, which is
    what Cycles renders for them anyway."""
    for obj in objects:
        if not obj.material_slots:
            obj.data.materials.append(_default_material())
        for slot in obj.material_slots:
            if slot.material is None:
                slot.material = _default_material()
            _add_aov_nodes(slot.material)


def _default_material():
    mat = bpy.data.materials.get(_DEFAULT_MATERIAL)
    if mat is None:
        mat = bpy.data.materials.new(_DEFAULT_MATERIAL)
        compat.use_nodes(mat)
        nodes = mat.node_tree.nodes
        nodes.clear()
        out = nodes.new("ShaderNodeOutputMaterial")
        diffuse = nodes.new("ShaderNodeBsdfDiffuse")
        diffuse.inputs["Color"].default_value = (0.8, 0.8, 0.8, 1.0)
        mat.node_tree.links.new(diffuse.outputs["BSDF"], out.inputs["Surface"])
    return mat


def _add_aov_nodes(mat) -> None:
    compat.use_nodes(mat)
    nodes, links = mat.node_tree.nodes, mat.node_tree.links
    if AOV_GEOMETRIC in nodes:
        return
    geometry = nodes.new("ShaderNodeNewGeometry")
    geometry.name = "blendtruth_geometry"
    for aov_name, socket in ((AOV_GEOMETRIC, "True Normal"), (AOV_SHADING, "Normal")):
        aov = nodes.new("ShaderNodeOutputAOV")
        aov.name = aov_name
        aov.aov_name = aov_name
        links.new(geometry.outputs[socket], aov.inputs["Color"])


def register_aovs(view_layer) -> None:
    """Declare the AOVs on the view layer so Cycles writes them."""
    have = [a.name for a in view_layer.aovs]
    for name in (AOV_GEOMETRIC, AOV_SHADING):
        if name not in have:
            aov = view_layer.aovs.add()
            aov.name = name
            aov.type = "COLOR"


def camera_normals(
    world: np.ndarray, camera: Camera, mask: np.ndarray, face_camera: bool = False
) -> np.ndarray:
    """World-frame normals (H×W×3) -> unit camera-frame normals, 0 outside ``mask``;
    with ``face_camera`` flipped where they point away from the camera (dot with the
    pixel-centre ray > 0). Cycles already flips both normals on back faces, so this only
    matters for the geometric normal, which must face the camera by definition."""
    n = normals_to_camera(world.astype(np.float64), camera.cam_to_world)
    if face_camera:
        flip = np.sum(n * camera_rays(camera)[1], axis=-1) > 0
        n = np.where(flip[..., None], -n, n)
    return unit_vectors(np.where(mask[..., None], n, 0.0)).astype(np.float32)


def extract(
    channels: dict[str, np.ndarray],
    passes: tuple[str, ...],
    mask: np.ndarray,
    table: SceneTable,
) -> dict[str, np.ndarray]:
    """The passes beyond depth/distance/normal/mask from one ground-truth render's EXR
    channels (``normal_geometric``/``normal_bump`` are made by the caller)."""
    out: dict[str, np.ndarray] = {}
    m3 = mask[..., None]
    instance = material = None
    if {"instance", "semantic", "object_coords"} & set(passes):
        instance = np.where(mask, np.rint(channels[f"{compat.OBJECT_INDEX_PASS}.X"]), 0).astype(
            np.int32
        )
    if {"material", "semantic"} & set(passes):
        material = np.where(mask, np.rint(channels[f"{compat.MATERIAL_INDEX_PASS}.X"]), 0).astype(
            np.int32
        )
    if "instance" in passes:
        out["instance"] = instance
    if "material" in passes:
        out["material"] = material
    if "semantic" in passes:
        out["semantic"] = np.where(mask, table.semantic_of(instance, material), 0).astype(np.int32)
    position = None
    if {"position", "object_coords"} & set(passes):
        position = np.where(m3, exr.stack(channels, "Position", "XYZ"), 0.0).astype(np.float32)
    if "position" in passes:
        out["position"] = position
    if "object_coords" in passes:
        out["object_coords"] = table.object_coords(position, instance)
    if "uv" in passes:
        out["uv"] = np.where(m3, exr.stack(channels, "UV", "UV"), 0.0).astype(np.float32)
    if "albedo" in passes:
        out["albedo"] = np.where(
            m3, exr.stack(channels, compat.DIFFUSE_COLOR_PASS, "RGB"), 0.0
        ).astype(np.float32)
    return out
