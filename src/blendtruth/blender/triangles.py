"""Blender's evaluated, world-space triangles, read once per scene for the ray caster.

Reads exactly what Cycles tessellates: the depsgraph's evaluated meshes (modifiers,
geometry nodes, linked duplicates and collection instances via ``object_instances``) split
by ``mesh.loop_triangles`` (Blender's own triangulation of quads and n-gons, not a file
reader's), with the corner normals Cycles interpolates (smooth, flat, custom split).
Modifiers are evaluated with their render settings (``show_render``, render levels), as
Cycles renders them.
"""

from __future__ import annotations

import zlib

import numpy as np

from blendtruth.blender import placement
from blendtruth.blender._bpy import bpy
from blendtruth.errors import BlendtruthError
from blendtruth.raycast.scene import TriangleScene, concatenate


def match_render_evaluation() -> None:
    """Make the (viewport) depsgraph evaluate modifiers as a render does: Python in
    background mode only gets the viewport depsgraph, and Cycles uses render settings."""
    changed = False
    for obj in bpy.data.objects:
        for mod in getattr(obj, "modifiers", ()):
            if mod.show_viewport != mod.show_render:
                mod.show_viewport = mod.show_render
                changed = True
            if mod.type in ("SUBSURF", "MULTIRES") and mod.levels != mod.render_levels:
                mod.levels = mod.render_levels
                changed = True
    if changed:
        bpy.context.view_layer.update()


def _instances():
    """(instance, object) of every camera-visible mesh instance in the ground truth, in
    the depsgraph's order (valid only while iterating)."""
    match_render_evaluation()
    depsgraph = bpy.context.evaluated_depsgraph_get()
    for inst in depsgraph.object_instances:
        obj = inst.object
        if obj.type != "MESH" or not inst.show_self or not obj.visible_camera:
            continue
        if not inst.is_instance and obj.original.hide_render:
            continue
        if not placement.in_ground_truth(obj.original):
            continue  # a ground plane shown in RGB only
        yield inst, obj


def extract_triangles(topology: list | None = None) -> TriangleScene:
    """Every camera-visible mesh instance's triangles in world coordinates. ``topology``:
    a list that receives (vertex count, polygon hash) per placed mesh, in vertex order."""
    local_cache: dict[int, dict[str, np.ndarray]] = {}
    placed: list[tuple[int, np.ndarray, list[int], int]] = []
    for inst, obj in _instances():
        mesh = obj.data
        key = mesh.as_pointer()
        if key not in local_cache:
            local_cache[key] = _mesh_arrays(mesh)
        local = local_cache[key]
        if len(local["faces"]) == 0:
            continue
        slots = [s.material.pass_index if s.material else 0 for s in obj.material_slots]
        placed.append((key, np.array(inst.matrix_world, dtype=np.float64), slots, obj.pass_index))
    users: dict[int, int] = {}
    for key, *_ in placed:
        users[key] = users.get(key, 0) + 1
    parts = [
        _to_world(local_cache[key], matrix, slots, index, instanced=users[key] > 1)
        for key, matrix, slots, index in placed
    ]
    if topology is not None:
        topology.extend(local_cache[key]["topology"] for key, *_ in placed)
    if not parts:
        raise BlendtruthError("the scene has no mesh triangles for the ray caster")
    return concatenate(parts)


def extract_corner_colors(names: list[str]) -> dict[str, np.ndarray]:
    """Colour attributes at the corners of :func:`extract_triangles`' triangles, in the
    same order: name ("" = each mesh's default colour attribute, as a Color Attribute node
    with no name reads it) -> T×3×3 float32 linear RGB; 0 on meshes without it."""
    local_cache: dict[int, dict[str, np.ndarray]] = {}
    parts: dict[str, list[np.ndarray]] = {name: [] for name in names}
    for inst, obj in _instances():
        mesh = obj.data
        key = mesh.as_pointer()
        if key not in local_cache:
            local_cache[key] = {name: _corner_colors(mesh, name) for name in names}
        local = local_cache[key]
        mirrored = np.linalg.det(np.array(inst.matrix_world, dtype=np.float64)[:3, :3]) < 0
        for name in names:
            colors = local[name]
            if len(colors) == 0:
                continue
            # The corner order extract_triangles gives a mirrored instance.
            parts[name].append(colors[:, [0, 2, 1]] if mirrored else colors)
    return {
        name: np.concatenate(chunks) if chunks else np.zeros((0, 3, 3), np.float32)
        for name, chunks in parts.items()
    }


def _corner_colors(mesh, name: str) -> np.ndarray:
    """T×3×3 float32 linear RGB of one evaluated mesh's colour attribute ``name`` at its
    triangles' corners (point or corner domain; byte colours decoded from sRGB)."""
    nt = len(mesh.loop_triangles)
    attrs = mesh.color_attributes
    if name:
        attr = attrs.get(name)
    else:
        index = attrs.render_color_index
        attr = attrs[index] if 0 <= index < len(attrs) else None
    if attr is None or attr.domain not in ("POINT", "CORNER") or nt == 0:
        return np.zeros((nt, 3, 3), np.float32)
    values = np.empty(len(attr.data) * 4, np.float32)
    attr.data.foreach_get("color", values)  # linear for float and byte colours alike
    values = values.reshape(-1, 4)[:, :3]
    index = np.empty(nt * 3, np.int32)
    field = "vertices" if attr.domain == "POINT" else "loops"
    mesh.loop_triangles.foreach_get(field, index)
    return np.ascontiguousarray(values[index.reshape(nt, 3)])


