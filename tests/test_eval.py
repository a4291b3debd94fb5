"""`blendtruth eval`: every metric and alignment against hand-computed values, perfect
scores for the ground truth itself, and bad predictions refused in one line (exit 2)."""

from __future__ import annotations

import csv
import json
import math
import shutil
from pathlib import Path

import numpy as np
import pytest

from blendtruth.cli import main
from blendtruth.errors import BlendtruthError
from blendtruth.evaluation import metrics
from blendtruth.evaluation.run import evaluate
from blendtruth.evaluation.surface import sample_surface, surface_metrics
from blendtruth.geometry.camera import Intrinsics
from blendtruth.view import Camera, View
from blendtruth.writers.meshfile import write_mesh_ply
from blendtruth.writers.npz import write_view_npz

from analytic import ray_plane

W, H = 16, 12
K = np.array([[14.0, 0.0, 8.5], [0.0, 13.0, 5.75], [0.0, 0.0, 1.0]])
PERFECT = {"abs_rel": 0.0, "sq_rel": 0.0, "rmse": 0.0, "rmse_log": 0.0,
           "delta1": 1.0, "delta2": 1.0, "delta3": 1.0}  # fmt: skip


def _view(point, normal) -> View:
    intr = Intrinsics.from_K(K, W, H)
    depth, nrm, mask = ray_plane(intr, point, normal)
    mask[:, :3] = False  # a background strip: the mask must be honoured
    depth = np.where(mask, depth, 0.0)
    nrm = np.where(mask[..., None], nrm, 0.0)
    rays = np.linalg.solve(K, np.stack([*np.meshgrid(np.arange(W) + 0.5, np.arange(H) + 0.5),
                                        np.ones((H, W))], -1).reshape(-1, 3).T).T  # fmt: skip
    length = np.linalg.norm(rays / rays[:, 2:], axis=1).reshape(H, W)
    return View(Camera(intr, np.eye(4)), depth.astype(np.float32),
                (depth * length).astype(np.float32), nrm.astype(np.float32), mask)  # fmt: skip


def _gt_folder(root: Path) -> Path:
    """A render folder of two analytic views of tilted planes (depths 1.4-3.3)."""
    folder = root / "gt"
    (folder / "views").mkdir(parents=True)
    write_view_npz(folder / "views" / "0000.npz", _view((0, 0, 2), (0, 0.3, -1)))
    write_view_npz(folder / "views" / "0001.npz", _view((0, 0, 2.5), (0.4, -0.2, -1)))
    return folder


def _gt(folder: Path, name: str) -> dict[str, np.ndarray]:
    with np.load(folder / "views" / f"{name}.npz") as v:
        return {k: v[k] for k in ("depth", "normal", "mask")}


def _predict(gt: Path, pred: Path, fn, ext: str = ".npy") -> Path:
    pred.mkdir(parents=True, exist_ok=True)
    for name in ("0000", "0001"):
        g = _gt(gt, name)
        out = fn(g["depth"].astype(np.float64), g["normal"], g["mask"])
        if ext == ".npy":
            np.save(pred / f"{name}.npy", out)
        else:
            np.savez(pred / f"{name}.npz", **out)
    return pred


def _assert_depth(result: dict, expected: dict, tol: float = 1e-9) -> None:
    for key, value in expected.items():
        assert result[key] == pytest.approx(value, abs=tol), key


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
    _assert_depth(m, expected, 1e-12)
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


def test_disparity_space_recovers_an_affine_inverse_depth():
    gt = np.array([1.0, 2.0, 4.0, 5.0])
    disparity = 3.0 / gt + 0.7  # what a MiDaS-like model outputs: affine in 1/depth
    valid = np.ones(4, bool)
    m = metrics.evaluate_depth(disparity, gt, valid, "scale-shift", space="disparity")
    _assert_depth(m, PERFECT, 1e-9)
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

