"""Scene setup: the factory startup scene and the camera, mirrored from blendtruth's types."""

from __future__ import annotations

import numpy as np

from blendtruth.blender._bpy import bpy
from blendtruth.blender.cameras import apply_model_camera, place_camera_object
from blendtruth.blender.ids import assign_ids
from blendtruth.blender.lighting import hdri_file, setup_hdri, setup_lighting, use_clay
from blendtruth.blender.models import import_model
from blendtruth.blender.placement import GROUND_NAME, build_placements, is_ground
from blendtruth.errors import BlendtruthError
from blendtruth.geometry.camera import (
    BlenderCamera,
    Intrinsics,
    intrinsics_from_blender,
    intrinsics_to_blender,
)
from blendtruth.geometry.frames import opengl_to_opencv
from blendtruth.geometry.pointcloud import bounding_box
from blendtruth.models import default_up
from blendtruth.scene import SceneInfo, SceneSpec
from blendtruth.view import Camera


def load_factory_scene() -> None:
    """Reset Blender to its factory startup file: the tutorial's cube, camera and light."""
    reset_scene(use_empty=False)


_prefs_reset = False


def reset_scene(use_empty: bool) -> None:
    """Blender's factory startup file, empty or with the tutorial's scene. Factory
    preferences are loaded once per process; later resets only reload the startup file
    (5x faster: preferences and add-ons are not re-registered for every model)."""
    global _prefs_reset
    if not _prefs_reset:
        bpy.ops.wm.read_factory_settings(use_empty=use_empty)
        _prefs_reset = True
    else:
        bpy.ops.wm.read_homefile(use_empty=use_empty, use_factory_startup=True, load_ui=False)


def scene_camera(width: int, height: int) -> Camera:
    """The active scene camera as a :class:`Camera` at ``width``×``height`` pixels."""
    obj = _camera_object()
    data = obj.data
    params = BlenderCamera(
        lens_mm=data.lens,
        sensor_width_mm=data.sensor_width,
        sensor_height_mm=data.sensor_height,
        sensor_fit=data.sensor_fit,
        shift_x=data.shift_x,
        shift_y=data.shift_y,
        resolution_x=width,
        resolution_y=height,
        pixel_aspect_x=1.0,
        pixel_aspect_y=1.0,
    )
    bpy.context.view_layer.update()
    pose = opengl_to_opencv(np.array(obj.matrix_world, dtype=np.float64))
    # Blender's matrices are float32 inside; re-orthonormalise so the pose is exactly rigid.
    u, _, vt = np.linalg.svd(pose[:3, :3])
    pose[:3, :3] = u @ vt
    return Camera(intrinsics_from_blender(params), pose)


def apply_camera(camera: Camera, clip: tuple[float, float] | None = None) -> None:
    """Make the scene camera exactly ``camera`` (intrinsics, resolution and pose)."""
    scene = bpy.context.scene
    obj = _camera_object(any_type=True)
    if camera.model != "pinhole":
        apply_model_camera(obj, camera, clip)
        return
    params = intrinsics_to_blender(camera.intrinsics)
    data = obj.data
    data.type = "PERSP"
    data.lens_unit = "MILLIMETERS"
    data.lens = params.lens_mm
    data.sensor_width = params.sensor_width_mm
    data.sensor_height = params.sensor_height_mm
    data.sensor_fit = params.sensor_fit
    data.shift_x = params.shift_x
    data.shift_y = params.shift_y
    data.dof.use_dof = False
    if clip is not None:
        data.clip_start, data.clip_end = clip
    render = scene.render
    render.resolution_x = params.resolution_x
    render.resolution_y = params.resolution_y
    render.resolution_percentage = 100
    render.pixel_aspect_x = params.pixel_aspect_x
    render.pixel_aspect_y = params.pixel_aspect_y
    render.use_border = False
    place_camera_object(obj, camera.cam_to_world)
    _check_applied(obj, camera.intrinsics, params)


def _check_applied(obj, intr: Intrinsics, params: BlenderCamera) -> None:
    # Blender stores camera floats in single precision; refuse a camera it cannot hold.
    data = obj.data
    got = intrinsics_from_blender(
        BlenderCamera(
            data.lens,
            data.sensor_width,
            data.sensor_height,
            data.sensor_fit,
            data.shift_x,
            data.shift_y,
            params.resolution_x,
            params.resolution_y,
            bpy.context.scene.render.pixel_aspect_x,
            bpy.context.scene.render.pixel_aspect_y,
        )
    )
    err = max(abs(got.fx - intr.fx) / intr.fx, abs(got.fy - intr.fy) / intr.fy)
    err_c = max(abs(got.cx - intr.cx), abs(got.cy - intr.cy))
    if err > 1e-5 or err_c > 1e-3:
        raise BlendtruthError(
            f"camera K=[fx {intr.fx:g}, fy {intr.fy:g}, cx {intr.cx:g}, cy {intr.cy:g}] cannot "
            f"be represented by Blender's camera (relative focal error {err:.2g}, "
            f"principal point error {err_c:.2g} px)"
        )


def _camera_object(any_type: bool = False):
    scene = bpy.context.scene
    obj = scene.camera
    if obj is None:
        raise BlendtruthError("the scene has no camera")
    if obj.data.type != "PERSP" and not any_type:
        raise BlendtruthError(
            f"camera {obj.name!r} is {obj.data.type}; only perspective cameras are supported"
        )
    return obj