def _mesh_arrays(mesh) -> dict[str, np.ndarray]:
    """Local (object-space) per-triangle arrays of one evaluated mesh."""
    nv, nt, nl = len(mesh.vertices), len(mesh.loop_triangles), len(mesh.loops)
    co = np.empty(nv * 3, np.float32)
    mesh.vertices.foreach_get("co", co)
    tri_verts = np.empty(nt * 3, np.int32)
    mesh.loop_triangles.foreach_get("vertices", tri_verts)
    tri_loops = np.empty(nt * 3, np.int32)
    mesh.loop_triangles.foreach_get("loops", tri_loops)
    mat = np.empty(nt, np.int32)
    mesh.loop_triangles.foreach_get("material_index", mat)
    # Cycles interpolates corner normals unless every face is flat (normals domain FACE);
    # a flat face among smooth ones has corner normals equal to its polygon's normal.
    smooth = np.full(nt, mesh.normals_domain != "FACE")
    normals = np.empty(nl * 3, np.float32)
    mesh.corner_normals.foreach_get("vector", normals)
    uv = np.zeros((nt, 3, 2), np.float32)
    layer = next((layer for layer in mesh.uv_layers if layer.active_render), None)
    tri_loops = tri_loops.reshape(nt, 3)
    if layer is not None:
        loop_uv = np.empty(nl * 2, np.float32)
        layer.data.foreach_get("uv", loop_uv)
        uv = loop_uv.reshape(nl, 2)[tri_loops]
    return {
        "topology": _topology(mesh, nv, nl),
        "vertices": co.reshape(nv, 3).astype(np.float64),
        "faces": tri_verts.reshape(nt, 3).astype(np.int64),
        "normals": normals.reshape(nl, 3)[tri_loops],
        "smooth": smooth,
        "uv": uv,
        "material_index": mat,
    }


def _topology(mesh, nv: int, nl: int) -> tuple[int, int]:
    """(vertex count, CRC-32 of the polygons' sizes and corner vertex indices): equal on
    two frames when only positions moved (the triangulation may still differ)."""
    corners = np.empty(nl, np.int32)
    mesh.loops.foreach_get("vertex_index", corners)
    sizes = np.empty(len(mesh.polygons), np.int32)
    mesh.polygons.foreach_get("loop_total", sizes)
    return nv, zlib.crc32(sizes.tobytes() + corners.tobytes())


def _to_world(
    local: dict[str, np.ndarray],
    matrix: np.ndarray,
    slots: list[int],
    instance: int,
    instanced: bool,
) -> TriangleScene:
    """World-frame triangles of one placed mesh. Cycles bakes the transform into a mesh
    used once (normals transformed, then normalised per corner) but keeps a shared mesh
    instanced (normals interpolated in object space, then transformed): under non-uniform
    scale the two differ, so do as Cycles does. Unnormalised transformed normals,
    interpolated, equal the transformed interpolation."""
    faces = local["faces"]
    n = len(faces)
    # The mesh's vertices transformed once (not every corner), then gathered: corners and
    # vertices[faces] are the same numbers, so mesh.ply holds exactly what is cast.
    vertices = local["vertices"] @ matrix[:3, :3].T + matrix[:3, 3]
    corners = vertices[faces]
    normal_matrix = np.linalg.inv(matrix[:3, :3]).T
    normals = (local["normals"].reshape(-1, 3).astype(np.float64) @ normal_matrix.T).reshape(
        n, 3, 3
    )
    if not instanced:
        length = np.sqrt(np.einsum("ijk,ijk->ij", normals, normals))[..., None]
        normals = np.divide(normals, length, out=np.zeros_like(normals), where=length > 0)
    uv = local["uv"]
    if np.linalg.det(matrix[:3, :3]) < 0:
        # A mirroring transform reverses the winding; Cycles keeps the face's own front
        # side, so keep it too by swapping two corners (geometry unchanged).
        order = [0, 2, 1]
        corners, normals, uv = corners[:, order], normals[:, order], uv[:, order]
        faces = faces[:, order]
    if slots:
        material = np.asarray(slots, np.int32)[np.clip(local["material_index"], 0, len(slots) - 1)]
    else:
        material = np.zeros(n, np.int32)
    return TriangleScene(
        corners=np.ascontiguousarray(corners),
        corner_normals=normals.astype(np.float32),
        smooth=local["smooth"],
        uv=np.ascontiguousarray(uv, dtype=np.float32),
        material=material,
        instance=np.full(n, instance, np.int32),
        transform=np.zeros(n, np.int32),
        transforms=matrix[None],
        vertices=vertices,
        faces=np.ascontiguousarray(faces),
    )