SQUARE_V = np.array([[0, 0, 0], [1, 0, 0], [1, 1, 0], [0, 1, 0]], float)
SQUARE_F = np.array([[0, 1, 2], [0, 2, 3]])


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
    gt = _gt_folder(tmp_path)
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
    gt = _gt_folder(tmp_path)
    from blendtruth.evaluation.io import gt_backprojection, gt_views
    from blendtruth.geometry.pointcloud import write_ply

    pts, nrm = gt_backprojection(gt_views(gt)[0])
    # View 0 at the identity pose sees the plane through (0, 0, 2) with normal (0, .3, -1).
    on_plane = pts[: int(_gt(gt, "0000")["mask"].sum())]
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


# ---- whole folders -------------------------------------------------------------------


def test_gt_against_itself_is_perfect(tmp_path):
    gt = _gt_folder(tmp_path)
    pred = _predict(gt, tmp_path / "pred", lambda d, n, m: {"depth": d, "normal": n, "mask": m},
                    ".npz")  # fmt: skip
    r = evaluate(gt, pred)
    assert set(r["views"]) == {"0000", "0001"}
    _assert_depth(r["total"], PERFECT, 1e-6)
    assert r["total"]["normal_mean"] < 0.05 and r["total"]["normal_11_25"] == 100.0
    assert r["total"]["iou"] == 1.0
    assert r["views"]["0000"]["pixels"] == H * (W - 3)


def test_scaled_gt_abs_rel_and_alignments(tmp_path):
    gt = _gt_folder(tmp_path)
    pred = _predict(gt, tmp_path / "p1", lambda d, n, m: d * 1.1)
    none = evaluate(gt, pred, "none")["total"]
    assert none["abs_rel"] == pytest.approx(0.1, abs=1e-6) and none["delta1"] == 1.0
    for method in ("median", "lstsq"):
        r = evaluate(gt, pred, "scale", scale_method=method)
        _assert_depth(r["total"], PERFECT, 1e-6)
        assert r["views"]["0000"]["scale"] == pytest.approx(1 / 1.1, rel=1e-6)
    affine = _predict(gt, tmp_path / "p2", lambda d, n, m: 0.5 * d + 0.8)
    r = evaluate(gt, affine, "scale-shift")
    _assert_depth(r["total"], PERFECT, 1e-6)
    assert r["views"]["0001"]["shift"] == pytest.approx(-1.6, abs=1e-5)
    assert evaluate(gt, affine, "scale")["total"]["abs_rel"] > 0.02


def test_cli_synthetic_folder_json_csv_png_exr(tmp_path, capsys):
    import cv2
    import OpenEXR

    gt = _gt_folder(tmp_path)
    pred = tmp_path / "pred"
    pred.mkdir()
    g0, g1 = _gt(gt, "0000"), _gt(gt, "0001")
    cv2.imwrite(str(pred / "0000.png"), np.round(g0["depth"] * 1.1 / 1e-4).astype(np.uint16))
    header = {"compression": OpenEXR.ZIP_COMPRESSION, "type": OpenEXR.scanlineimage}
    gl = (g1["normal"] * [1, -1, -1]).astype(np.float32)
    channels = {"depth": g1["depth"] * np.float32(1.1)}
    channels |= {f"normal.{a}": np.ascontiguousarray(gl[..., i]) for i, a in enumerate("XYZ")}
    OpenEXR.File(header, channels).write(str(pred / "0001.exr"))
    js, cs = tmp_path / "r.json", tmp_path / "r.csv"
    args = [
        "eval",
        str(gt),
        str(pred),
        "--depth-scale",
        "1e-4",
        "--json",
        str(js),
        "--csv",
        str(cs),
    ]
    assert main([*args, "--normal-convention", "opengl"]) == 0
    out = capsys.readouterr().out
    assert "abs_rel" in out and "total" in out
    r = json.loads(js.read_text())
    assert r["total"]["abs_rel"] == pytest.approx(0.1, abs=1e-3)  # PNG quantised at 1e-4
    assert r["views"]["0001"]["normal_mean"] < 0.05 and r["meta"]["normal_convention"] == "opengl"
    table = list(csv.DictReader(cs.open()))
    assert [row["name"] for row in table] == ["0000", "0001", "total"]
    assert float(table[2]["abs_rel"]) == pytest.approx(r["total"]["abs_rel"])
    assert main([*args, "--align", "scale"]) == 0
    r = json.loads(js.read_text())
    assert r["total"]["abs_rel"] < 1e-4 and r["views"]["0001"]["normal_mean"] > 90


