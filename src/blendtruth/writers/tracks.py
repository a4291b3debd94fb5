"""``tracks.npz``: point tracks at the render folder's root (arrays: :mod:`.geometry.tracks`).

Positions float32, flags bool, indices int32, and ``meta``: a JSON string (0-d unicode
array) with the conventions and, per frame, ``frame`` numbers and ``time`` in seconds.
Written atomically; :func:`read_tracks` checks the shapes on the way back.
"""

from __future__ import annotations

import io
import json
from pathlib import Path

import numpy as np

from blendtruth.errors import BlendtruthError
from blendtruth.writers.atomic import write_bytes

CONVENTIONS = {
    "tracks_2d": "T x N x 2 float32 (x, y) pixels; pixel (column i, row j) centre = (i+0.5, j+0.5)",
    "tracks_3d_world": "T x N x 3 float32, world frame (Blender: Z up, right-handed), scene units",
    "tracks_3d_camera": "T x N x 3 float32, each frame's camera frame (OpenCV: x right, y down, "
    "z forward), scene units",
    "valid": "T x N bool: topology unchanged since the query frame, in front of the camera, "
    "inside the image",
    "visible": "T x N bool: valid and the ray from the camera centre first hits this surface "
    "point (same instance, within covisible_tolerance)",
    "query_frame": "N int32 index into frames",
    "instance": "N int32 instance id (object pass_index), stable across frames",
    "nan": "positions are NaN where the topology changed since the query frame",
}
_SHAPES = {"tracks_2d": 2, "tracks_3d_world": 3, "tracks_3d_camera": 3}


def write_tracks(
    path: Path, tracks: dict[str, np.ndarray], frames: list[int], times: list[float], tol: float
) -> Path:
    """Write ``tracks`` (:func:`.geometry.tracks.track`'s arrays) to ``path``."""
    t, n = np.asarray(tracks["visible"]).shape
    if len(frames) != t or len(times) != t:
        raise BlendtruthError(f"tracks.npz: {t} frames of tracks but {len(frames)} frame numbers")
    meta = {
        "conventions": CONVENTIONS,
        "frames": [int(f) for f in frames],
        "times_s": [float(x) for x in times],
        "covisible_tolerance": float(tol),
        "count": int(n),
    }
    arrays = {k: np.asarray(tracks[k], np.float32) for k in _SHAPES}
    arrays.update({k: np.asarray(tracks[k], bool) for k in ("visible", "valid")})
    arrays.update({k: np.asarray(tracks[k], np.int32) for k in ("query_frame", "instance")})
    buffer = io.BytesIO()
    np.savez(buffer, meta=np.array(json.dumps(meta)), **arrays)
    write_bytes(path, buffer.getvalue())
    return Path(path)


def read_tracks(path: Path) -> tuple[dict[str, np.ndarray], dict]:
    """(arrays, meta) of a ``tracks.npz``, shapes checked."""
    with np.load(path, allow_pickle=False) as data:
        arrays = {k: data[k] for k in data.files if k != "meta"}
        meta = json.loads(str(data["meta"]))
    t, n = arrays["visible"].shape
    for key, channels in _SHAPES.items():
        if arrays[key].shape != (t, n, channels):
            raise BlendtruthError(f"{path}: {key} has shape {arrays[key].shape}, "
                                  f"expected {(t, n, channels)}")  # fmt: skip
    return arrays, meta
