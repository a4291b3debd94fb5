"""Import model files into Blender, in the model file's own coordinates.

Blender's importers convert Y-up formats to its Z-up world; here that is turned off (OBJ)
or undone (glTF, which bakes the rotation into the import), so a point in the world frame
is the same point trimesh or Open3D read from the file.
"""

from __future__ import annotations

import contextlib
import io
import os
import tempfile
import warnings
from collections.abc import Iterator
from pathlib import Path

import numpy as np

from blendtruth.blender import compat
from blendtruth.blender._bpy import bpy
from blendtruth.errors import BlendtruthError, BlendtruthWarning
from blendtruth.geometry.pointcloud import bounding_box
from blendtruth.inputs.refs import check_regular
from blendtruth.models import check_model_file

# A face whose area is below this fraction of the squared model size is degenerate.
_DEGENERATE_AREA = 1e-14

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
            message = (
                import_error_reason(str(exc)) or import_error_reason(log()) or "no reason given"
            )
            raise BlendtruthError(f"{path}: Blender could not import it ({message})") from None
    new = [obj for obj in bpy.data.objects if obj not in before]
    if ext in (".glb", ".gltf"):
        for obj in new:
            if obj.parent is None:
                obj.matrix_world = (_BLENDER_TO_YUP @ np.array(obj.matrix_world)).T.tolist()
    bpy.context.view_layer.update()
    _check_transforms(path, new)
    _check_geometry(path, new)
    _refuse_special_images(path, before_images)
    for texture in _unreadable_textures(before_images):
        warnings.warn(
            f"{path}: texture {texture} cannot be read; the RGB image shows Blender's "
            "magenta there (depth, normals and masks are unaffected)",
            BlendtruthWarning,
            stacklevel=2,
        )
    return new


def _refuse_special_images(path: Path, before: set) -> None:
    """Refuse images that name a FIFO, device or folder before anything reads their pixels
    (formats whose references :mod:`blendtruth.inputs` does not parse: .blend, FBX, USD)."""
    for image in bpy.data.images:
        if image in before or image.source != "FILE" or image.packed_file is not None:
            continue
        check_regular(path, "texture", Path(bpy.path.abspath(image.filepath)))


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
    lo, hi, largest_area = np.full(3, np.inf), np.full(3, -np.inf), 0.0
    for obj in meshes:
        co = np.empty(len(obj.data.vertices) * 3, dtype=np.float32)
        obj.data.vertices.foreach_get("co", co)
        if not np.isfinite(co).all():
            raise BlendtruthError(f"{path}: object {obj.name!r} has NaN or infinite vertices")
        if len(co):
            co = co.reshape(-1, 3).astype(np.float64)
            box = bounding_box(co)
            lo, hi = np.minimum(lo, box[0]), np.maximum(hi, box[1])
        area = np.empty(len(obj.data.polygons), dtype=np.float32)
        obj.data.polygons.foreach_get("area", area)
        if len(area):
            largest_area = max(largest_area, float(area.max()))
    # Faces of zero area are invisible to every ray: such a model renders as nothing.
    size = float(np.linalg.norm(hi - lo)) if np.isfinite(lo).all() else 0.0
    if not largest_area > _DEGENERATE_AREA * size * size and not _any_face_in_float64(
        meshes, _DEGENERATE_AREA * size * size
    ):
        raise BlendtruthError(
            f"{path}: nothing to render: all {n_faces} faces are degenerate (zero area)"
        )


def _check_transforms(path: Path, objects: list) -> None:
    for obj in objects:
        if not np.isfinite(np.array(obj.matrix_world, dtype=np.float64)).all():
            raise BlendtruthError(f"{path}: object {obj.name!r} has a NaN or infinite transform")


def _any_face_in_float64(meshes: list, threshold: float) -> bool:
    """Whether a triangle's area, computed in float64, exceeds ``threshold``: Blender's
    float32 face areas underflow for models of 1e-20 units and overflow near 1e19."""
    for obj in meshes:
        mesh = obj.data
        mesh.calc_loop_triangles()
        tris = np.empty(len(mesh.loop_triangles) * 3, dtype=np.int64)
        mesh.loop_triangles.foreach_get("vertices", tris)
        co = np.empty(len(mesh.vertices) * 3, dtype=np.float32)
        mesh.vertices.foreach_get("co", co)
        p = co.reshape(-1, 3).astype(np.float64)[tris.reshape(-1, 3)]
        with np.errstate(all="ignore"):
            area = 0.5 * np.linalg.norm(np.cross(p[:, 1] - p[:, 0], p[:, 2] - p[:, 0]), axis=1)
        if len(area) and np.nanmax(area, initial=0.0) > threshold:
            return True
    return False


def import_error_reason(text: str) -> str:
    """The one line that says why an import failed: for a Python traceback (the glTF and
    FBX importers are Python add-ons) the exception line, else the first line."""
    lines = [line.rstrip() for line in text.splitlines() if line.strip()]
    if any("Traceback (most recent call last)" in line for line in lines):
        # Frames and source lines are indented; the exception line is not.
        tail = [
            line
            for line in lines
            if not line[0].isspace()
            and "Traceback (most recent call last)" not in line
            and not line.lower().startswith("location:")
        ]
        return tail[-1] if tail else "a Python error in Blender's importer"
    return lines[0].strip().removeprefix("Error: ") if lines else ""


@contextlib.contextmanager
def _captured_output() -> Iterator:
    """Capture fd 1 and 2 while an importer runs (it prints progress and errors there),
    and Python's sys.stdout/sys.stderr where they are not those descriptors (the glTF
    add-on prints its tracebacks there); yields a function returning what was printed."""
    text = io.StringIO()
    with (
        tempfile.TemporaryFile() as tmp,
        compat.redirected_output(tmp.fileno(), (1, 2)),
        contextlib.redirect_stdout(text),
        contextlib.redirect_stderr(text),
    ):
        yield lambda: (tmp.seek(0), tmp.read().decode(errors="replace") + text.getvalue())[1]


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
    try:
        with bpy.data.libraries.load(str(path), link=False) as (src, dst):
            dst.objects = list(src.objects)
    except OSError as exc:
        # Blender's text repeats the path: "load: PATH failed to open blend file" or
        # "Error: Failed to read blend file 'PATH': Missing DNA block".
        text = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
        reason = text.rsplit("': ", 1)[-1] if "': " in text else "failed to open blend file"
        raise BlendtruthError(f"{path}: not a .blend file Blender can read ({reason})") from None
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