def test_own_exr_and_png16_exports_read_as_predictions(tmp_path):
    from blendtruth.exports import export

    gt = _gt_folder(tmp_path)
    export("exr", gt, None)
    export("png16", gt, None, depth_scale=1e-4)
    r = evaluate(gt, gt / "exr")
    _assert_depth(r["total"], PERFECT, 1e-6)
    assert r["total"]["normal_mean"] < 0.05 and r["total"]["iou"] == 1.0
    r = evaluate(gt, gt / "png16", depth_scale=1e-4)
    # Counts round to depth_scale / 2 = 5e-5 at depths >= 1.4: abs_rel <= 3.6e-5.
    assert 0 < r["total"]["abs_rel"] <= 5e-5 / 1.4 and r["total"]["delta1"] == 1.0


def test_single_render_layout(tmp_path):
    gt = tmp_path / "out"
    gt.mkdir()
    write_view_npz(gt / "view_0000.npz", _view((0, 0, 2), (0, 0.3, -1)))
    pred = tmp_path / "pred"
    pred.mkdir()
    with np.load(gt / "view_0000.npz") as v:
        np.save(pred / "0000.npy", v["depth"] * 0.9)
    assert evaluate(gt, pred)["views"]["0000"]["abs_rel"] == pytest.approx(0.1, abs=1e-6)
    (pred / "0000.npy").unlink()
    # A patch of the seen plane z = 2 + 0.3 y, inside the view: every sample is within a
    # pixel footprint (~0.15) of a GT point, and the normals agree.
    patch = SQUARE_V * [1.3, 1.4, 0] + [-0.5, -0.7, 0]
    patch[:, 2] = 2 + 0.3 * patch[:, 1]
    write_mesh_ply(pred / "mesh.ply", patch, SQUARE_F)
    s = evaluate(gt, pred, samples=2000)["surface"]["."]
    assert s["gt_source"] == "union of GT back-projections" and s["accuracy"] < 0.1
    assert s["normal_consistency"] == pytest.approx(1.0, abs=1e-6)


def test_dataset_layout_names_views_by_model(tmp_path):
    data = tmp_path / "data"
    (data / "models").mkdir(parents=True)
    for model in ("a", "b"):
        shutil.copytree(_gt_folder(tmp_path / model), data / "models" / model)
    pred = tmp_path / "pred"
    _predict(data / "models" / "a", pred / "a", lambda d, n, m: d * 1.2)
    _predict(data / "models" / "b", pred / "b", lambda d, n, m: d)
    r = evaluate(data, pred)
    assert list(r["views"]) == ["a/0000", "a/0001", "b/0000", "b/0001"]
    assert r["views"]["a/0001"]["abs_rel"] == pytest.approx(0.2, abs=1e-6)
    assert r["total"]["abs_rel"] == pytest.approx(0.1, abs=1e-6)  # mean over views


def _bad(tmp_path: Path, setup, needle: str, capsys, extra=()) -> None:
    gt = _gt_folder(tmp_path)
    pred = _predict(gt, tmp_path / "pred", lambda d, n, m: d)
    setup(pred)
    code = main(["eval", str(gt), str(pred), *extra])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1 and err[0].startswith("blendtruth: error:"), err
    assert needle in err[0], err[0]


