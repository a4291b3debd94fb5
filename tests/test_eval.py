"""`blendtruth eval` metrics: every metric and alignment against hand-computed values on
tiny arrays, surface metrics against closed-form distances."""

from __future__ import annotations

import math

import numpy as np
import pytest

from blendtruth.evaluation import metrics
from blendtruth.evaluation.run import evaluate
from blendtruth.evaluation.surface import sample_surface, surface_metrics
from blendtruth.writers.meshfile import write_mesh_ply
from eval_helpers import (
    PERFECT,
    SQUARE_F,
    SQUARE_V,
    assert_depth,
    gt_arrays,
    gt_folder,
)

# ---- metrics on tiny arrays, by hand -------------------------------------------------


def test_depth_metrics_hand_computed():
    gt, pred = np.array([1.0, 2.0, 4.0]), np.array([1.7, 2.0, 3.0])
    m = metrics.depth_metrics(pred, gt)
    expected = {
        "abs_rel": (0.7 + 0 + 0.25) / 3,
        "sq_rel": (0.49 + 0 + 0.25) / 3,
        "rmse": math.sqrt((0.49 + 1.0) / 3),
        "rmse_log": math.sqrt((math.log(1.7) ** 2 + math.log(0.75) ** 2) / 3),
        "delta1": 1 / 3,  # ratios 1.7, 1, 4/3: only 1 < 1.25
        "delta2": 2 / 3,  # 1.7 > 1.5625
        "delta3": 1.0,  # all < 1.953125
    }
    assert_depth(m, expected, 1e-12)
    # delta is strict: a ratio of exactly 1.25 (5/4, exact in binary) is not < 1.25.
    exact = metrics.depth_metrics(np.array([5.0, 3.0]), np.array([4.0, 2.4]))
    assert (exact["delta1"], exact["delta2"]) == (0.0, 1.0)


def test_alignments_hand_computed():
    gt, pred = np.array([1.0, 2.0, 4.0]), np.array([2.0, 3.0, 10.0])
    assert metrics.fit_scale_shift(pred, gt, "none") == (1.0, 0.0)
    assert metrics.fit_scale_shift(pred, gt, "scale", "median") == pytest.approx((2 / 3, 0.0))
    s, t = metrics.fit_scale_shift(pred, gt, "scale", "lstsq")
    assert (s, t) == pytest.approx((48 / 113, 0.0), abs=1e-15)
    # s·[1,2,3] + t ≈ [3,5,8]: normal equations give s = 2.5, t = 1/3.
    s, t = metrics.fit_scale_shift(np.array([1.0, 2, 3]), np.array([3.0, 5, 8]), "scale-shift")
    assert (s, t) == pytest.approx((2.5, 1 / 3), abs=1e-12)


def test_pooled_sums_weigh_every_pixel_alike():
    pool: dict[str, float] = {}
    a = metrics.evaluate_depth(np.full(3, 1.1), np.ones(3), np.ones(3, bool), pool=pool)
    b = metrics.evaluate_depth(np.array([2.0]), np.array([2.0]), np.ones(1, bool), pool=pool)
    assert (a["abs_rel"] + b["abs_rel"]) / 2 == pytest.approx(0.05)  # mean over views
    pooled = metrics.depth_from_sums(pool)
    assert pooled["abs_rel"] == pytest.approx(0.3 / 4) and pool["n"] == 4
    assert pooled["rmse"] == pytest.approx(math.sqrt(3 * 0.01 / 4))


def test_disparity_space_recovers_an_affine_inverse_depth():
    gt = np.array([1.0, 2.0, 4.0, 5.0])
    disparity = 3.0 / gt + 0.7  # what a MiDaS-like model outputs: affine in 1/depth
    valid = np.ones(4, bool)
    m = metrics.evaluate_depth(disparity, gt, valid, "scale-shift", space="disparity")
    assert_depth(m, PERFECT, 1e-9)
    assert (m["scale"], m["shift"]) == pytest.approx((1 / 3, -0.7 / 3), abs=1e-12)
    depth_fit = metrics.evaluate_depth(disparity, gt, valid, "scale-shift", space="depth")
    assert depth_fit["abs_rel"] > 0.05  # affine in disparity is not affine in depth


