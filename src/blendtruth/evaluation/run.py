"""``blendtruth.evaluate``: score a folder of predictions against a ground-truth folder."""

from __future__ import annotations

import math
import os
import warnings
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from blendtruth.errors import BlendtruthError, BlendtruthWarning
from blendtruth.evaluation import io, metrics
from blendtruth.evaluation.surface import SURFACE_KEYS, surface_metrics
from blendtruth.layout import MESH_PLY, RenderLayout

AGGREGATION = (
    "total: mean over views of the per-view metrics (KITTI/NYU protocol); pooled (depth "
    "only): every scored pixel of every view weighted the same, after per-view alignment"
)
REFERENCES = {
    "depth": "Eigen, Puhrsch, Fergus 2014 (NeurIPS)",
    "scale-shift": "Ranftl et al. 2020, MiDaS (TPAMI)",
    "normals": "Eftekhar et al. 2021 (Omnidata); Bae et al. 2021",
    "fscore": "Tatarchenko et al. 2019 (CVPR); Knapitsch et al. 2017",
    "chamfer, normal_consistency": "Mescheder et al. 2019, Occupancy Networks (CVPR)",
}


@dataclass(frozen=True)
class EvalOptions:
    """The protocol: see :func:`evaluate` and docs/eval.md."""

    align: str = "none"
    scale_method: str = "median"
    space: str = "depth"
    min_depth: float = 0.0
    max_depth: float | None = None
    depth_scale: float | None = None
    normal_convention: str = "opencv"
    tau: float = 0.01
    samples: int = 100_000
    seed: int = 0

    def check(self) -> None:
        for value, name, allowed in (
            (self.align, "--align", metrics.ALIGNMENTS),
            (self.scale_method, "--scale-method", metrics.SCALE_METHODS),
            (self.space, "--space", metrics.SPACES),
            (self.normal_convention, "--normal-convention", metrics.NORMAL_CONVENTIONS),
        ):
            if value not in allowed:
                raise BlendtruthError(f"{name} must be one of {', '.join(allowed)}, got {value!r}")
        if not (math.isfinite(self.min_depth) and self.min_depth >= 0):
            raise BlendtruthError(f"--min-depth must be >= 0, got {self.min_depth}")
        if self.max_depth is not None and not self.max_depth > self.min_depth:
            raise BlendtruthError(f"--max-depth must be > --min-depth, got {self.max_depth}")
        if self.depth_scale is not None and not (0 < self.depth_scale < math.inf):
            raise BlendtruthError(f"--depth-scale must be > 0, got {self.depth_scale}")
        if not (0 < self.tau < math.inf) or self.samples < 1 or self.seed < 0:
            raise BlendtruthError("--tau must be > 0, --samples >= 1 and --seed >= 0")


def evaluate(
    gt: str | os.PathLike, pred: str | os.PathLike, align: str = "none", **options: Any
) -> dict[str, Any]:
    """Score the predictions in ``pred`` against the ground truth in ``gt``.

    ``options``: the fields of :class:`EvalOptions` (``scale_method``, ``space``,
    ``min_depth``, ``max_depth``, ``depth_scale``, ``normal_convention``, ``tau``,
    ``samples``, ``seed``). Returns ``{"meta": protocol, "views": {name: metrics},
    "total": metrics, "pooled": depth metrics, "surface": {model: metrics}}`` with the
    metric keys of docs/eval.md (``abs_rel``, ``delta1``, ``normal_mean``, ``iou``,
    ``chamfer`` ...).
    Bad input raises :class:`~blendtruth.errors.BlendtruthError` naming the file.
    """
    try:
        opts = EvalOptions(align=align, **options)
    except TypeError as exc:
        raise BlendtruthError(f"evaluate: {exc}") from None
    opts.check()
    gt, pred = Path(gt), Path(pred)
    if not pred.is_dir():
        raise BlendtruthError(f"{pred}: no such prediction folder")
    views, folders = io.gt_views(gt)
    surfaces = {m: p for m in folders if (p := io.surface_prediction(pred, m)) is not None}
    any_view = any((pred / f"{v.name}{ext}").is_file() for v in views for ext in io.PRED_EXTENSIONS)
    per_view, pool = {}, {}
    if any_view or not surfaces:
        per_view = {v.name: _score_view(v, pred, opts, pool) for v in views}
        _warn_unmatched(pred, {v.name for v in views})
    surface = {
        m or ".": _score_surface(folders[m], [v for v in views if v.model == m], p, opts)
        for m, p in surfaces.items()
    }
    return {
        "meta": {
            **asdict(opts),
            "gt": str(gt),
            "pred": str(pred),
            "aggregation": AGGREGATION,
            "normals_frame": "camera frame, OpenCV axes (x right, y down, z forward)",
            "depth_units": "scene units of the ground truth (meta of its views)",
            "surface_sampling": f"{opts.samples} seeded (seed {opts.seed}) area-weighted "
            "uniform samples per mesh; point clouds as given",
            "references": REFERENCES,
        },
        "views": per_view,
        "total": _total(per_view),
        "pooled": metrics.depth_from_sums(pool) if pool else {},
        "surface": surface,
    }


