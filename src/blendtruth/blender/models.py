"""Import model files into Blender, in the model file's own coordinates.

Blender's importers convert Y-up formats to its Z-up world; here that is turned off (OBJ)
or undone (glTF, which bakes the rotation into the import), so a point in the world frame
is the same point trimesh or Open3D read from the file.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
import warnings
from collections.abc import Iterator
from pathlib import Path

import numpy as np

from blendtruth.blender import compat
from blendtruth.blender._bpy import bpy
from blendtruth.errors import BlendtruthError, BlendtruthWarning
from blendtruth.models import check_model_file

# glTF's importer maps file (x, y, z) to Blender (x, -z, y); this maps it back.
_BLENDER_TO_YUP = np.array(
    [[1.0, 0.0, 0.0, 0.0], [0.0, 0.0, 1.0, 0.0], [0.0, -1.0, 0.0, 0.0], [0.0, 0.0, 0.0, 1.0]]
)


def import_model(path: Path) -> list:
    """Import one model file; return its new objects. Raises BlendtruthError naming the file."""
    path = Path(path)
    check_model_file(path)
    ext = path.suffix.lower()
    before = set(bpy.data.objects)
    before_images = set(bpy.data.images)
    with _captured_output() as log:
        try:
            _IMPORTERS[ext](path)
        except (RuntimeError, OSError) as exc:  # a bad .blend raises OSError
            message = _first_error_line(str(exc)) or _first_error_line(log())
            raise BlendtruthError(f"{path}: Blender could not import it ({message})") from None
    new = [obj for obj in bpy.data.objects if obj not in before]
    if ext in (".glb", ".gltf"):
        for obj in new:
            if obj.parent is None:
                obj.matrix_world = (_BLENDER_TO_YUP @ np.array(obj.matrix_world)).T.tolist()
    bpy.context.view_layer.update()
    _check_geometry(path, new)
    for texture in _unreadable_textures(before_images):
        warnings.warn(
            f"{path}: texture {texture} cannot be read; the RGB image shows Blender's "
            "magenta there (depth, normals and masks are unaffected)",
            BlendtruthWarning,
            stacklevel=2,
        )
    return new


def _unreadable_textures(before: set) -> list[str]:
    """File-backed images added by an import whose pixels cannot be loaded."""
    missing = []
    for image in bpy.data.images:
        if image in before or image.source != "FILE" or image.packed_file is not None:
            continue
        if not os.path.isfile(bpy.path.abspath(image.filepath)) or image.size[0] == 0:
            missing.append(repr(os.path.normpath(bpy.path.abspath(image.filepath))))
    return missing


def _check_geometry(path: Path, objects: list) -> None:
    meshes = [obj for obj in objects if obj.type == "MESH"]
    n_faces = sum(len(obj.data.polygons) for obj in meshes)
    if n_faces == 0:
        n_verts = sum(len(obj.data.vertices) for obj in meshes)
        what = (
            "no geometry at all"
            if n_verts == 0
            else f"{n_verts} vertices but no faces (a point cloud or lines)"
        )
        raise BlendtruthError(f"{path}: nothing to render: {what}")
    for obj in meshes:
        co = np.empty(len(obj.data.vertices) * 3, dtype=np.float32)
        obj.data.vertices.foreach_get("co", co)
        if not np.isfinite(co).all():
            raise BlendtruthError(f"{path}: object {obj.name!r} has NaN or infinite vertices")


def _first_error_line(text: str) -> str:
    for line in text.splitlines():
        line = line.strip()
        if line:
            return line.removeprefix("Error: ")
    return "no reason given"


@contextlib.contextmanager
def _captured_output() -> Iterator:
    """Capture fd 1 and 2 while an importer runs (it prints progress and errors there);
    yields a function returning what was printed."""
    with tempfile.TemporaryFile() as tmp, compat.redirected_output(tmp.fileno(), (1, 2)):
        yield lambda: (tmp.seek(0), tmp.read().decode(errors="replace"))[1]


def _import_obj(path: Path) -> None:
    bpy.ops.wm.obj_import(filepath=str(path), forward_axis="Y", up_axis="Z")


def _import_gltf(path: Path) -> None:
    bpy.ops.import_scene.gltf(filepath=str(path))


def _import_fbx(path: Path) -> None:
    bpy.ops.import_scene.fbx(filepath=str(path), axis_forward="-Y", axis_up="Z")


def _import_dae(path: Path) -> None:
    if not hasattr(bpy.ops.wm, "collada_import") or compat.VERSION >= (5, 0, 0):
        raise BlendtruthError(
            f"{path}: COLLADA (.dae) import was removed in Blender 5.0; use bpy 4.5 "
            f"(this is {compat.VERSION_STRING})"
        )
    bpy.ops.wm.collada_import(filepath=str(path))


def _import_blend(path: Path) -> None:
    with bpy.data.libraries.load(str(path), link=False) as (src, dst):
        dst.objects = list(src.objects)
    for obj in dst.objects:
        if obj is not None and obj.type not in ("CAMERA", "LIGHT"):
            bpy.context.scene.collection.objects.link(obj)


_IMPORTERS = {
    ".obj": _import_obj,
    ".ply": lambda p: bpy.ops.wm.ply_import(filepath=str(p)),
    ".stl": lambda p: bpy.ops.wm.stl_import(filepath=str(p)),
    ".glb": _import_gltf,
    ".gltf": _import_gltf,
    ".fbx": _import_fbx,
    ".dae": _import_dae,
    ".usd": lambda p: bpy.ops.wm.usd_import(filepath=str(p)),
    ".usda": lambda p: bpy.ops.wm.usd_import(filepath=str(p)),
    ".usdc": lambda p: bpy.ops.wm.usd_import(filepath=str(p)),
    ".usdz": lambda p: bpy.ops.wm.usd_import(filepath=str(p)),
    ".blend": _import_blend,
}
