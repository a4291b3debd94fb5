"""Settle spawned models with Blender's rigid-body simulation (Bullet inside bpy).

Each model becomes one active rigid body: a proxy mesh holding all its triangles in the
world, origin at its bounding-sphere centre, collision shape its convex hull (or its
triangles). The ground is a passive box whose top face is z = 0. Frames are stepped
until every body is at rest; each model's final ``model_to_world`` is the proxy's
rigid motion applied to its spawn transform. Gravity -9.81 m/s² along -Z, 24 frames/s.
"""

from __future__ import annotations

import math
import warnings

import numpy as np

from blendtruth.blender._bpy import bpy
from blendtruth.blender.placement import file_vertices, import_placed, world_triangles
from blendtruth.errors import BlendtruthError, BlendtruthWarning
from blendtruth.geometry.pointcloud import bounding_box
from blendtruth.scenes.placement import LayoutOptions, Placement, Spawn

# Rest: every body moves less than this fraction of the largest radius per frame, for
# _REST_FRAMES frames in a row.
_REST_MOTION = 1e-5
_REST_FRAMES = 10
_FRICTION = 0.8
_LINEAR_DAMPING = 0.1
_ANGULAR_DAMPING = 0.5  # Bullet has no rolling friction; damping stops spheres rolling away
_SUBSTEPS = 20
_ITERATIONS = 30
_STAND_UP = np.array([[1.0, 0, 0, 0], [0, 0, -1.0, 0], [0, 1.0, 0, 0], [0, 0, 0, 1.0]])


def spawn_transform(spawn: Spawn, vertices: np.ndarray) -> np.ndarray:
    """model_to_world of a spawn: centre the model's bounding box, scale its bounding
    sphere (about that centre) to radius ``spawn.scale``, stand it up (Y-up files, if
    asked), rotate, move the centre to ``spawn.position``."""
    lo, hi = bounding_box(vertices)
    centre = (lo + hi) / 2
    radius = float(np.linalg.norm(vertices - centre, axis=1).max())
    if not radius > 0:
        raise BlendtruthError(f"{spawn.model}: the model has zero size")
    normalise = np.diag([spawn.scale / radius] * 3 + [1.0])
    normalise[:3, 3] = -centre * spawn.scale / radius
    pose = np.eye(4)
    pose[:3, :3] = spawn.rotation
    pose[:3, 3] = spawn.position
    return pose @ (_STAND_UP if spawn.stand_up else np.eye(4)) @ normalise


def place_without_physics(spawns: list[Spawn]) -> list[Placement]:
    """Placements at the spawn poses (the volume mode: bounding spheres never overlap)."""
    bpy.ops.wm.read_factory_settings(use_empty=True)
    placements = []
    for i, spawn in enumerate(spawns):
        objects = import_placed(i, spawn.model)
        m = spawn_transform(spawn, file_vertices(objects))
        placements.append(Placement(spawn.model, m, spawn.scale, [o.name for o in objects]))
        _remove(objects)
    return placements


