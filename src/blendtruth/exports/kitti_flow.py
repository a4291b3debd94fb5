"""KITTI optical-flow PNG (the KITTI 2012/2015 flow benchmark's ``flow_occ`` files).

16-bit RGB PNG (cv2 writes it as BGR): R = u * 64 + 2**15, G = v * 64 + 2**15 (rounded to
the nearest count), B = 1 where the flow is valid, 0 elsewhere (then R = G = 0). So the
step is 1/64 px, the quantisation error at most 1/128 px, and the range
[-512, 512 - 1/64] px; a valid flow outside it cannot be stored and is refused (not
clipped). (u, v) is our ``flow``: pixels from frame t to s, u right, v down.
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from blendtruth.errors import BlendtruthError
from blendtruth.exports import ExportFormat
from blendtruth.writers.atomic import write_bytes

SCALE = 64.0
ZERO = 2**15
LIMIT = (ZERO - 0.5) / SCALE  # the largest |flow| that rounds into uint16


def encode_kitti(flow: np.ndarray, valid: np.ndarray) -> np.ndarray:
    """H×W×3 uint16 RGB of a KITTI flow PNG for ``flow`` (H×W×2) and ``valid`` (H×W)."""
    flow = np.asarray(flow, np.float64)
    valid = np.asarray(valid, bool)
    if flow.ndim != 3 or flow.shape[2] != 2 or valid.shape != flow.shape[:2]:
        raise BlendtruthError(f"KITTI flow: flow (H, W, 2) and valid (H, W), got "
                              f"{flow.shape} and {valid.shape}")  # fmt: skip
    big = valid & ~(np.abs(flow) <= LIMIT).all(axis=2)
    if big.any():
        raise BlendtruthError(f"KITTI flow PNG holds |flow| <= {LIMIT:.3f} px; "
                              f"{int(big.sum())} valid pixels exceed it")  # fmt: skip
    rgb = np.zeros(flow.shape[:2] + (3,), np.uint16)
    counts = np.rint(flow * SCALE + ZERO)
    rgb[..., 0] = np.where(valid, counts[..., 0], 0)
    rgb[..., 1] = np.where(valid, counts[..., 1], 0)
    rgb[..., 2] = valid
    return rgb


def write_kitti(path: Path, flow: np.ndarray, valid: np.ndarray) -> Path:
    """Write ``path`` (a .png, atomically) as :func:`encode_kitti`."""
    ok, data = cv2.imencode(".png", encode_kitti(flow, valid)[..., ::-1])
    if not ok:
        raise BlendtruthError(f"{path}: OpenCV could not encode the KITTI flow PNG")
    write_bytes(path, data.tobytes())
    return Path(path)


def read_kitti(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """(H×W×2 float64 flow, H×W bool valid) of a KITTI flow PNG, as KITTI's devkit reads it."""
    bgr = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
    if bgr is None or bgr.dtype != np.uint16 or bgr.ndim != 3:
        raise BlendtruthError(f"{path}: not a 16-bit RGB KITTI flow PNG")
    rgb = bgr[..., ::-1].astype(np.float64)
    return (rgb[..., :2] - ZERO) / SCALE, rgb[..., 2] > 0


def export_kitti(folder: Path, out: Path) -> list[Path]:
    """``out/kitti_flow/<pair>.png`` for every ``folder/flow/<pair>.npz``."""
    pairs = sorted(Path(folder, "flow").glob("f*_to_f*.npz"))
    if not pairs:
        raise BlendtruthError(f"{folder}: no flow/*.npz to export (render with --frames)")
    Path(out, "kitti_flow").mkdir(parents=True, exist_ok=True)
    written = []
    for pair in pairs:
        with np.load(pair) as data:
            written.append(write_kitti(Path(out, "kitti_flow", pair.stem + ".png"),
                                       data["flow"], data["valid"]))  # fmt: skip
    return written


def _export(folder, target) -> list[Path]:
    return export_kitti(folder.path, target)


FORMAT = ExportFormat(
    "kitti_flow",
    _export,
    needs=("depth", "mask"),
    needs_rgb=False,
    writes=("kitti_flow",),
    doc="KITTI 16-bit flow PNGs of every flow pair of a --frames render",
)
