"""TAP-Vid point tracks: the DAVIS-style pickle, the evaluation dict, and the metrics.

Our tracks (:mod:`blendtruth.geometry.tracks`) are (x, y) pixels with pixel centres at
+0.5, i.e. raster coordinates with the origin at the image's top-left corner, which is
TAP-Vid's convention, so no shift is applied:

- pickle (DAVIS layout): ``{name: {"video": uint8 T×H×W×3, "points": float32 N×T×2
  (x / W, y / H) in [0, 1], "occluded": bool N×T}}``;
- evaluation dict: ``video`` float32 1×T×H×W×3 in [-1, 1], ``query_points`` float32
  1×N×3 as **(t, y, x)** (frame index, row, column in raster pixels), ``target_points``
  float32 1×N×T×2 as **(x, y)**, ``occluded`` bool 1×N×T. ``occluded`` = not ``visible``
  (a point out of frame, behind the camera or on a changed topology is occluded).

:func:`compute_metrics` re-implements the published TAP-Vid metrics (Doersch et al. 2022,
§4): occlusion accuracy, < delta^x for x in 1, 2, 4, 8, 16 px and their mean, Jaccard at
each threshold and their mean (AJ), over every frame except each track's query frame,
after scaling coordinates to 256×256 as the benchmark does; "within" is strict (d² < x²).
"""

from __future__ import annotations

import io
import pickle
from pathlib import Path

import numpy as np

from blendtruth.errors import BlendtruthError
from blendtruth.exports import ExportFormat
from blendtruth.writers.atomic import write_bytes

THRESHOLDS = (1, 2, 4, 8, 16)
EVAL_SIZE = (256, 256)


