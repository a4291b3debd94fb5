"""Stable instance, material and semantic ids for the loaded scene.

Instance ids go into ``object.pass_index`` and material ids into ``material.pass_index``,
which is what Cycles' Object Index and Material Index passes report and what the ray
caster reads, so both backends see the same ids.
"""

from __future__ import annotations

import numpy as np

from blendtruth.blender._bpy import bpy
from blendtruth.geometry.pointcloud import bounding_box
from blendtruth.instances import InstanceInfo, MaterialInfo, SceneTable, semantic_classes


def renderable_meshes() -> list:
    """Mesh objects that camera rays can hit, in a stable order (by name)."""
    objs = []
    for obj in bpy.context.scene.objects:
        if obj.type != "MESH" or obj.hide_render or not obj.visible_camera:
            continue
        objs.append(obj)
    return sorted(objs, key=lambda o: o.name)


def assign_ids(
    sources: dict[str, str], semantic_by: str, mapping: dict[str, int] | None
) -> SceneTable:
    """Number every renderable mesh object and material; ``sources`` maps object names to
    the file (or "primitive:NAME", "factory") they came from. Objects are ordered by
    source (in the order the sources were given), then by name."""
    order = {src: i for i, src in enumerate(dict.fromkeys(sources.values()))}
    objs = sorted(
        renderable_meshes(), key=lambda o: (order.get(sources.get(o.name, ""), -1), o.name)
    )
    depsgraph = bpy.context.evaluated_depsgraph_get()
    for obj in bpy.context.scene.objects:
        obj.pass_index = 0
    for mat in bpy.data.materials:
        mat.pass_index = 0

    materials: list[MaterialInfo] = []
    mat_ids: dict[str, int] = {}
    rows = []
    for obj in objs:
        slots = []
        for slot in obj.material_slots:
            mat = slot.material
            if mat is None:
                slots.append(0)
                continue
            if mat.name not in mat_ids:
                mat_ids[mat.name] = len(mat_ids) + 1
                mat.pass_index = mat_ids[mat.name]
                materials.append(
                    MaterialInfo(mat_ids[mat.name], mat.name, sources.get(obj.name, ""))
                )
            slots.append(mat_ids[mat.name])
        rows.append((obj, tuple(slots)))

    by_material = semantic_by == "material"
    inst_sem = semantic_classes(
        [(sources.get(o.name, ""), o.name) for o, _ in rows],
        "object" if by_material else semantic_by,
        mapping,
    )
    if by_material:
        mat_sem = semantic_classes([(m.source, m.name) for m in materials], "material", mapping)
        materials = [
            MaterialInfo(m.id, m.name, m.source, s) for m, s in zip(materials, mat_sem, strict=True)
        ]
        inst_sem = [0] * len(rows)

    instances = []
    for index, ((obj, slots), sem) in enumerate(zip(rows, inst_sem, strict=True), start=1):
        obj.pass_index = index
        lo, hi = _local_bounds(obj, depsgraph)
        instances.append(
            InstanceInfo(
                id=index,
                source=sources.get(obj.name, ""),
                object=obj.name,
                mesh=obj.data.name,
                materials=slots,
                semantic=sem,
                object_to_world=tuple(
                    map(tuple, np.array(obj.matrix_world, dtype=np.float64).tolist())
                ),
                bbox_min=lo,
                bbox_max=hi,
            )
        )
    return SceneTable(tuple(instances), tuple(materials), semantic_by)


def _local_bounds(obj, depsgraph) -> tuple[tuple[float, ...], tuple[float, ...]]:
    mesh = obj.evaluated_get(depsgraph).data
    co = np.empty(len(mesh.vertices) * 3, dtype=np.float64)
    mesh.vertices.foreach_get("co", co)
    co = co.reshape(-1, 3)
    if len(co) == 0:
        return (0.0, 0.0, 0.0), (0.0, 0.0, 0.0)
    lo, hi = bounding_box(co)
    return tuple(lo.tolist()), tuple(hi.tolist())
