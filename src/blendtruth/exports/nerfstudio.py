"""nerfstudio data from a render folder: a transforms.json its parser reads at its defaults.

nerfstudio's ``nerfstudio-data`` parser ignores ``depth_unit_scale_factor`` in
transforms.json and multiplies every depth file by its own option, default 1e-3 (depth
images in millimetres), for ``.npy`` files as for 16-bit PNGs. So the depth files here
hold depth in scene units × 1000:

    transforms.json          cameras (OpenGL axes, K unchanged: see writers/nerf.py),
                             ``file_path`` rgb/NNNN.png, ``mask_path`` mask/NNNN.png (255 =
                             surface; nerfstudio ignores black pixels), ``depth_file_path``
                             nerfstudio_depth/NNNN.npy, ``depth_unit_scale_factor`` 0.001
    nerfstudio_depth/NNNN.npy  float64 H×W planar depth × 1000 (scene units / 1000), 0 =
                             no surface. float64 holds float32 depth × 1000 exactly, so
                             × 1e-3 gives our float32 depth back (to float32 rounding of
                             the product in readers that compute in float32).

Each camera goes through its model's ``CameraModel.nerfstudio``: pinhole is OPENCV, a
fisheye of <= 180 deg is exactly OPENCV_FISHEYE with k1..k4 = 0, an equirect of W = 2H
exactly EQUIRECTANGULAR (their depth files then hold the ray distance, which is what
nerfstudio's unit-length rays for them need); ortho, other equirects and wider fisheyes
are refused with a one-line error before anything is written.

Without RGB there is no image to train on: transforms.json then has no ``file_path`` (no
stand-in image), keeps the cameras, depth and masks, and says so in its note; the
``export nerfstudio`` command refuses such a folder with a one-line error.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from blendtruth.errors import BlendtruthError
from blendtruth.exports import ExportFormat
from blendtruth.exports.source import RenderFolder
from blendtruth.geometry.camera_models import CannotExpress
from blendtruth.layout import RenderLayout
from blendtruth.writers.atomic import atomic_open
from blendtruth.writers.nerf import write_transforms_json

# nerfstudio's default depth_unit_scale_factor (nerfstudio-data parser config).
NERFSTUDIO_DEPTH_SCALE = 1e-3
DEPTH_DIR = "nerfstudio_depth"

_NOTE = (
    "transform_matrix is camera-to-world with OpenGL camera axes (x right, y up, z back); "
    "fl_x, fl_y, cx, cy are K's entries unchanged (pixel centres at +0.5, as nerfstudio and "
    "instant-ngp cast rays). depth_file_path: .npy float64 planar depth (camera z) in scene "
    "units x 1000, 0 = no surface, so nerfstudio's default depth scale 1e-3 gives scene "
    "units. mask_path: 255 = surface."
)
_NOTE_NO_RGB = _NOTE + (
    " This render has no RGB images (--no-rgb): frames have no file_path, so image-based "
    "trainers cannot use this file; it carries cameras, depth and masks."
)

_NOTE_PANORAMIC = (
    " Fisheye (camera_model OPENCV_FISHEYE, k1..k4 = 0) and equirectangular "
    "(EQUIRECTANGULAR, fl_x = fl_y = h) views are our models exactly: their depth files hold "
    "the ray distance, not camera z; nerfstudio's rays for them have unit length, so it "
    "reads them as such. A fisheye's mask_path is False outside its image circle."
)

_NOTE_NO_DEPTH = (
    " This file was written by `blendtruth render` without --export nerfstudio: frames have "
    "no depth_file_path (depth is in views/NNNN.npz and depth/NNNN.npy, float32 scene "
    "units); --export nerfstudio adds nerfstudio_depth/ and the paths."
)


def export_nerfstudio(folder: RenderFolder, out: Path, require_rgb: bool = True) -> list[Path]:
    """Write ``out/transforms.json`` and ``out/nerfstudio_depth/`` for ``folder``; paths in
    the JSON are relative to ``out``. ``require_rgb``: a folder without RGB is an error."""
    out = Path(out)
    views = list(folder.views())
    for name, view in views:  # refused before anything is written
        try:
            view.camera.projection.nerfstudio()
        except CannotExpress as exc:
            raise BlendtruthError(f"{folder.path}: view {name}: {exc}") from None
    rgb = folder.has_rgb
    if require_rgb and not rgb:
        raise BlendtruthError(
            f"{folder.path}: no RGB images (rendered with --no-rgb); nerfstudio trains on "
            "images, so render again without --no-rgb to export nerfstudio data"
        )
    (out / DEPTH_DIR).mkdir(parents=True, exist_ok=True)
    cameras, written = [], []
    for name, view in views:
        cameras.append(view.camera)
        written.append(write_nerfstudio_depth(out, name, view.depth))
    return written + [write_nerfstudio_transforms(out, folder.path, folder.names, cameras, rgb)]


def write_nerfstudio_depth(out: Path, name: str, depth: np.ndarray, durable: bool = True) -> Path:
    """``out/nerfstudio_depth/<name>.npy``: float64 depth × 1000 (see the module doc)."""
    path = _depth_path(out, name)
    with atomic_open(path, durable) as f:
        np.save(f, depth.astype(np.float64) * 1000.0)  # exact for float32 depth
    return path


def write_nerfstudio_transforms(
    out: Path, folder: Path, names, cameras: list, rgb: bool, depth: bool = True
) -> Path:
    """``out/transforms.json`` for the views ``names`` of render folder ``folder``;
    ``depth`` False: no ``depth_file_path`` (``render`` without ``--export nerfstudio``
    writes no ``nerfstudio_depth/`` copy)."""
    target = RenderLayout(out)
    base = RenderLayout(Path(folder).resolve())
    write_transforms_json(
        target.transforms_json,
        cameras,
        rgb_paths=[base.view(n).rgb for n in names] if rgb else None,
        depth_paths=[_depth_path(out, n).resolve() for n in names] if depth else None,
        mask_paths=[base.view(n).mask for n in names],
        depth_unit_scale_factor=NERFSTUDIO_DEPTH_SCALE,
        note=(_NOTE if rgb else _NOTE_NO_RGB)
        + ("" if depth else _NOTE_NO_DEPTH)
        + (_NOTE_PANORAMIC if any(c.projection.depth_is_distance for c in cameras) else ""),
    )
    return target.transforms_json


def _depth_path(out: Path, name: str) -> Path:
    return Path(out) / DEPTH_DIR / f"{name}.npy"


FORMAT = ExportFormat(
    "nerfstudio",
    export_nerfstudio,
    needs=("depth", "mask"),
    needs_rgb=True,
    writes=("transforms.json", DEPTH_DIR),
    doc="nerfstudio transforms.json with depth and masks",
)
