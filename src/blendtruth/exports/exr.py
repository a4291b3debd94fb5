"""OpenEXR export: one float32 EXR per view with every metric pass.

``exr/NNNN.exr``: scanline, ZIP-compressed (lossless), float32 channels, rows top-down:
    depth                       planar depth (camera z), scene units, 0 = no surface
    distance                    ray length from the camera centre, scene units, 0 = no surface
    normal.X, normal.Y, normal.Z  unit normal, camera frame, OpenCV axes (x right, y down,
                                z forward), facing the camera; 0 where no surface
    mask                        1.0 where a surface is hit at the pixel centre, else 0.0
    <pass>, <pass>.X/.Y/.Z      every further H×W or H×W×3 array of the view file (e.g.
                                ``position``, ``normal_geometric``) as float32, and integer
                                H×W passes (e.g. ``instance``) as uint32; ``rgb`` and
                                ``alpha`` are left to the PNGs
Header string attributes: ``blendtruth_K`` (K, pixel centres at +0.5), ``blendtruth_K_opencv``,
``blendtruth_cam_to_world`` (4×4, OpenCV axes), all as JSON.
"""

from __future__ import annotations

import contextlib
import json
import os
from pathlib import Path

import numpy as np

from blendtruth.exports import ExportFormat
from blendtruth.exports.source import RenderFolder

EXR_DIR = "exr"
CHANNELS = ("depth", "distance", "normal.X", "normal.Y", "normal.Z", "mask")


def export_exr(folder: RenderFolder, out: Path) -> list[Path]:
    """Write ``out/exr/NNNN.exr`` for every view of ``folder``."""
    import OpenEXR

    (Path(out) / EXR_DIR).mkdir(parents=True, exist_ok=True)
    written = []
    for name, view in folder.views():
        f32 = np.float32
        channels = {
            "depth": view.depth.astype(f32),
            "distance": view.distance.astype(f32),
            "normal.X": np.ascontiguousarray(view.normal[..., 0], dtype=f32),
            "normal.Y": np.ascontiguousarray(view.normal[..., 1], dtype=f32),
            "normal.Z": np.ascontiguousarray(view.normal[..., 2], dtype=f32),
            "mask": view.mask.astype(f32),
        }
        channels.update(_extra_channels(view.extra, view.camera.height, view.camera.width))
        header = {
            "compression": OpenEXR.ZIP_COMPRESSION,
            "type": OpenEXR.scanlineimage,
            "blendtruth_K": json.dumps(view.K.tolist()),
            "blendtruth_K_opencv": json.dumps(view.camera.intrinsics.K_opencv.tolist()),
            "blendtruth_cam_to_world": json.dumps(view.cam_to_world.tolist()),
        }
        path = Path(out) / EXR_DIR / f"{name}.exr"
        _write_atomic(path, lambda p, h=header, c=channels: OpenEXR.File(h, c).write(str(p)))
        written.append(path)
    return written


def _write_atomic(path: Path, write) -> None:
    # OpenEXR writes to a file name, so write a hidden temporary one and rename it.
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp.exr")
    try:
        write(tmp)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def _extra_channels(extra: dict[str, np.ndarray], height: int, width: int) -> dict[str, np.ndarray]:
    """Further per-pixel passes (``View.extra``): H×W and H×W×3 floats as float32, integer
    H×W as uint32; arrays of another shape (the packed amodal masks) are left out."""
    out = {}
    for key, value in extra.items():
        if value.shape[:2] != (height, width):
            continue
        if value.ndim == 2 and np.issubdtype(value.dtype, np.integer) and value.min() >= 0:
            out[key] = value.astype(np.uint32)
        elif value.ndim == 2 and np.issubdtype(value.dtype, np.floating):
            out[key] = value.astype(np.float32)
        elif value.ndim == 3 and value.shape[2] == 3 and np.issubdtype(value.dtype, np.floating):
            for k, axis in enumerate("XYZ"):
                out[f"{key}.{axis}"] = np.ascontiguousarray(value[..., k], dtype=np.float32)
    return out


FORMAT = ExportFormat(
    "exr",
    export_exr,
    writes=(EXR_DIR,),
    doc="one float32 OpenEXR per view with every metric pass",
)
