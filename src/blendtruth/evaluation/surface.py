"""Surface metrics between two point sets: Chamfer distance, F-score, normal consistency.

Meshes are turned into points by seeded, area-weighted uniform sampling of their
triangles (:func:`sample_surface`); point clouds are used as they are. Nearest neighbours
come from scipy's k-d tree. Formulas (Tatarchenko et al. 2019 for the F-score, Mescheder
et al. 2019 for Chamfer-L1 and normal consistency): docs/eval.md. World frame, scene units.
"""

from __future__ import annotations

import numpy as np

from blendtruth.errors import BlendtruthError

SURFACE_KEYS = (
    "chamfer",
    "accuracy",
    "completeness",
    "precision",
    "recall",
    "fscore",
    "normal_consistency",
)


def sample_surface(
    vertices: np.ndarray, faces: np.ndarray, n: int, seed: int = 0
) -> tuple[np.ndarray, np.ndarray]:
    """``n`` points (n×3) uniformly distributed over the area of the triangles, and each
    point's unit face normal (n×3; orientation as the winding gives it).

    A triangle is drawn with probability ∝ its area, then a point in it with barycentric
    coordinates (1−√u, √u(1−v), √u·v), u, v ~ U(0, 1), from ``np.random.default_rng(seed)``.
    """
    v = np.asarray(vertices, dtype=np.float64)
    f = np.asarray(faces, dtype=np.int64)
    if f.size == 0:
        raise BlendtruthError("the mesh has no triangles to sample")
    a, b, c = v[f[:, 0]], v[f[:, 1]], v[f[:, 2]]
    cross = np.cross(b - a, c - a)
    double_area = np.linalg.norm(cross, axis=1)
    total = double_area.sum()
    if not total > 0:
        raise BlendtruthError("the mesh has zero surface area")
    rng = np.random.default_rng(seed)
    tri = rng.choice(len(f), size=n, p=double_area / total)
    su = np.sqrt(rng.random(n))
    w = rng.random(n)
    points = (
        (1 - su)[:, None] * a[tri] + (su * (1 - w))[:, None] * b[tri] + (su * w)[:, None] * c[tri]
    )
    normals = cross[tri] / np.maximum(double_area[tri], 1e-300)[:, None]
    return points, normals


def _nearest(points: np.ndarray, other: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    from scipy.spatial import cKDTree

    dist, index = cKDTree(other).query(points, k=1, workers=1)
    return dist, index


def surface_metrics(
    pred: np.ndarray,
    gt: np.ndarray,
    tau: float,
    pred_normals: np.ndarray | None = None,
    gt_normals: np.ndarray | None = None,
) -> dict[str, float]:
    """Metrics of predicted points P (N×3) against ground-truth points G (M×3).

    accuracy = mean_p min_g ‖p−g‖, completeness = mean_g min_p ‖g−p‖,
    chamfer = (accuracy + completeness)/2 (Chamfer-L1); precision / recall = fraction of
    P / G within ``tau`` of the other set, fscore = 2PR/(P+R) (0 when both are 0);
    normal_consistency = mean over both directions of |n_p·n_nearest| (only when both
    sets have normals, else NaN).
    """
    if len(pred) == 0 or len(gt) == 0:
        raise BlendtruthError("surface metrics need points in both the prediction and the GT")
    if not (np.isfinite(pred).all() and np.isfinite(gt).all()):
        raise BlendtruthError("NaN/inf coordinates in the surface points")
    d_pg, i_pg = _nearest(pred, gt)
    d_gp, i_gp = _nearest(gt, pred)
    precision = float(np.mean(d_pg < tau))
    recall = float(np.mean(d_gp < tau))
    out = {
        "accuracy": float(d_pg.mean()),
        "completeness": float(d_gp.mean()),
        "chamfer": float((d_pg.mean() + d_gp.mean()) / 2),
        "precision": precision,
        "recall": recall,
        "fscore": 0.0 if precision + recall == 0 else 2 * precision * recall / (precision + recall),
        "normal_consistency": float("nan"),
    }
    if pred_normals is not None and gt_normals is not None:
        pn = _unit(pred_normals)
        gn = _unit(gt_normals)
        a = np.abs(np.einsum("ij,ij->i", pn, gn[i_pg])).mean()
        b = np.abs(np.einsum("ij,ij->i", gn, pn[i_gp])).mean()
        out["normal_consistency"] = float((a + b) / 2)
    return out


def _unit(n: np.ndarray) -> np.ndarray:
    n = np.asarray(n, dtype=np.float64)
    return n / np.maximum(np.linalg.norm(n, axis=1, keepdims=True), 1e-300)