def _track_arrays(tracks: dict[str, np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """(N×T×2 float32 (x, y), N×T bool occluded) from our T×N arrays."""
    xy = np.transpose(np.asarray(tracks["tracks_2d"], np.float32), (1, 0, 2))
    occluded = ~np.asarray(tracks["visible"], bool).T
    # Occluded points keep a finite position (TAP-Vid has no NaN); NaN = topology change.
    return np.nan_to_num(xy, nan=0.0), occluded


def davis_entry(tracks: dict[str, np.ndarray], video: np.ndarray) -> dict:
    """One video's DAVIS-style entry; ``video`` T×H×W×3 uint8."""
    video = np.asarray(video)
    if video.ndim != 4 or video.shape[3] != 3 or video.dtype != np.uint8:
        raise BlendtruthError(f"TAP-Vid: video must be uint8 (T, H, W, 3), got "
                              f"{video.dtype} {video.shape}")  # fmt: skip
    h, w = video.shape[1:3]
    xy, occluded = _track_arrays(tracks)
    if xy.shape[1] != len(video):
        raise BlendtruthError(f"TAP-Vid: {xy.shape[1]} track frames but {len(video)} video frames")
    points = (xy / np.array([w, h], np.float32)).astype(np.float32)
    return {"video": video, "points": points, "occluded": occluded}


def write_pickle(path: Path, videos: dict[str, dict]) -> Path:
    """Write ``{name: davis_entry(...)}`` as a TAP-Vid DAVIS pickle (atomically)."""
    write_bytes(path, pickle.dumps(videos, protocol=4))
    return Path(path)


def evaluation_dict(tracks: dict[str, np.ndarray], video: np.ndarray) -> dict[str, np.ndarray]:
    """The evaluation dict (see the module docstring) with each track's own query frame."""
    xy, occluded = _track_arrays(tracks)
    q = np.asarray(tracks["query_frame"], np.int64)
    n = np.arange(len(q))
    query = np.column_stack([q, xy[n, q, 1], xy[n, q, 0]]).astype(np.float32)
    frames = np.asarray(video, np.float32) / 127.5 - 1.0
    return {
        "video": frames[None],
        "query_points": query[None],
        "target_points": xy[None],
        "occluded": occluded[None],
    }


def compute_metrics(
    query_points: np.ndarray,
    gt_occluded: np.ndarray,
    gt_tracks: np.ndarray,
    pred_occluded: np.ndarray,
    pred_tracks: np.ndarray,
    size: tuple[int, int],
) -> dict[str, float]:
    """TAP-Vid metrics of one batch: ``query_points`` B×N×3 (t, y, x), occlusion B×N×T,
    tracks B×N×T×2 (x, y) in the pixels of an image ``size`` = (H, W); coordinates are
    scaled to 256×256 first. Returns ``occlusion_accuracy``, ``pts_within_{x}``,
    ``jaccard_{x}``, ``average_pts_within_thresh`` and ``average_jaccard``."""
    gt_occ, pred_occ = np.asarray(gt_occluded, bool), np.asarray(pred_occluded, bool)
    scale = np.array([EVAL_SIZE[1] / size[1], EVAL_SIZE[0] / size[0]])
    gt_xy, pred_xy = np.asarray(gt_tracks) * scale, np.asarray(pred_tracks) * scale
    b, n, t = gt_occ.shape
    query_frame = np.rint(np.asarray(query_points)[..., 0]).astype(np.int64)
    evaluate = np.arange(t)[None, None, :] != query_frame[..., None]
    out = {"occlusion_accuracy": float(np.sum((gt_occ == pred_occ) & evaluate) / evaluate.sum())}
    visible, pred_visible = ~gt_occ, ~pred_occ
    within_all, jaccard_all = [], []
    for x in THRESHOLDS:
        within = np.sum((pred_xy - gt_xy) ** 2, axis=-1) < x**2
        correct = within & visible
        within_all.append(np.sum(correct & evaluate) / np.sum(visible & evaluate))
        true_pos = np.sum(correct & pred_visible & evaluate)
        false_pos = np.sum(((~visible) | (~correct)) & pred_visible & evaluate)
        jaccard_all.append(true_pos / (np.sum(visible & evaluate) + false_pos))
        out[f"pts_within_{x}"] = float(within_all[-1])
        out[f"jaccard_{x}"] = float(jaccard_all[-1])
    out["average_pts_within_thresh"] = float(np.mean(within_all))
    out["average_jaccard"] = float(np.mean(jaccard_all))
    return out


def export_tapvid(folder: Path, out: Path) -> list[Path]:
    """``out/tapvid/<folder name>.pkl`` (DAVIS layout) and ``tapvid/eval.npz`` (the
    evaluation dict) from ``folder/tracks.npz`` and camera 0's RGB frames."""
    import cv2

    from blendtruth.writers.tracks import read_tracks

    folder = Path(folder)
    if not (folder / "tracks.npz").is_file():
        raise BlendtruthError(f"{folder}: no tracks.npz to export (render with --tracks N)")
    tracks, meta = read_tracks(folder / "tracks.npz")
    frames = []
    for frame in meta["frames"]:
        png = folder / "rgb" / f"f{frame:04d}_c00.png"
        image = cv2.imread(str(png), cv2.IMREAD_COLOR)
        if image is None:
            raise BlendtruthError(f"{png}: missing; TAP-Vid needs the RGB frames (no --no-rgb)")
        frames.append(image[..., ::-1])
    video = np.stack(frames).astype(np.uint8)
    target = Path(out, "tapvid")
    target.mkdir(parents=True, exist_ok=True)
    pkl = write_pickle(target / f"{folder.resolve().name}.pkl",
                       {folder.resolve().name: davis_entry(tracks, video)})  # fmt: skip
    ev = evaluation_dict(tracks, video)
    buffer = io.BytesIO()
    np.savez_compressed(buffer, **ev)
    write_bytes(target / "eval.npz", buffer.getvalue())
    return [pkl, target / "eval.npz"]


def _export(folder, target) -> list[Path]:
    return export_tapvid(folder.path, target)


FORMAT = ExportFormat(
    "tapvid",
    _export,
    needs=("depth", "mask"),
    needs_rgb=True,
    writes=("tapvid",),
    doc="TAP-Vid pickle and evaluation dict from tracks.npz",
)
