"""Per-view metrics of a predicted depth map, normal map and mask (pure numpy).

Depth metrics follow Eigen et al. 2014; scale-and-shift alignment follows Ranftl et al.
(MiDaS, 2020). Every formula is written out in docs/eval.md. Arrays are H×W (depth, mask)
or H×W×3 (normals, camera frame); depths in scene units.
"""

from __future__ import annotations

import numpy as np

from blendtruth.errors import BlendtruthError

ALIGNMENTS = ("none", "scale", "scale-shift")
SCALE_METHODS = ("median", "lstsq")
SPACES = ("depth", "disparity")
NORMAL_CONVENTIONS = ("opencv", "opengl")
DEPTH_KEYS = ("abs_rel", "sq_rel", "rmse", "rmse_log", "delta1", "delta2", "delta3")
NORMAL_KEYS = ("normal_mean", "normal_median", "normal_11_25", "normal_22_5", "normal_30")
NORMAL_THRESHOLDS_DEG = (11.25, 22.5, 30.0)
# Aligned predictions are clipped to at least this many scene units before the metrics,
# so the logarithm and the ratios stay finite when an alignment lands a pixel at <= 0.
MIN_PREDICTION = 1e-6


def fit_scale_shift(
    pred: np.ndarray, target: np.ndarray, align: str, scale_method: str = "median"
) -> tuple[float, float]:
    """(s, t) making ``s * pred + t`` closest to ``target`` (1-D arrays of equal length).

    ``none``: (1, 0). ``scale`` + ``median``: s = median(target) / median(pred).
    ``scale`` + ``lstsq``: s = Σ target·pred / Σ pred². ``scale-shift``: least squares of
    ‖s·pred + t − target‖² (the 2×2 normal equations, solved in closed form).
    """
    if align == "none":
        return 1.0, 0.0
    p = pred.astype(np.float64)
    g = target.astype(np.float64)
    if align == "scale":
        if scale_method == "median":
            denom = float(np.median(p))
            if denom == 0.0:
                raise BlendtruthError("scale alignment: the prediction's median is 0")
            return float(np.median(g)) / denom, 0.0
        if scale_method == "lstsq":
            denom = float(p @ p)
            if denom == 0.0:
                raise BlendtruthError("scale alignment: the prediction is 0 everywhere")
            return float(g @ p) / denom, 0.0
        raise BlendtruthError(
            f"--scale-method must be one of {SCALE_METHODS}, got {scale_method!r}"
        )
    if align == "scale-shift":
        n = float(p.size)
        sp, sg, spp, spg = p.sum(), g.sum(), p @ p, p @ g
        det = n * spp - sp * sp
        if det <= 1e-12 * max(n * spp, 1e-300):
            raise BlendtruthError("scale-shift alignment: the prediction is constant on the mask")
        s = (n * spg - sp * sg) / det
        return float(s), float((sg - s * sp) / n)
    raise BlendtruthError(f"--align must be one of {ALIGNMENTS}, got {align!r}")


def align_depth(
    pred: np.ndarray,
    gt: np.ndarray,
    align: str,
    space: str = "depth",
    scale_method: str = "median",
    max_depth: float | None = None,
) -> tuple[np.ndarray, float, float]:
    """The aligned predicted depth (1-D, same length), with the fitted (s, t).

    ``space="depth"``: ``pred`` holds depth; depth' = s·pred + t fitted against ``gt``.
    ``space="disparity"``: ``pred`` holds (affine-invariant) inverse depth, as MiDaS and
    Depth Anything output; disparity' = s·pred + t fitted against 1/``gt`` and
    depth' = 1/disparity', with disparity' first clipped to at least 1/``max_depth``
    (MiDaS' cap) or :data:`MIN_PREDICTION`. With ``none`` a disparity prediction is
    taken as metric (depth = 1/pred).
    """
    if space == "depth":
        s, t = fit_scale_shift(pred, gt, align, scale_method)
        return s * pred.astype(np.float64) + t, s, t
    if space == "disparity":
        s, t = fit_scale_shift(pred, 1.0 / gt.astype(np.float64), align, scale_method)
        disp = s * pred.astype(np.float64) + t
        cap = 1.0 / max_depth if max_depth else MIN_PREDICTION
        return 1.0 / np.maximum(disp, cap), s, t
    raise BlendtruthError(f"--space must be one of {SPACES}, got {space!r}")


def depth_sums(pred: np.ndarray, gt: np.ndarray) -> dict[str, float]:
    """The sums the depth metrics are means of, on matching 1-D arrays of positive depths:
    ``n`` and Σ|p−g|/g, Σ(p−g)²/g, Σ(p−g)², Σ(ln p − ln g)², and the delta counts."""
    p = pred.astype(np.float64)
    g = gt.astype(np.float64)
    diff = p - g
    ratio = np.maximum(p / g, g / p)
    out = {
        "n": float(p.size),
        "abs_rel": float(np.sum(np.abs(diff) / g)),
        "sq_rel": float(np.sum(diff**2 / g)),
        "sq": float(np.sum(diff**2)),
        "sq_log": float(np.sum((np.log(p) - np.log(g)) ** 2)),
    }
    for k in (1, 2, 3):
        out[f"delta{k}"] = float(np.sum(ratio < 1.25**k))
    return out