def settle(
    spawns: list[Spawn], options: LayoutOptions, ground_size: float
) -> tuple[list[Placement], dict]:
    """Drop the spawns onto the ground and simulate until at rest. Returns the settled
    placements and what the simulation did (frames, whether every body came to rest)."""
    bpy.ops.wm.read_factory_settings(use_empty=True)
    scene = bpy.context.scene
    smax = max(s.scale for s in spawns)
    bodies, spawn_poses, names = [], [], []
    for i, spawn in enumerate(spawns):
        objects = import_placed(i, spawn.model)
        m = spawn_transform(spawn, file_vertices(objects))
        names.append([o.name for o in objects])
        for obj in objects:
            if obj.parent is None:
                obj.matrix_world = (m @ np.array(obj.matrix_world)).T.tolist()
        bpy.context.view_layer.update()
        verts, tris = world_triangles(objects)
        _remove(objects)
        bodies.append(_proxy(f"body{i:03d}", verts - spawn.position, tris, spawn.position))
        spawn_poses.append(m)
    floor = _floor(ground_size, smax)
    bpy.ops.rigidbody.world_add()
    world = scene.rigidbody_world
    world.substeps_per_frame = _SUBSTEPS
    world.solver_iterations = _ITERATIONS
    world.point_cache.frame_start = 1
    world.point_cache.frame_end = options.max_frames
    scene.frame_start, scene.frame_end = 1, options.max_frames
    shape = "CONVEX_HULL" if options.collision == "convex" else "MESH"
    for obj in bodies:
        _rigid(obj, "ACTIVE", shape, 0.0 if shape == "CONVEX_HULL" else 1e-3 * smax)
    _rigid(floor, "PASSIVE", "BOX", 0.0)
    container = _container(spawns, smax) if options.container else None
    frame, still, motion = 1, 0, math.inf
    previous = _poses(bodies)
    while frame < options.max_frames and still < _REST_FRAMES:
        frame += 1
        scene.frame_set(frame)
        current = _poses(bodies)
        steps = zip(previous, current, spawns, strict=True)
        motion = max(_motion(a, b, s.scale) for a, b, s in steps)
        still = still + 1 if motion < _REST_MOTION * smax else 0
        previous = current
    placements = []
    for i, (spawn, body) in enumerate(zip(spawns, bodies, strict=True)):
        final = _rigid_part(np.array(body.matrix_world, dtype=np.float64))
        start = np.eye(4)
        start[:3, 3] = spawn.position
        m = final @ np.linalg.inv(start) @ spawn_poses[i]
        placements.append(Placement(spawn.model, m, spawn.scale, names[i]))
    if still < _REST_FRAMES:
        warnings.warn(
            f"the models did not come to rest within {options.max_frames} frames (last frame "
            f"motion {motion:.3g}); scene.json records settled: false",
            BlendtruthWarning,
            stacklevel=2,
        )
    lowest = min(float(_lowest(b)) for b in bodies)
    if lowest < -1e-2 * smax:
        raise BlendtruthError(
            f"a model fell off the {ground_size:g} wide ground plane; give a larger --ground-size"
        )
    meta = {
        "engine": f"Blender {bpy.app.version_string} rigid body (Bullet)",
        "collision_shape": shape,
        "frames": frame,
        "fps": scene.render.fps,
        "substeps_per_frame": _SUBSTEPS,
        "solver_iterations": _ITERATIONS,
        "friction": _FRICTION,
        "restitution": 0.0,
        "damping": {"linear": _LINEAR_DAMPING, "angular": _ANGULAR_DAMPING},
        "settled": still >= _REST_FRAMES,
        "last_frame_motion": motion,
        "rest_threshold": _REST_MOTION * smax,
    }
    if container is not None:
        meta["container"] = container
    bpy.ops.wm.read_factory_settings(use_empty=True)
    return placements, meta


def _proxy(name: str, verts: np.ndarray, tris: np.ndarray, origin: np.ndarray):
    mesh = bpy.data.meshes.new(name)
    mesh.from_pydata(verts.tolist(), [], tris.tolist())
    mesh.update()
    obj = bpy.data.objects.new(name, mesh)
    bpy.context.scene.collection.objects.link(obj)
    obj.location = origin.tolist()
    bpy.context.view_layer.update()
    return obj


def _floor(size: float, smax: float):
    # Blender's BOX shape is the object's bounding box centred on its origin: the mesh
    # is centred on the origin and the object moved down so the top face is z = 0.
    half, thick = size / 2, max(smax, 0.01 * size)
    verts = [
        (x, y, z) for z in (-thick / 2, thick / 2) for y in (-half, half) for x in (-half, half)
    ]
    faces = [(0, 1, 3, 2), (4, 6, 7, 5), (0, 4, 5, 1), (2, 3, 7, 6), (0, 2, 6, 4), (1, 5, 7, 3)]
    mesh = bpy.data.meshes.new("floor")
    mesh.from_pydata(verts, [], faces)
    mesh.update()
    obj = bpy.data.objects.new("floor", mesh)
    obj.location = (0.0, 0.0, -thick / 2)
    bpy.context.scene.collection.objects.link(obj)
    bpy.context.view_layer.update()
    return obj


