"""BOP dataset (bop_toolkit's format): ``bop/`` with one scene folder per render folder.

Layout of ``out/bop/``:
    camera.json                 fx, fy, cx, cy, width, height, depth_scale (first view's)
    models/obj_NNNNNN.ply       each object's triangles, ASCII PLY, millimetres, vertex normals
    models/models_info.json     per obj_id: diameter (largest vertex distance), min_x/y/z,
                                size_x/y/z (mm)
    obj_ids.json                our table: obj_id -> source file, object, scale (kept and
                                extended by later exports into the same folder)
    train_pbr/SSSSSS/           scene SSSSSS (the scene folder's number, else its position)
        scene_camera.json       per image id: cam_K (row-major, OpenCV pixel centres),
                                cam_R_w2c, cam_t_w2c (mm), depth_scale
        scene_gt.json           per image id: list of obj_id, cam_R_m2c, cam_t_m2c (mm)
        scene_gt_info.json      per image id, same order: bbox_obj, bbox_visib ([x, y, w, h],
                                -1s when empty), px_count_all, px_count_valid, px_count_visib,
                                visib_fract (= visib / all; 0 when all is 0)
        rgb/IIIIII.png          the RGB render, when rendered
        depth/IIIIII.png        uint16: depth_mm = value * depth_scale, 0 = no surface
        mask/IIIIII_GGGGGG.png  amodal mask of gt GGGGGG (its index in scene_gt), 0 / 255
        mask_visib/IIIIII_GGGGGG.png  its visible pixels (the exact instance pass), 0 / 255

Units: scene units are metres, so mm = 1000 x scene units. Model frame: the instance's
local frame made rigid (polar decomposition of its object_to_world; the scale stays in
the vertices), moved to the centre of the model's 3D bounding box (BOP's convention).
An obj_id is one (source file, object, scale) triple: the same file placed at another
scale is another BOP object, since BOP poses carry no scale.
"""

from __future__ import annotations

import json
import re
import shutil
from collections.abc import Sequence
from pathlib import Path

import cv2
import numpy as np

from blendtruth.errors import BlendtruthError
from blendtruth.exports import FOLDER, ExportFormat
from blendtruth.exports.annotated import annotated, image_file, instance_table, views
from blendtruth.exports.png16 import MAX_COUNT
from blendtruth.exports.source import RenderFolder, read_json
from blendtruth.instances import mask_box
from blendtruth.writers.atomic import write_bytes
from blendtruth.writers.meshfile import read_mesh_ply

MM = 1000.0  # millimetres per scene unit (metre)
MAX_ID = 999_999  # BOP's six-digit image, gt and object ids
SPLIT = "train_pbr"