def depth_from_sums(sums: dict[str, float]) -> dict[str, float]:
    """The depth metrics of :func:`depth_sums` (of one view, or added over views)."""
    n = sums["n"]
    out = {
        "abs_rel": sums["abs_rel"] / n,
        "sq_rel": sums["sq_rel"] / n,
        "rmse": float(np.sqrt(sums["sq"] / n)),
        "rmse_log": float(np.sqrt(sums["sq_log"] / n)),
    }
    return out | {f"delta{k}": sums[f"delta{k}"] / n for k in (1, 2, 3)}


def depth_metrics(pred: np.ndarray, gt: np.ndarray) -> dict[str, float]:
    """Eigen et al. 2014 on matching 1-D arrays of positive depths (pixels already masked).

    abs_rel = mean |p−g|/g; sq_rel = mean (p−g)²/g; rmse = √mean (p−g)²;
    rmse_log = √mean (ln p − ln g)²; delta_k = fraction with max(p/g, g/p) < 1.25^k.
    """
    return depth_from_sums(depth_sums(pred, gt))


def evaluate_depth(
    pred: np.ndarray,
    gt: np.ndarray,
    valid: np.ndarray,
    align: str = "none",
    space: str = "depth",
    scale_method: str = "median",
    min_depth: float = 0.0,
    max_depth: float | None = None,
    pool: dict[str, float] | None = None,
) -> dict[str, float]:
    """Metrics of an H×W prediction on ``valid`` (H×W bool: GT mask) ∩ min < gt ≤ max.

    The fit uses the same pixels the metrics use. After alignment the prediction is
    clipped to [max(min_depth, MIN_PREDICTION), max_depth] (Eigen's protocol). Returns the
    metrics plus ``scale``, ``shift`` and ``pixels`` (the number of pixels scored).
    ``pool``: :func:`depth_sums` of this view are added to it (pooled totals).
    """
    sel = valid & (gt > min_depth)
    if max_depth is not None:
        sel &= gt <= max_depth
    if not sel.any():
        raise BlendtruthError("no ground-truth pixel in the mask and depth range")
    p, g = pred[sel].astype(np.float64), gt[sel].astype(np.float64)
    if not np.isfinite(p).all():
        raise BlendtruthError(
            f"{int((~np.isfinite(p)).sum())} NaN/inf predicted depths in the mask"
        )
    aligned, s, t = align_depth(p, g, align, space, scale_method, max_depth)
    hi = np.inf if max_depth is None else max_depth
    aligned = np.clip(aligned, max(min_depth, MIN_PREDICTION), hi)
    sums = depth_sums(aligned, g)
    if pool is not None:
        for key, value in sums.items():
            pool[key] = pool.get(key, 0.0) + value
    return {**depth_from_sums(sums), "scale": s, "shift": t, "pixels": int(sel.sum())}


def to_opencv_normals(normal: np.ndarray, convention: str) -> np.ndarray:
    """H×W×3 camera-frame normals in ``convention`` as OpenCV axes (x right, y down, z
    forward): ``opengl`` (x right, y up, z back) flips y and z."""
    if convention == "opencv":
        return normal
    if convention == "opengl":
        return normal * np.array([1.0, -1.0, -1.0], dtype=normal.dtype)
    raise BlendtruthError(
        f"--normal-convention must be one of {NORMAL_CONVENTIONS}, got {convention!r}"
    )


def normal_metrics(pred: np.ndarray, gt: np.ndarray, valid: np.ndarray) -> dict[str, float]:
    """Angular error of H×W×3 predicted normals (OpenCV camera frame) on ``valid``.

    θ = arccos(clip(n̂_p·n̂_g, −1, 1)) in degrees (both normalised); normal_mean/median are
    the mean/median θ, normal_11_25 etc. the percentage (0-100) of pixels with θ < t.
    """
    if not valid.any():
        raise BlendtruthError("no ground-truth pixel in the mask")
    p = pred[valid].astype(np.float64)
    g = gt[valid].astype(np.float64)
    if not np.isfinite(p).all():
        raise BlendtruthError(f"{int((~np.isfinite(p).all(-1)).sum())} NaN/inf predicted normals")
    pn = np.linalg.norm(p, axis=-1)
    if (pn == 0).any():
        raise BlendtruthError(f"{int((pn == 0).sum())} zero-length predicted normals in the mask")
    cos = np.einsum("ij,ij->i", p / pn[:, None], g / np.linalg.norm(g, axis=-1)[:, None])
    theta = np.degrees(np.arccos(np.clip(cos, -1.0, 1.0)))
    out = {"normal_mean": float(theta.mean()), "normal_median": float(np.median(theta))}
    for t, key in zip(NORMAL_THRESHOLDS_DEG, NORMAL_KEYS[2:], strict=True):
        out[key] = float(100.0 * np.mean(theta < t))
    return out


def mask_iou(pred: np.ndarray, gt: np.ndarray) -> dict[str, float]:
    """IoU = |P ∩ G| / |P ∪ G| of two H×W boolean masks (1.0 when both are empty)."""
    union = int((pred | gt).sum())
    return {"iou": 1.0 if union == 0 else int((pred & gt).sum()) / union}
