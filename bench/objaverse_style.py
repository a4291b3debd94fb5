"""The objaverse-style baseline: one fresh Blender process per model, Cycles at 1 sample
with Z and Normal passes written to a multilayer EXR per view (no numpy conversion).

Run: python bench/objaverse_style.py MODEL OUT_DIR VIEWS SIZE
"""

from __future__ import annotations

import math
import sys
from pathlib import Path

import bpy
from mathutils import Vector


def main() -> None:
    model, out, views, size = (
        Path(sys.argv[1]),
        Path(sys.argv[2]),
        int(sys.argv[3]),
        int(sys.argv[4]),
    )
    out.mkdir(parents=True, exist_ok=True)
    bpy.ops.wm.read_factory_settings(use_empty=True)
    ext = model.suffix.lower()
    if ext == ".obj":
        bpy.ops.wm.obj_import(filepath=str(model))
    elif ext == ".ply":
        bpy.ops.wm.ply_import(filepath=str(model))
    elif ext == ".stl":
        bpy.ops.wm.stl_import(filepath=str(model))
    else:
        bpy.ops.import_scene.gltf(filepath=str(model))
    meshes = [o for o in bpy.context.scene.objects if o.type == "MESH"]
    corners = [o.matrix_world @ Vector(c) for o in meshes for c in o.bound_box]
    lo = Vector([min(c[i] for c in corners) for i in range(3)])
    hi = Vector([max(c[i] for c in corners) for i in range(3)])
    center, radius = (lo + hi) / 2, max((hi - lo).length / 2, 1e-9)
    scene = bpy.context.scene
    cam = bpy.data.objects.new("Camera", bpy.data.cameras.new("Camera"))
    scene.collection.objects.link(cam)
    scene.camera = cam
    track = cam.constraints.new("TRACK_TO")
    target = bpy.data.objects.new("Target", None)
    scene.collection.objects.link(target)
    target.location = center
    track.target = target
    scene.render.engine = "CYCLES"
    scene.cycles.samples = 1
    scene.cycles.use_denoising = False
    scene.cycles.max_bounces = 0
    scene.render.resolution_x = scene.render.resolution_y = size
    scene.render.film_transparent = True
    scene.render.use_persistent_data = True
    layer = bpy.context.view_layer
    layer.use_pass_z = True
    layer.use_pass_normal = True
    scene.render.image_settings.file_format = "OPEN_EXR_MULTILAYER"
    distance = radius / math.tan(math.radians(25)) / 0.8
    for i in range(views):
        azimuth = 2 * math.pi * i / views
        cam.location = center + distance * Vector(
            (math.cos(azimuth) * math.cos(0.5), math.sin(azimuth) * math.cos(0.5), math.sin(0.5))
        )
        scene.render.filepath = str(out / f"{i:03d}.exr")
        bpy.ops.render.render(write_still=True)


if __name__ == "__main__":
    main()