def test_depth_range_and_clipping():
    gt = np.array([0.5, 1.0, 2.0, 9.0])
    pred = np.array([100.0, 1.1, 2.2, -1.0])
    valid = np.ones(4, bool)
    m = metrics.evaluate_depth(pred, gt, valid, min_depth=0.75, max_depth=5.0)
    assert m["pixels"] == 2 and m["abs_rel"] == pytest.approx(0.1)
    # A negative prediction is clipped to max(min_depth, 1e-6) before the metrics.
    m = metrics.evaluate_depth(np.array([-1.0]), np.array([2.0]), np.ones(1, bool), min_depth=1)
    assert m["abs_rel"] == pytest.approx(0.5)


def test_normal_metrics_hand_computed():
    angles = np.radians([0.0, 10.0, 20.0, 45.0])
    gt = np.tile([0.0, 0.0, -1.0], (4, 1))
    pred = np.stack([np.zeros(4), np.sin(angles), -np.cos(angles)], -1) * 3.0  # not unit
    m = metrics.normal_metrics(pred[None], gt[None], np.ones((1, 4), bool))
    assert m["normal_mean"] == pytest.approx(18.75, abs=1e-9)
    assert m["normal_median"] == pytest.approx(15.0, abs=1e-9)
    assert (m["normal_11_25"], m["normal_22_5"], m["normal_30"]) == (50.0, 75.0, 75.0)


def test_opengl_normals_score_perfect_only_with_their_option():
    n = np.array([[[0.3, -0.5, -0.8]]]) / np.linalg.norm([0.3, -0.5, -0.8])
    gl = n * [1, -1, -1]
    ok = metrics.normal_metrics(metrics.to_opencv_normals(gl, "opengl"), n, np.ones((1, 1), bool))
    bad = metrics.normal_metrics(metrics.to_opencv_normals(gl, "opencv"), n, np.ones((1, 1), bool))
    assert ok["normal_mean"] < 1e-5 and bad["normal_mean"] > 90


def test_mask_iou_hand_computed():
    gt = np.array([[1, 1, 0, 0]], bool)
    assert metrics.mask_iou(np.array([[0, 1, 1, 0]], bool), gt)["iou"] == pytest.approx(1 / 3)
    assert metrics.mask_iou(gt, gt)["iou"] == 1.0


# ---- surfaces --------------------------------------------------------------------------


def test_surface_metrics_hand_computed():
    pred = np.array([[0.0, 0, 0], [1.0, 0, 0]])
    gt = np.array([[0.0, 0, 0.1], [0.0, 0, 0.5], [3.0, 0, 0]])
    m = surface_metrics(pred, gt, tau=0.2)
    # pred -> gt: 0.1, 1.1 (to (0,0,0.1): √(1+0.01) ≈ 1.005, nearest); gt -> pred: 0.1, 0.5, 2.
    acc = (0.1 + math.sqrt(1.01)) / 2
    comp = (0.1 + 0.5 + 2.0) / 3
    assert m["accuracy"] == pytest.approx(acc) and m["completeness"] == pytest.approx(comp)
    assert m["chamfer"] == pytest.approx((acc + comp) / 2)
    assert (m["precision"], m["recall"]) == pytest.approx((1 / 2, 1 / 3))
    assert m["fscore"] == pytest.approx(2 * (1 / 6) / (5 / 6))
    assert math.isnan(m["normal_consistency"])