def rigid(object_to_world: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(R 3×3 rotation, t 3) of the polar decomposition M = R·S of the linear part."""
    u, _, vt = np.linalg.svd(object_to_world[:3, :3])
    r = u @ vt
    if np.linalg.det(r) < 0:
        r = u @ np.diag([1.0, 1.0, -1.0]) @ vt
    return r, object_to_world[:3, 3].copy()


def object_key(row: dict) -> str:
    """'source|object|scale' naming a BOP object (placement prefix pNNN. dropped)."""
    m = np.array(row["object_to_world"], dtype=np.float64)
    scale = np.linalg.svd(m[:3, :3], compute_uv=False)
    name = re.sub(r"^p\d+\.", "", row["object"])
    return f"{row['source']}|{name}|{','.join(f'{s:.6g}' for s in scale)}"


def depth_scale_for(max_mm: float, scale: float | str) -> float:
    """``auto``: the finest 0.1 x 10^k mm per count that holds ``max_mm``."""
    if scale == "auto":
        scale = 0.1
        while MAX_COUNT * scale < max_mm:
            scale *= 10
        return scale
    if not (isinstance(scale, int | float) and np.isfinite(scale) and scale > 0):
        raise BlendtruthError(f"--bop-depth-scale must be a number > 0 or 'auto', got {scale!r}")
    if MAX_COUNT * scale < max_mm:
        raise BlendtruthError(
            f"--bop-depth-scale {scale}: the farthest depth, {max_mm:.1f} mm, needs more "
            f"than uint16 counts; use >= {max_mm / MAX_COUNT:.4g} or auto"
        )
    return float(scale)


def _png(path: Path, image: np.ndarray) -> Path:
    ok, buf = cv2.imencode(".png", image)
    if not ok:
        raise BlendtruthError(f"{path}: could not encode PNG")
    write_bytes(path, buf.tobytes(), durable=False)
    return path


def _json(path: Path, data) -> Path:
    write_bytes(path, (json.dumps(data, indent=1) + "\n").encode())
    return path


def vertex_normals(vertices: np.ndarray, faces: np.ndarray) -> np.ndarray:
    """Unit V×3 normals: the area-weighted sum of the incident faces' normals."""
    tri = vertices[faces]
    face = np.cross(tri[:, 1] - tri[:, 0], tri[:, 2] - tri[:, 0])
    out = np.zeros_like(vertices)
    for k in range(3):
        np.add.at(out, faces[:, k], face)
    length = np.linalg.norm(out, axis=1, keepdims=True)
    return np.divide(out, length, out=np.zeros_like(out), where=length > 0)


def write_model(path: Path, vertices: np.ndarray, faces: np.ndarray) -> dict:
    """ASCII PLY (x y z nx ny nz, mm) and its models_info.json entry."""
    normals = vertex_normals(vertices, faces)
    lines = [
        "ply", "format ascii 1.0", "comment blendtruth BOP model, millimetres",
        f"element vertex {len(vertices)}",
        *(f"property float {c}" for c in ("x", "y", "z", "nx", "ny", "nz")),
        f"element face {len(faces)}", "property list uchar int vertex_indices", "end_header",
    ]  # fmt: skip
    rows = [" ".join(f"{x:.6f}" for x in v) for v in np.hstack([vertices, normals])]
    rows += [f"3 {a} {b} {c}" for a, b, c in faces.tolist()]
    write_bytes(path, ("\n".join(lines + rows) + "\n").encode())
    lo, hi = vertices.min(axis=0), vertices.max(axis=0)
    return {
        "diameter": diameter(vertices),
        **{f"min_{c}": float(lo[i]) for i, c in enumerate("xyz")},
        **{f"size_{c}": float(hi[i] - lo[i]) for i, c in enumerate("xyz")},
    }


def diameter(vertices: np.ndarray) -> float:
    """Largest distance between two vertices (mm); blockwise, so memory stays bounded."""
    pts = np.unique(vertices, axis=0)
    best = 0.0
    for start in range(0, len(pts), 1024):  # bounded memory
        d = np.linalg.norm(pts[start : start + 1024, None] - pts[None], axis=2)
        best = max(best, float(d.max()))
    return best


def instance_meshes(folder: RenderFolder) -> dict[int, tuple[np.ndarray, np.ndarray]]:
    """World (vertices, faces) of each instance id from mesh.ply and mesh_instance.npy."""
    ids_path, mesh_path = folder.layout.mesh_instance_npy, folder.layout.mesh_ply
    if not mesh_path.is_file() or not ids_path.is_file():
        raise BlendtruthError(
            f"{folder.path}: no mesh.ply with mesh_instance.npy; export bop needs the "
            "models' triangles (re-render with this version)"
        )
    vertices, faces = read_mesh_ply(mesh_path)
    face_ids = np.load(ids_path, allow_pickle=False)
    if face_ids.shape != (len(faces),):
        raise BlendtruthError(f"{ids_path}: {face_ids.shape} ids for {len(faces)} faces")
    out = {}
    for inst in np.unique(face_ids).tolist():
        sel = faces[face_ids == inst]
        used, local = np.unique(sel, return_inverse=True)
        out[inst] = (vertices[used], local.reshape(-1, 3))
    return out


class ObjectTable:
    """obj_id per object key, models written once (see the module docstring)."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.path = root / "obj_ids.json"
        self.rows: dict[str, dict] = {}
        if self.path.is_file():
            for row in read_json(self.path).get("objects", []):
                self.rows[row["key"]] = row
        info_path = root / "models" / "models_info.json"
        self.info = read_json(info_path) if info_path.is_file() else {}

    def reserve(self, keys: set[str]) -> None:
        """Give new keys their obj_ids in sorted order (sources' paths first), so ids do
        not depend on which scene met an object first."""
        top = max((x["obj_id"] for x in self.rows.values()), default=0)
        for key in sorted(keys - set(self.rows)):
            top += 1
            if top > MAX_ID:
                raise BlendtruthError(f"export bop: more than {MAX_ID} objects")
            self.rows[key] = {"obj_id": top, "key": key}

    def model_pose(self, row: dict, meshes: dict) -> tuple[int, np.ndarray]:
        """(obj_id, 4×4 model -> world in mm) of an instance row; writes its model once."""
        key = object_key(row)
        r, t = rigid(np.array(row["object_to_world"], dtype=np.float64))
        if row["id"] not in meshes:
            raise BlendtruthError(f"{self.root}: instance {row['id']} has no triangles")
        world, faces = meshes[row["id"]]
        local = (world - t) @ r  # R^T (w - t), row vectors
        centre = (local.min(axis=0) + local.max(axis=0)) / 2
        self.reserve({key})
        if "model" not in self.rows[key]:
            obj_id = self.rows[key]["obj_id"]
            name = f"obj_{obj_id:06d}.ply"
            (self.root / "models").mkdir(parents=True, exist_ok=True)
            self.info[str(obj_id)] = write_model(
                self.root / "models" / name, (local - centre) * MM, faces
            )
            self.rows[key].update(
                source=row["source"], object=row["object"], model=f"models/{name}"
            )
        pose = np.eye(4)
        pose[:3, :3], pose[:3, 3] = r, (t + r @ centre) * MM
        return self.rows[key]["obj_id"], pose

    def save(self) -> list[Path]:
        rows = sorted(self.rows.values(), key=lambda x: x["obj_id"])
        note = "obj_id per (source, object, scale); models in mm, origin at the bbox centre"
        (self.root / "models").mkdir(parents=True, exist_ok=True)
        return [
            _json(self.path, {"note": note, "objects": rows}),
            _json(self.root / "models" / "models_info.json", self.info),
        ]


def scene_id(folder: RenderFolder, index: int) -> int:
    return int(folder.model_id) if folder.model_id.isdigit() else index


def export_bop(
    folders: Sequence[RenderFolder],
    out: Path,
    bop_depth_scale: float | str = "auto",
    distractors: bool = False,
) -> list[Path]:
    """Write ``out/bop/`` for ``folders`` (see the module docstring)."""
    root = Path(out) / "bop"
    root.mkdir(parents=True, exist_ok=True)
    table = ObjectTable(root)
    written: list[Path] = []
    max_mm = max(float(v.depth.max()) for f in folders for _, v in f.views()) * MM
    scale = depth_scale_for(max_mm, bop_depth_scale)
    camera = None
    rows_by_folder = [annotated(instance_table(f, "bop"), distractors) for f in folders]
    table.reserve({object_key(r) for rows in rows_by_folder for r in rows})
    for index, (folder, rows) in enumerate(zip(folders, rows_by_folder, strict=True)):
        meshes = instance_meshes(folder)
        scene = root / SPLIT / f"{scene_id(folder, index):06d}"
        for sub in ("rgb", "depth", "mask", "mask_visib"):
            (scene / sub).mkdir(parents=True, exist_ok=True)
        poses = {r["id"]: table.model_pose(r, meshes) for r in rows}
        if len(folder.names) > MAX_ID + 1 or len(rows) > MAX_ID + 1:
            raise BlendtruthError(f"{folder.path}: more than {MAX_ID + 1} views or objects")
        cams, gts, infos = {}, {}, {}
        for im_id, view in enumerate(views(folder, "bop", need_amodal=True)):
            if view.model != "pinhole":
                raise BlendtruthError(
                    f"{folder.view_path(view.name)}: export bop needs a pinhole camera, "
                    f"not {view.model}"
                )
            written += _image(scene, im_id, folder, view, scale)
            w2c = np.linalg.inv(view.cam_to_world)
            k_cv = view.K.astype(np.float64).copy()
            k_cv[:2, 2] -= 0.5
            cams[str(im_id)] = {
                "cam_K": k_cv.ravel().tolist(),
                "cam_R_w2c": w2c[:3, :3].ravel().tolist(),
                "cam_t_w2c": (w2c[:3, 3] * MM).tolist(),
                "depth_scale": scale,
            }
            if camera is None:
                height, width = view.depth.shape
                camera = {"cx": k_cv[0, 2], "cy": k_cv[1, 2], "fx": k_cv[0, 0],
                          "fy": k_cv[1, 1], "width": width, "height": height,
                          "depth_scale": scale}  # fmt: skip
            gts[str(im_id)], infos[str(im_id)] = [], []
            for gt_id, row in enumerate(rows):
                obj_id, m2w = poses[row["id"]]
                m2c = w2c.copy()
                m2c[:3, 3] *= MM
                m2c = m2c @ m2w
                gts[str(im_id)].append({
                    "cam_R_m2c": m2c[:3, :3].ravel().tolist(),
                    "cam_t_m2c": m2c[:3, 3].tolist(),
                    "obj_id": obj_id,
                })  # fmt: skip
                full = view.amodal.get(row["id"], np.zeros_like(view.instance, bool))
                seen = view.instance == row["id"]
                infos[str(im_id)].append(_gt_info(full, seen, view.depth))
                stem = f"{im_id:06d}_{gt_id:06d}.png"
                written.append(_png(scene / "mask" / stem, full.astype(np.uint8) * 255))
                written.append(_png(scene / "mask_visib" / stem, seen.astype(np.uint8) * 255))
        written += [
            _json(scene / "scene_camera.json", cams),
            _json(scene / "scene_gt.json", gts),
            _json(scene / "scene_gt_info.json", infos),
        ]
    written += table.save()
    written.append(_json(root / "camera.json", camera))
    return written


def _gt_info(full: np.ndarray, seen: np.ndarray, depth: np.ndarray) -> dict:
    all_, visib = int(full.sum()), int(seen.sum())
    return {
        "bbox_obj": mask_box(full) or [-1, -1, -1, -1],
        "bbox_visib": mask_box(seen) or [-1, -1, -1, -1],
        "px_count_all": all_,
        "px_count_valid": int((full & (depth > 0)).sum()),
        "px_count_visib": visib,
        "visib_fract": visib / all_ if all_ else 0.0,
    }


def _image(scene: Path, im_id: int, folder: RenderFolder, view, scale: float) -> list[Path]:
    """rgb (copied) and depth PNGs of one image."""
    out = []
    rgb = image_file(folder, view.name)
    if rgb is not None:
        target = scene / "rgb" / f"{im_id:06d}.png"
        shutil.copyfile(rgb, target)
        out.append(target)
    counts = np.rint(view.depth.astype(np.float64) * MM / scale)
    counts[(view.depth > 0) & (counts < 1)] = 1
    out.append(_png(scene / "depth" / f"{im_id:06d}.png", counts.astype(np.uint16)))
    return out


FORMAT = ExportFormat(
    "bop",
    export_bop,
    scope=FOLDER,
    needs=("depth", "mask", "instance"),
    writes=("bop",),
    doc="BOP dataset: a scene folder per render folder, object models, exact masks",
)
