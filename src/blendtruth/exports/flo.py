"""Middlebury ``.flo`` optical flow (the format OpenCV, Sintel and FlyingChairs read).

Layout (little-endian): the float32 tag 202021.25 (bytes ``PIEH``), int32 width, int32
height, then H×W×2 float32 (u, v) row-major. (u, v) is our ``flow``: the displacement in
pixels from frame t to frame s, u along +x (right), v along +y (down); positions in the
pixel-centre convention (a shift of both frames' origins cancels in a displacement).
Pixels without a valid flow are written as 1e10 in both channels, Middlebury's "unknown"
(readers treat |value| > 1e9 as unknown).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from blendtruth.errors import BlendtruthError
from blendtruth.exports import ExportFormat
from blendtruth.writers.atomic import write_bytes

TAG = 202021.25
UNKNOWN = 1e10


def encode_flo(flow: np.ndarray, valid: np.ndarray | None = None) -> bytes:
    """The bytes of a ``.flo`` file for ``flow`` (H×W×2, pixels) and ``valid`` (H×W bool;
    None = all valid)."""
    flow = np.asarray(flow)
    if flow.ndim != 3 or flow.shape[2] != 2:
        raise BlendtruthError(f".flo: flow must have shape (H, W, 2), got {flow.shape}")
    data = flow.astype("<f4")
    if valid is not None:
        data = np.where(np.asarray(valid, bool)[..., None], data, np.float32(UNKNOWN))
    h, w = flow.shape[:2]
    header = np.array([TAG], "<f4").tobytes() + np.array([w, h], "<i4").tobytes()
    return header + np.ascontiguousarray(data, "<f4").tobytes()


def write_flo(path: Path, flow: np.ndarray, valid: np.ndarray | None = None) -> Path:
    """Write ``path`` (atomically) as :func:`encode_flo`."""
    write_bytes(path, encode_flo(flow, valid))
    return Path(path)


def read_flo(path: Path) -> np.ndarray:
    """H×W×2 float32 flow of a ``.flo`` file (unknown values left as stored)."""
    raw = Path(path).read_bytes()
    if len(raw) < 12 or np.frombuffer(raw[:4], "<f4")[0] != np.float32(TAG):
        raise BlendtruthError(f"{path}: not a Middlebury .flo file (bad tag)")
    w, h = (int(x) for x in np.frombuffer(raw[4:12], "<i4"))
    if len(raw) != 12 + w * h * 8:
        raise BlendtruthError(f"{path}: .flo of {w}x{h} should have {12 + w * h * 8} bytes")
    return np.frombuffer(raw[12:], "<f4").reshape(h, w, 2).copy()


def export_flo(folder: Path, out: Path) -> list[Path]:
    """``out/flo/<pair>.flo`` for every ``folder/flow/<pair>.npz`` of a ``--frames`` render."""
    pairs = sorted(Path(folder, "flow").glob("f*_to_f*.npz"))
    if not pairs:
        raise BlendtruthError(f"{folder}: no flow/*.npz to export (render with --frames)")
    Path(out, "flo").mkdir(parents=True, exist_ok=True)
    written = []
    for pair in pairs:
        with np.load(pair) as data:
            written.append(write_flo(Path(out, "flo", pair.stem + ".flo"), data["flow"],
                                     data["valid"]))  # fmt: skip
    return written


def _export(folder, target) -> list[Path]:
    return export_flo(folder.path, target)


FORMAT = ExportFormat(
    "flo",
    _export,
    needs=("depth", "mask"),
    needs_rgb=False,
    writes=("flo",),
    doc="Middlebury .flo of every flow pair of a --frames render",
)