def _container(spawns: list[Spawn], smax: float) -> dict:
    """``--container``: four passive walls (physics only, never rendered) around every
    spawn's bounding sphere, from the floor to above the highest one, so the models
    settle into a pile inside a square bin (x, y in [-half_width, half_width])."""
    half = max(max(abs(s.position[0]), abs(s.position[1])) + s.scale for s in spawns)
    height = max(s.position[2] + s.scale for s in spawns) + smax
    thick = max(smax, 0.01 * half)
    for i, (axis, sign) in enumerate(((0, 1), (0, -1), (1, 1), (1, -1))):
        size = [half + thick, half + thick, height / 2]
        size[axis] = thick / 2
        centre = [0.0, 0.0, height / 2]
        centre[axis] = sign * (half + thick / 2)
        verts = [(x, y, z) for z in (-size[2], size[2]) for y in (-size[1], size[1])
                 for x in (-size[0], size[0])]  # fmt: skip
        faces = [(0, 1, 3, 2), (4, 6, 7, 5), (0, 4, 5, 1), (2, 3, 7, 6), (0, 2, 6, 4),
                 (1, 5, 7, 3)]  # fmt: skip
        mesh = bpy.data.meshes.new(f"wall{i}")
        mesh.from_pydata(verts, [], faces)
        mesh.update()
        wall = bpy.data.objects.new(f"wall{i}", mesh)
        wall.location = centre
        bpy.context.scene.collection.objects.link(wall)
        bpy.context.view_layer.update()
        _rigid(wall, "PASSIVE", "BOX", 0.0)
    return {"half_width": half, "height": height, "walls": "physics only, not rendered"}


def _rigid(obj, kind: str, shape: str, margin: float) -> None:
    with bpy.context.temp_override(
        object=obj, active_object=obj, selected_objects=[obj], selected_editable_objects=[obj]
    ):
        bpy.ops.rigidbody.object_add(type=kind)
    body = obj.rigid_body
    body.collision_shape = shape
    body.use_margin = True
    body.collision_margin = margin
    body.friction = _FRICTION
    body.restitution = 0.0
    body.linear_damping = _LINEAR_DAMPING
    body.angular_damping = _ANGULAR_DAMPING
    body.mass = 1.0
    # Bullet's sleeping: a body slower than these for ~2 s stops (slow creeping and
    # jitter of stacked bodies would otherwise never end).
    body.use_deactivation = True
    body.deactivate_linear_velocity = 0.05
    body.deactivate_angular_velocity = 0.1


def _poses(bodies: list) -> list[np.ndarray]:
    return [np.array(b.matrix_world, dtype=np.float64) for b in bodies]


def _motion(a: np.ndarray, b: np.ndarray, radius: float) -> float:
    """Largest displacement of a point within ``radius`` of the body's origin."""
    return float(np.linalg.norm(a[:3, 3] - b[:3, 3]) + radius * np.abs(a[:3, :3] - b[:3, :3]).max())


def _rigid_part(m: np.ndarray) -> np.ndarray:
    """The nearest rigid transform (Blender keeps matrices in float32)."""
    u, _, vt = np.linalg.svd(m[:3, :3])
    out = np.eye(4)
    out[:3, :3] = u @ vt
    out[:3, 3] = m[:3, 3]
    return out


def _lowest(obj) -> float:
    co = np.empty(len(obj.data.vertices) * 3, dtype=np.float64)
    obj.data.vertices.foreach_get("co", co)
    m = np.array(obj.matrix_world, dtype=np.float64)
    return float((co.reshape(-1, 3) @ m[:3, :3].T + m[:3, 3])[:, 2].min())


def _remove(objects: list) -> None:
    for obj in objects:
        bpy.data.objects.remove(obj, do_unlink=True)