def _swap(pred: Path, name: str, **arrays) -> None:
    (pred / f"{name[:4]}.npy").unlink()
    np.savez(pred / name, **arrays)


@pytest.mark.parametrize(
    ("setup", "needle", "extra"),
    [
        (lambda p: (p / "0001.npy").unlink(), "no prediction for view 0001", ()),
        (lambda p: np.save(p / "0001.npy", np.ones((H, W + 1))), "shape (12, 17)", ()),
        (lambda p: np.save(p / "0001.npy", np.full((H, W), np.nan)), "NaN", ()),
        (lambda p: (p / "0001.npy").rename(p / "0001.tiff"), "0001.tiff: unknown prediction", ()),
        (lambda p: np.savez(p / "0001.npz", depth=np.ones((H, W))), "several predictions", ()),
        (lambda p: _swap(p, "0000.npz", rgb=np.ones((H, W))), "none of the keys", ()),
        (lambda p: None, "no ground-truth pixel", ("--min-depth", "50")),
        (lambda p: None, "--max-depth", ("--max-depth", "-1")),
        (lambda p: (p / "0000.npy").write_bytes(b"junk"), "0000.npy: unreadable", ()),
        (lambda p: np.save(p / "0000.npy", np.zeros((H, W, 3))), "zero-length", ()),
        (
            lambda p: np.save(p / "0001.npy", np.ones((H, W))),
            "constant",
            ("--align", "scale-shift"),
        ),
    ],
)
def test_bad_predictions_one_line_exit_2(tmp_path, capsys, setup, needle, extra):
    _bad(tmp_path, setup, needle, capsys, extra)


def test_bad_png_and_paths(tmp_path, capsys):
    import cv2

    def png(p):
        (p / "0000.npy").unlink()
        cv2.imwrite(str(p / "0000.png"), np.ones((H, W), np.uint16))

    _bad(tmp_path / "a", png, "needs --depth-scale", capsys)
    _bad(tmp_path / "b", lambda p: None, "--json", capsys, ("--json", str(tmp_path / "b")))
    _bad(tmp_path / "d", lambda p: None, "does not exist", capsys, ("--csv", "/nonexistent/r.csv"))
    assert main(["eval", str(tmp_path / "nope"), str(tmp_path)]) == 2
    with pytest.raises(BlendtruthError, match="no such prediction folder"):
        evaluate(_gt_folder(tmp_path / "c"), tmp_path / "c" / "missing")


# ---- a real render ----------------------------------------------------------------------


@pytest.mark.render
def test_cli_on_a_tiny_render(tmp_path, capsys):
    gt = tmp_path / "gt"
    args = ["render", "cube", "--views", "2", "--no-rgb", "--width", "64", "--height", "48"]
    assert main([*args, "--out", str(gt)]) == 0
    assert (gt / "mesh.ply").is_file()
    pred = _predict(gt, tmp_path / "pred", lambda d, n, m: {"depth": d * 1.1,
                    "normal": n * [1, -1, -1], "mask": m}, ".npz")  # fmt: skip
    shutil.copy(gt / "mesh.ply", pred / "mesh.ply")
    js = tmp_path / "r.json"
    base = ["eval", str(gt), str(pred), "--json", str(js), "--samples", "5000"]
    assert main([*base, "--normal-convention", "opengl"]) == 0
    r = json.loads(js.read_text())
    assert r["total"]["abs_rel"] == pytest.approx(0.1, abs=1e-6)
    assert r["total"]["normal_mean"] < 0.05 and r["total"]["iou"] == 1.0
    assert r["surface"]["."]["chamfer"] == 0.0 and r["surface"]["."]["fscore"] == 1.0
    assert main([*base, "--align", "scale"]) == 0
    r = json.loads(js.read_text())
    assert r["total"]["abs_rel"] < 1e-6 and r["total"]["normal_mean"] > 90
