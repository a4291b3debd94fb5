"""A model's animation, frame by frame: Blender evaluates, we read the triangles.

``scene.frame_set(f)`` then the evaluated depsgraph gives each frame's world triangles
(object keyframes, parenting, constraints, armature skinning, shape keys and modifiers,
all as Blender computes them), the scene camera's pose at that frame, and each mesh
block's topology key (:class:`blendtruth.geometry.motion.FrameGeometry`). glTF clips:
the importer makes one action per glTF animation, plays the first and keeps the others
as NLA tracks; :func:`select_animation` plays the chosen one instead.
"""

from __future__ import annotations

import numpy as np

from blendtruth.blender._bpy import bpy
from blendtruth.blender.scene import scene_camera
from blendtruth.blender.triangles import extract_triangles
from blendtruth.errors import BlendtruthError
from blendtruth.geometry.motion import FrameGeometry
from blendtruth.raycast.scene import TriangleScene
from blendtruth.view import Camera


def _animated_ids():
    """Every datablock that can carry animation data in the scene (objects, their data,
    shape keys)."""
    for obj in bpy.context.scene.objects:
        yield obj
        data = getattr(obj, "data", None)
        if data is not None:
            yield data
            keys = getattr(data, "shape_keys", None)
            if keys is not None:
                yield keys


def animation_range() -> tuple[int, int] | None:
    """(first, last) frame covered by any action or NLA strip in the scene, or None when
    nothing is animated."""
    lo, hi = np.inf, -np.inf
    for owner in _animated_ids():
        anim = getattr(owner, "animation_data", None)
        if anim is None:
            continue
        ranges = [tuple(anim.action.frame_range)] if anim.action is not None else []
        for track in anim.nla_tracks:
            ranges += [(s.frame_start, s.frame_end) for s in track.strips if not track.mute]
        for a, b in ranges:
            lo, hi = min(lo, a), max(hi, b)
    if not np.isfinite(lo):
        return None
    return int(np.floor(lo)), int(np.ceil(hi))


def clip_names() -> list[str]:
    """Names of the actions the scene's objects can play (active or in NLA tracks), in
    the order Blender lists them (for glTF: the file's animation order)."""
    used = set()
    for obj in bpy.context.scene.objects:
        anim = obj.animation_data
        if anim is None:
            continue
        if anim.action is not None:
            used.add(anim.action.name)
        used.update(s.action.name for t in anim.nla_tracks for s in t.strips if s.action)
    return [a.name for a in bpy.data.actions if a.name in used]


def select_animation(choice: str, source: str, order: list[str] | None = None) -> str:
    """Play the clip ``choice`` (a name, or a 0-based index into ``order``: a glTF file's
    animation names; default :func:`clip_names`) on every object that has it, muting the
    NLA tracks; returns the clip's name."""
    names = clip_names()
    if not names:
        raise BlendtruthError(f"{source}: --animation {choice}: the file has no animations")
    if choice.isdigit():
        listed = order or names
        if int(choice) >= len(listed):
            raise BlendtruthError(f"{source}: --animation {choice}: the file has "
                                  f"{len(listed)} animations (0-{len(listed) - 1})")  # fmt: skip
        name = listed[int(choice)]
        if name not in names:
            raise BlendtruthError(f"{source}: --animation {choice}: Blender imported no "
                                  f"clip named {name!r} (it has {names})")  # fmt: skip
    elif choice in names:
        name = choice
    else:
        raise BlendtruthError(f"{source}: --animation {choice!r} is not one of {names}")
    action = bpy.data.actions[name]
    for obj in bpy.context.scene.objects:
        anim = obj.animation_data
        if anim is None:
            continue
        strips = [s for t in anim.nla_tracks for s in t.strips if s.action == action]
        for track in anim.nla_tracks:
            track.mute = True
        if anim.action == action or strips:
            slot = strips[0].action_slot if strips else anim.action_slot
            anim.action = action
            if slot is not None:
                anim.action_slot = slot
        else:
            anim.action = None
    return name


def hold_load_transforms(model_to_world: np.ndarray, models: tuple) -> int:
    """Keep the load-time transforms (glTF's Y-up correction, ``--normalize``) on animated
    root objects: they were baked into each root's matrix, which ``frame_set`` overwrites
    from its keyframes. Each animated root gets its file's own transform back and an empty
    parent carrying the load-time transform. Returns the number of roots re-parented."""
    from blendtruth.blender.models import _BLENDER_TO_YUP

    gltf = {str(m).lower().endswith((".glb", ".gltf")) for m in models}
    if len(gltf) > 1:
        raise BlendtruthError("--frames: glTF and other model files cannot be animated together")
    load = np.asarray(model_to_world, np.float64)
    if gltf == {True}:
        load = load @ _BLENDER_TO_YUP
    roots = [o for o in bpy.context.scene.objects if o.parent is None and o.animation_data]
    if not roots or np.allclose(load, np.eye(4)):
        return 0
    holder = bpy.data.objects.new("blendtruth_load_transform", None)
    bpy.context.scene.collection.objects.link(holder)
    holder.matrix_world = load.T.tolist()
    bpy.context.view_layer.update()
    inverse = np.linalg.inv(load)
    for obj in roots:
        loaded = np.array(obj.matrix_world, np.float64)
        obj.parent = holder
        obj.matrix_parent_inverse.identity()
        obj.matrix_basis = (inverse @ loaded).T.tolist()
    bpy.context.view_layer.update()
    return len(roots)


def frame_state(frame: int, width: int, height: int) -> tuple[TriangleScene, FrameGeometry, Camera]:
    """Set the scene to ``frame`` and read (triangles for the ray caster, the same as
    :class:`FrameGeometry` with topology keys, the scene camera at ``width``×``height``)."""
    bpy.context.scene.frame_set(int(frame))
    topology: list = []
    triangles = extract_triangles(topology)
    if triangles.vertices is None or triangles.faces is None:
        raise BlendtruthError("frame_state: the scene's triangles carry no vertex indices")
    sizes = np.array([t[0] for t in topology], np.int64)
    keys = np.array([t[1] for t in topology], np.int64)
    geometry = FrameGeometry(triangles.vertices, triangles.faces, triangles.instance, sizes, keys)
    return triangles, geometry, scene_camera(width, height)