def _warn_unmatched(pred: Path, names: set[str]) -> None:
    """Warn about prediction files that no ground-truth view claims (a naming mistake
    would otherwise drop them from the scores without a word)."""
    extra = sorted(
        str(p.relative_to(pred))
        for ext in io.PRED_EXTENSIONS
        for p in pred.rglob(f"*{ext}")
        if p.relative_to(pred).with_suffix("").as_posix() not in names
    )
    if extra:
        warnings.warn(
            f"{pred}: {len(extra)} prediction files match no ground-truth view and are "
            f"not scored (e.g. {extra[0]})",
            BlendtruthWarning,
            stacklevel=3,
        )


def _score_view(
    view: io.GtView, pred_dir: Path, opts: EvalOptions, pool: dict[str, float]
) -> dict[str, float]:
    path = io.find_prediction(pred_dir, view.name)
    arrays = io.read_prediction(path, opts.depth_scale)
    gt = io.read_gt(view)
    valid = np.asarray(gt.mask, dtype=bool) & (gt.depth > 0)
    out: dict[str, float] = {}
    try:
        for key, arr in arrays.items():
            want = gt.depth.shape + ((3,) if key == "normal" else ())
            if arr.shape != want:
                raise BlendtruthError(f"{key} has shape {arr.shape}, the ground truth {want}")
        if "depth" in arrays:
            out.update(
                metrics.evaluate_depth(
                    arrays["depth"],
                    gt.depth,
                    valid,
                    opts.align,
                    opts.space,
                    opts.scale_method,
                    opts.min_depth,
                    opts.max_depth,
                    pool,
                )
            )
        if "normal" in arrays:
            normal = metrics.to_opencv_normals(arrays["normal"], opts.normal_convention)
            out.update(metrics.normal_metrics(normal, gt.normal, valid))
        if "mask" in arrays:
            out.update(metrics.mask_iou(arrays["mask"], np.asarray(gt.mask, dtype=bool)))
    except BlendtruthError as exc:
        raise BlendtruthError(f"{path}: view {view.name}: {exc}") from None
    return out


def _score_surface(
    gt_folder: Path, views: list[io.GtView], pred_file: Path, opts: EvalOptions
) -> dict[str, Any]:
    pts, normals = io.read_surface(pred_file, opts.samples, opts.seed)
    mesh = RenderLayout(gt_folder).mesh_ply
    if mesh.is_file():
        gpts, gnormals = io.read_surface(mesh, opts.samples, opts.seed)
        source = MESH_PLY
    else:
        gpts, gnormals = io.gt_backprojection(views)
        source = "union of GT back-projections"
    try:
        out = surface_metrics(pts, gpts, opts.tau, normals, gnormals)
    except BlendtruthError as exc:
        raise BlendtruthError(f"{pred_file}: {exc}") from None
    return {**out, "gt_source": source, "pred_points": len(pts), "gt_points": len(gpts)}


def _total(per_view: dict[str, dict[str, float]]) -> dict[str, float]:
    keys = metrics.DEPTH_KEYS + metrics.NORMAL_KEYS + ("iou",)
    total: dict[str, float] = {}
    for key in keys:
        values = [m[key] for m in per_view.values() if key in m]
        if values:
            total[key] = float(np.mean(values))
    total["views"] = len(per_view)
    return total


__all__ = ["SURFACE_KEYS", "EvalOptions", "evaluate"]
