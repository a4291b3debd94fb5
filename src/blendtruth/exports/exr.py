"""OpenEXR export: one float32 EXR per view with every metric pass.

``exr/NNNN.exr``: scanline, ZIP-compressed (lossless), float32 channels, rows top-down:
    depth                       planar depth (camera z), scene units, 0 = no surface
    distance                    ray length from the camera centre, scene units, 0 = no surface
    normal.X, normal.Y, normal.Z  unit normal, camera frame, OpenCV axes (x right, y down,
                                z forward), facing the camera; 0 where no surface
    mask                        1.0 where a surface is hit at the pixel centre, else 0.0
    <pass>, <pass>.U/.V,        every further per-pixel pass of the view file: H×W floats
    <pass>.X/.Y/.Z              and H×W×3 (``position``, ``normal_geometric``) as float32,
                                H×W×2 (``uv``) as .U/.V float32, flags (``boundary``,
                                ``transparent``) as float32 1.0/0.0, integer H×W passes
                                (``instance``) as uint32 (signed ones as exact float32);
                                ``rgb`` and ``alpha`` are left to the PNGs; anything else
                                (e.g. bit-packed amodal masks) is named in one warning
Header string attributes: ``blendtruth_K`` (K, pixel centres at +0.5), ``blendtruth_K_opencv``,
``blendtruth_cam_to_world`` (4×4, OpenCV axes), all as JSON.
"""

from __future__ import annotations

import contextlib
import json
import os
import warnings
from pathlib import Path

import numpy as np

from blendtruth.errors import BlendtruthWarning
from blendtruth.exports import ExportFormat
from blendtruth.exports.source import RenderFolder

EXR_DIR = "exr"
CHANNELS = ("depth", "distance", "normal.X", "normal.Y", "normal.Z", "mask")


def export_exr(folder: RenderFolder, out: Path) -> list[Path]:
    """Write ``out/exr/NNNN.exr`` for every view of ``folder``."""
    import OpenEXR

    (Path(out) / EXR_DIR).mkdir(parents=True, exist_ok=True)
    written = []
    left_out: set[str] = set()
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
        extra, skipped = _extra_channels(view.extra, view.camera.height, view.camera.width)
        channels.update(extra)
        left_out |= skipped
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
    if left_out:
        warnings.warn(
            f"exr: {folder.path.name}: left out {', '.join(sorted(left_out))} (not per-pixel "
            "arrays EXR can hold; they stay in views/NNNN.npz)",
            BlendtruthWarning,
            stacklevel=2,
        )
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


_STANDARD = {"depth", "distance", "normal", "mask", "rgb", "alpha", "K", "cam_to_world", "meta"}
# Component suffixes of H×W×C float passes, by C.
_AXES = {2: "UV", 3: "XYZ"}
_EXACT_FLOAT = 2**24  # integers of at most this magnitude are exact in float32


def _extra_channels(
    extra: dict[str, np.ndarray], height: int, width: int
) -> tuple[dict[str, np.ndarray], set[str]]:
    """Further per-pixel passes as EXR channels, and the names of those EXR cannot hold.

    H×W floats and flags (bool: 1.0/0.0) as float32; integer H×W as uint32 when >= 0, else
    float32 when exact (|v| <= 2^24); H×W×2 floats (``uv``) as ``<pass>.U/.V`` and H×W×3 as
    ``<pass>.X/.Y/.Z``. Anything else (e.g. the bit-packed amodal masks) is returned as
    left out."""
    out: dict[str, np.ndarray] = {}
    left_out: set[str] = set()
    for key, value in extra.items():
        if key in _STANDARD:
            continue
        if value.shape[:2] != (height, width):
            left_out.add(key)
        elif value.ndim == 2 and value.dtype == np.bool_:
            out[key] = value.astype(np.float32)
        elif value.ndim == 2 and np.issubdtype(value.dtype, np.integer):
            lo, hi = (int(value.min()), int(value.max())) if value.size else (0, 0)
            if lo >= 0 and hi < 2**32:
                out[key] = value.astype(np.uint32)
            elif -_EXACT_FLOAT <= lo and hi <= _EXACT_FLOAT:
                out[key] = value.astype(np.float32)
            else:
                left_out.add(key)
        elif value.ndim == 2 and np.issubdtype(value.dtype, np.floating):
            out[key] = value.astype(np.float32)
        elif (
            value.ndim == 3 and value.shape[2] in _AXES and np.issubdtype(value.dtype, np.floating)
        ):
            for k, axis in enumerate(_AXES[value.shape[2]]):
                out[f"{key}.{axis}"] = np.ascontiguousarray(value[..., k], dtype=np.float32)
        else:
            left_out.add(key)
    return out, left_out


FORMAT = ExportFormat(
    "exr",
    export_exr,
    writes=(EXR_DIR,),
    doc="one float32 OpenEXR per view with every metric pass",
)
