"""Point tracks: query points on visible surfaces of a query frame, followed through frames.

Arrays (T frames, N tracks), as stored in ``tracks.npz`` (float32 / bool / int32):

- ``tracks_2d`` T×N×2: (x, y) pixels in each frame's camera, pixel centres at +0.5;
- ``tracks_3d_world`` T×N×3: world frame (Blender's, Z up), scene units;
- ``tracks_3d_camera`` T×N×3: each frame's camera frame (OpenCV axes: x right, y down,
  z forward), scene units;
- ``valid`` T×N: topology unchanged since the query frame, in front of the camera and
  inside its image; ``visible`` T×N: valid and covisible (strict ray cast,
  :func:`.motion.covisible`);
- ``query_frame`` N int32 (an index into the T frames), ``instance`` N int32.

Where the topology changed, positions are NaN. Queries are pixel centres of the query frame's
cast that hit a surface, chosen on a grid or at random (seeded), so a track's 2D position
at its query frame is exactly that pixel centre.
"""

from __future__ import annotations

import numpy as np

from blendtruth.errors import BlendtruthError
from blendtruth.geometry import motion

MAX_TRACKS = 1_000_000


def choose_pixels(hit: np.ndarray, count: int, mode: str = "grid", seed: int = 0) -> np.ndarray:
    """Up to ``count`` flat pixel indices where the H×W bool ``hit`` is True: ``grid``
    takes the hit pixels of the coarsest regular stride that gives at least ``count``
    (then an even subsample down to ``count``), ``random`` a seeded uniform sample."""
    if not 0 < count <= MAX_TRACKS:
        raise BlendtruthError(f"--tracks must be between 1 and {MAX_TRACKS}, got {count}")
    flat = np.flatnonzero(hit.reshape(-1))
    if len(flat) == 0:
        raise BlendtruthError("--tracks: the query frame shows no surface to place tracks on")
    if mode == "random":
        rng = np.random.default_rng(seed)
        return np.sort(rng.choice(flat, size=min(count, len(flat)), replace=False))
    if mode != "grid":
        raise BlendtruthError(f"--tracks-mode must be grid or random, got {mode!r}")
    h, w = hit.shape
    for stride in range(int(np.sqrt(h * w / count)) + 1, 0, -1):
        rows, cols = np.meshgrid(np.arange(stride // 2, h, stride),
                                 np.arange(stride // 2, w, stride), indexing="ij")  # fmt: skip
        pick = (rows * w + cols).reshape(-1)
        pick = pick[hit.reshape(-1)[pick]]
        if len(pick) >= count or stride == 1:
            break
    if len(pick) > count:
        pick = pick[np.linspace(0, len(pick) - 1, count).round().astype(int)]
    return pick


def track(
    geometries: list[motion.FrameGeometry],
    cameras: list,
    first_hits: list[motion.FirstHit],
    query_frame: int,
    triangle: np.ndarray,
    bary: np.ndarray,
    pixels: np.ndarray,
    tol: float,
) -> dict[str, np.ndarray]:
    """Tracks of the flat ``pixels`` of frame ``query_frame``'s cast (``triangle`` H×W,
    ``bary`` H×W×3) through every frame (lists indexed by frame, same length)."""
    if not len(geometries) == len(cameras) == len(first_hits):
        raise BlendtruthError("track: geometries, cameras and first_hits differ in length")
    at_t = geometries[query_frame]
    w = triangle.shape[1]
    tri = triangle.reshape(-1)[pixels]
    anchors = motion.anchor(at_t, tri, bary.reshape(-1, 3)[pixels])
    uv = np.column_stack([pixels % w + 0.5, pixels // w + 0.5]).astype(np.float64)
    frames, n = len(geometries), len(pixels)
    out = {
        "tracks_2d": np.zeros((frames, n, 2), np.float32),
        "tracks_3d_world": np.zeros((frames, n, 3), np.float32),
        "tracks_3d_camera": np.zeros((frames, n, 3), np.float32),
        "visible": np.zeros((frames, n), bool),
        "valid": np.zeros((frames, n), bool),
    }
    for s, (at_s, cam_s, hit_s) in enumerate(zip(geometries, cameras, first_hits, strict=True)):
        got = motion.correspond(anchors, at_t, at_s, cameras[query_frame], cam_s, hit_s, tol, uv)
        out["tracks_2d"][s] = got["uv_s"]
        out["tracks_3d_world"][s] = got["points_s"]
        out["tracks_3d_camera"][s] = motion.camera_points(cam_s, got["points_s"])
        out["visible"][s] = got["covisible"]
        out["valid"][s] = got["valid"]
    out["query_frame"] = np.full(n, query_frame, np.int32)
    out["instance"] = anchors.instance.astype(np.int32)
    return out


def concatenate_tracks(parts: list[dict[str, np.ndarray]]) -> dict[str, np.ndarray]:
    """Tracks of several query frames side by side: per-track arrays (N) along axis 0,
    per-frame arrays (T×N[×C]) along axis 1."""
    return {
        k: np.concatenate([p[k] for p in parts], axis=0 if parts[0][k].ndim == 1 else 1)
        for k in parts[0]
    }