def test_sampling_is_area_weighted_and_on_the_surface():
    v = np.array([[0, 0, 0], [1, 0, 0], [0, 1, 0], [3, 0, 0], [0, 3, 0]], float)
    f = np.array([[0, 1, 2], [0, 3, 4]])  # areas 0.5 and 4.5, the first inside the second
    pts, nrm = sample_surface(v, f, 40_000, seed=3)
    assert np.all(pts[:, 2] == 0) and np.all(pts[:, :2] >= 0) and np.all(pts.sum(1) <= 3 + 1e-12)
    inside_small = np.mean(pts[:, 0] + pts[:, 1] <= 1)  # uniform over the big one: 1/9
    assert inside_small == pytest.approx(0.1 + 0.9 / 9, abs=0.01)  # 0.2 ± 4 sigma
    assert np.allclose(np.abs(nrm[:, 2]), 1)
    again, _ = sample_surface(v, f, 40_000, seed=3)
    assert np.array_equal(pts, again)


def test_mesh_against_itself_and_shifted(tmp_path):
    gt = gt_folder(tmp_path)
    write_mesh_ply(gt / "mesh.ply", SQUARE_V, SQUARE_F)
    pred = tmp_path / "pred"
    pred.mkdir()
    write_mesh_ply(pred / "mesh.ply", SQUARE_V, SQUARE_F)
    r = evaluate(gt, pred, samples=20_000, tau=0.01)
    assert r["views"] == {}  # only a surface was predicted
    s = r["surface"]["."]
    assert s["chamfer"] == 0.0 and s["fscore"] == 1.0 and s["normal_consistency"] == 1.0
    d = 0.05
    write_mesh_ply(pred / "mesh.ply", SQUARE_V + [0, 0, d], SQUARE_F)
    s = evaluate(gt, pred, samples=20_000, tau=0.01, seed=1)["surface"]["."]
    # Each sample's nearest neighbour lies at √(d² + r²), r ~ the in-plane sample spacing
    # (mean r² = 1/(π·20000) → +1.6e-4): Chamfer = d within 1e-3.
    assert s["chamfer"] == pytest.approx(d, abs=1e-3) and s["fscore"] == 0.0
    assert s["normal_consistency"] == pytest.approx(1.0)
    s = evaluate(gt, pred, samples=20_000, tau=2 * d)["surface"]["."]
    assert s["fscore"] == 1.0


@pytest.mark.parametrize("encoding", ["binary", "ascii"])
def test_point_clouds_written_by_trimesh(tmp_path, encoding):
    import trimesh

    from blendtruth.evaluation.io import read_points_ply

    pts = np.random.default_rng(0).random((50, 3))
    path = tmp_path / "points.ply"
    path.write_bytes(trimesh.PointCloud(pts).export(file_type="ply", encoding=encoding))
    got, normals = read_points_ply(path)
    assert normals is None and np.allclose(got, pts, atol=1e-6)


def test_points_against_gt_backprojection(tmp_path):
    gt = gt_folder(tmp_path)
    from blendtruth.evaluation.io import gt_backprojection, gt_views
    from blendtruth.writers.points_ply import write_ply

    pts, nrm = gt_backprojection(gt_views(gt)[0])
    # View 0 at the identity pose sees the plane through (0, 0, 2) with normal (0, .3, -1).
    on_plane = pts[: int(gt_arrays(gt, "0000")["mask"].sum())]
    assert np.allclose((on_plane - [0, 0, 2]) @ [0, 0.3, -1], 0, atol=1e-5)
    pred = tmp_path / "pred"
    pred.mkdir()
    write_ply(pred / "points.ply", pts + [0.02, 0, 0], normals=nrm)
    s = evaluate(gt, pred, tau=0.01)["surface"]["."]
    assert s["gt_source"] == "union of GT back-projections"
    # The pixel spacing on the planes (~0.14) exceeds the shift: each point's nearest
    # neighbour is itself moved by 0.02, except near where the two views' planes meet.
    assert 0.0 < s["chamfer"] <= 0.02 + 1e-6 and s["chamfer"] == pytest.approx(0.02, abs=1e-4)
    assert s["normal_consistency"] == pytest.approx(1.0, abs=1e-3)