def build_scene(spec: SceneSpec) -> SceneInfo:
    """Load ``spec`` into Blender and return its bounding sphere and applied transform."""
    model_to_world = np.eye(4)
    up = np.array([0.0, 0.0, 1.0])
    sources: dict[str, str] = {}
    placed: list[list] = []
    if spec.is_factory:
        load_factory_scene()
        sources = {obj.name: "factory" for obj in bpy.context.scene.objects}
    elif spec.primitive is not None:
        load_factory_scene()
        _replace_cube(spec.primitive)
        sources = {obj.name: f"primitive:{spec.primitive}" for obj in bpy.context.scene.objects}
    elif spec.placements:
        bpy.ops.wm.read_factory_settings(use_empty=True)
        placed = build_placements(spec.placements, spec.ground)
        for placement, objects in zip(spec.placements, placed, strict=True):
            sources.update({obj.name: str(placement.model) for obj in objects})
        if spec.ground is not None:
            sources[GROUND_NAME] = "ground"
        _add_camera()
    else:
        reset_scene(use_empty=True)
        roots = []
        for path in spec.models:
            new = import_model(path)
            sources.update({obj.name: str(path) for obj in new})
            roots += [obj for obj in new if obj.parent is None]
        if default_up(list(spec.models)) == "+y":
            up = np.array([0.0, 1.0, 0.0])
        if spec.normalize:
            center, radius = mesh_bounds()
            model_to_world = np.diag([1 / radius] * 3 + [1.0])
            model_to_world[:3, 3] = -center / radius
            for obj in roots:
                obj.matrix_world = (model_to_world @ np.array(obj.matrix_world)).T.tolist()
            bpy.context.view_layer.update()
        _add_camera()
    if spec.material == "clay":
        use_clay()
    center, radius = mesh_bounds()
    lo, hi = mesh_box()
    if spec.light.startswith("hdri"):
        setup_hdri(hdri_file(spec.light, spec.hdri), spec.hdri_strength)
    else:
        setup_lighting(spec.light, center, radius, up)
    if spec.randomization:
        import json

        from blendtruth.blender import randomize

        randomize.apply(json.loads(spec.randomization), placed)
    table = assign_ids(sources, spec.semantic, dict(spec.semantic_map))
    table = _flag_distractors(table, spec, placed)
    scene_radius = None
    if spec.ground is not None:  # frame the objects, clip for the whole plane
        scene_radius = float(np.linalg.norm(_mesh_points(with_ground=True) - center, axis=1).max())
    return SceneInfo(
        center=center,
        radius=radius,
        model_to_world=model_to_world,
        up=up,
        extent=hi - lo,
        scene_radius=scene_radius,
        table=table,
    )


def _flag_distractors(table, spec: SceneSpec, placed: list[list]):
    """The id table with the instances of distractor placements flagged."""
    names = {o.name for p, objs in zip(spec.placements, placed, strict=False) if p.distractor
             for o in objs}  # fmt: skip
    if not names:
        return table
    import dataclasses

    rows = tuple(dataclasses.replace(i, distractor=i.object in names) for i in table.instances)
    return dataclasses.replace(table, instances=rows)


def _add_camera() -> None:
    cam_data = bpy.data.cameras.new("Camera")
    cam = bpy.data.objects.new("Camera", cam_data)
    bpy.context.scene.collection.objects.link(cam)
    bpy.context.scene.camera = cam


def mesh_box() -> tuple[np.ndarray, np.ndarray]:
    """Corners (min, max) of the world-space bounding box of all mesh vertices."""
    return bounding_box(_mesh_points())


def _mesh_points(with_ground: bool = False) -> np.ndarray:
    """World vertices of every mesh (a ground plane only if ``with_ground``)."""
    pts = []
    depsgraph = bpy.context.evaluated_depsgraph_get()
    for obj in bpy.context.scene.objects:
        if obj.type != "MESH" or (is_ground(obj) and not with_ground):
            continue
        mesh = obj.evaluated_get(depsgraph).data
        co = np.empty(len(mesh.vertices) * 3, dtype=np.float64)
        mesh.vertices.foreach_get("co", co)
        m = np.array(obj.matrix_world, dtype=np.float64)
        with np.errstate(all="ignore"):
            pts.append(co.reshape(-1, 3) @ m[:3, :3].T + m[:3, 3])
    if not pts:
        raise BlendtruthError("the scene has no mesh to render")
    return np.concatenate(pts)


def mesh_bounds() -> tuple[np.ndarray, float]:
    """Centre of the world-space bounding box of all mesh vertices, and the largest
    distance of a vertex from it."""
    allpts = _mesh_points()
    if not np.isfinite(allpts).all():
        raise BlendtruthError(
            "the scene's world coordinates overflow (a transform or coordinate is too large)"
        )
    lo, hi = bounding_box(allpts)
    center = (lo + hi) / 2
    radius = float(np.linalg.norm(allpts - center, axis=1).max())
    if not radius > 0:
        raise BlendtruthError("the scene's geometry has zero size")
    return center, radius


def _replace_cube(name: str) -> None:
    """The factory cube replaced by primitive ``name``: ``uv_sphere`` is Blender's default
    UV sphere (radius 1, 32 segments, 16 rings) and ``monkey`` Suzanne, both smooth-shaded;
    ``plane`` is 2×2 in z = 0; ``cube`` keeps the factory cube."""
    if name == "cube":
        return
    bpy.data.objects.remove(bpy.data.objects["Cube"], do_unlink=True)
    if name == "uv_sphere":
        bpy.ops.mesh.primitive_uv_sphere_add(segments=32, ring_count=16, radius=1.0)
    elif name == "monkey":
        bpy.ops.mesh.primitive_monkey_add(size=2.0)
    else:
        bpy.ops.mesh.primitive_plane_add(size=2.0)
    if name in ("uv_sphere", "monkey"):
        bpy.ops.object.shade_smooth()
