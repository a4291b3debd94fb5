"""Build a multi-object scene in Blender from placements, and the ground plane.

Each placed model is imported on its own, its objects renamed ``pNNN.<name>`` (NNN = the
placement's index) so every placed model is its own set of Blender objects with stable
names; its root objects get ``world = model_to_world @ file coordinates``.
"""

from __future__ import annotations

import numpy as np

from blendtruth.blender import compat
from blendtruth.blender._bpy import bpy
from blendtruth.blender.models import import_model
from blendtruth.errors import BlendtruthError
from blendtruth.scenes.placement import Ground, Placement

GROUND_NAME = "ground"
_GROUND_FLAG = "blendtruth_ground"
_IN_TRUTH = "blendtruth_in_truth"


def import_placed(index: int, path) -> list:
    """Import one model for placement ``index``; its objects renamed ``pNNN.<name>``.
    Returns the new objects, in the file coordinates (identity placement)."""
    objects = import_model(path)
    for obj in sorted(objects, key=lambda o: o.name):
        obj.name = f"p{index:03d}.{obj.name}"[:63]
    return objects


def file_vertices(objects: list) -> np.ndarray:
    """k×3 float64 world vertices of the mesh objects among ``objects``."""
    depsgraph = bpy.context.evaluated_depsgraph_get()
    pts = []
    for obj in objects:
        if obj.type != "MESH":
            continue
        mesh = obj.evaluated_get(depsgraph).data
        co = np.empty(len(mesh.vertices) * 3, dtype=np.float64)
        mesh.vertices.foreach_get("co", co)
        m = np.array(obj.matrix_world, dtype=np.float64)
        pts.append(co.reshape(-1, 3) @ m[:3, :3].T + m[:3, 3])
    if not pts:
        raise BlendtruthError("a placed model has no mesh")
    return np.concatenate(pts)


def world_triangles(objects: list) -> tuple[np.ndarray, np.ndarray]:
    """(vertices k×3 float64 world, triangles t×3 int) of the mesh objects' evaluated
    geometry, all objects in one array."""
    depsgraph = bpy.context.evaluated_depsgraph_get()
    verts, tris, base = [], [], 0
    for obj in objects:
        if obj.type != "MESH":
            continue
        mesh = obj.evaluated_get(depsgraph).data
        mesh.calc_loop_triangles()
        co = np.empty(len(mesh.vertices) * 3, dtype=np.float64)
        mesh.vertices.foreach_get("co", co)
        tri = np.empty(len(mesh.loop_triangles) * 3, dtype=np.int64)
        mesh.loop_triangles.foreach_get("vertices", tri)
        m = np.array(obj.matrix_world, dtype=np.float64)
        verts.append(co.reshape(-1, 3) @ m[:3, :3].T + m[:3, 3])
        tris.append(tri.reshape(-1, 3) + base)
        base += len(mesh.vertices)
    return np.concatenate(verts), np.concatenate(tris)


def place_roots(objects: list, model_to_world: np.ndarray) -> None:
    """Apply ``model_to_world`` to the root objects (those without a parent)."""
    for obj in objects:
        if obj.parent is None:
            obj.matrix_world = (model_to_world @ np.array(obj.matrix_world)).T.tolist()
    bpy.context.view_layer.update()


def build_placements(placements: tuple[Placement, ...], ground: Ground | None) -> list[list]:
    """Import and place every model (scene already emptied); add the ground plane.
    Returns each placement's objects. Refuses a file whose objects' names differ from
    the ones recorded in the placement (the scene file no longer matches the model)."""
    placed = []
    for index, placement in enumerate(placements):
        objects = import_placed(index, placement.model)
        names = tuple(sorted(o.name for o in objects))
        if placement.objects and names != tuple(sorted(placement.objects)):
            raise BlendtruthError(
                f"{placement.model}: its objects {list(names)} differ from the scene file's "
                f"{list(placement.objects)}; the model (or Blender's importer) changed since "
                "the scene was made"
            )
        place_roots(objects, placement.matrix)
        placed.append(objects)
    if ground is not None:
        add_ground(ground)
    return placed


def add_ground(ground: Ground):
    """A ``size``×``size`` plane in z = 0 (normal +Z), grey diffuse, named "ground"."""
    half = ground.size / 2
    mesh = bpy.data.meshes.new(GROUND_NAME)
    mesh.from_pydata(
        [(-half, -half, 0.0), (half, -half, 0.0), (half, half, 0.0), (-half, half, 0.0)],
        [],
        [(0, 1, 2, 3)],
    )
    mesh.update()
    obj = bpy.data.objects.new(GROUND_NAME, mesh)
    bpy.context.scene.collection.objects.link(obj)
    mat = bpy.data.materials.new("blendtruth_ground")
    mat.diffuse_color = (0.5, 0.5, 0.5, 1.0)
    compat.use_nodes(mat)
    bsdf = mat.node_tree.nodes.get("Principled BSDF")
    if bsdf is not None:
        bsdf.inputs["Base Color"].default_value = (0.5, 0.5, 0.5, 1.0)
        bsdf.inputs["Roughness"].default_value = 0.9
    mesh.materials.append(mat)
    obj[_GROUND_FLAG] = True
    obj[_IN_TRUTH] = bool(ground.in_truth)
    bpy.context.view_layer.update()
    return obj


def is_ground(obj) -> bool:
    return bool(obj.get(_GROUND_FLAG, False))


def in_ground_truth(obj) -> bool:
    """False for a ground plane left out of the ground truth (``--ground`` not in truth)."""
    return not is_ground(obj) or bool(obj.get(_IN_TRUTH, True))


def set_ground_visibility(truth_pass: bool) -> None:
    """Before a render: a ground plane left out of the ground truth is invisible to
    camera rays in the ground-truth render and visible in the RGB render."""
    for obj in bpy.context.scene.objects:
        if is_ground(obj):
            obj.visible_camera = (not truth_pass) or bool(obj.get(_IN_TRUTH, True))
