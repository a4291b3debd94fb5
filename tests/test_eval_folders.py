"""`blendtruth eval` on whole folders: perfect scores for the ground truth itself, known
scores for scaled/shifted/flipped predictions, every layout and file type, bad predictions
refused in one line (exit 2), and the CLI on a tiny real render."""

from __future__ import annotations

import csv
import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from blendtruth.cli import main
from blendtruth.errors import BlendtruthError, BlendtruthWarning
from blendtruth.evaluation.run import evaluate
from blendtruth.writers.meshfile import write_mesh_ply
from blendtruth.writers.npz import write_view_npz
from eval_helpers import (
    PERFECT,
    SQUARE_F,
    SQUARE_V,
    H,
    W,
    assert_depth,
    gt_arrays,
    gt_folder,
    predict,
    view,
)

# ---- whole folders -------------------------------------------------------------------


def test_gt_against_itself_is_perfect(tmp_path):
    gt = gt_folder(tmp_path)
    pred = predict(gt, tmp_path / "pred", lambda d, n, m: {"depth": d, "normal": n, "mask": m},
                    ".npz")  # fmt: skip
    r = evaluate(gt, pred)
    assert set(r["views"]) == {"0000", "0001"}
    assert_depth(r["total"], PERFECT, 1e-6)
    assert r["total"]["normal_mean"] < 0.05 and r["total"]["normal_11_25"] == 100.0
    assert r["total"]["iou"] == 1.0
    assert r["views"]["0000"]["pixels"] == H * (W - 3)


def test_scaled_gt_abs_rel_and_alignments(tmp_path):
    gt = gt_folder(tmp_path)
    pred = predict(gt, tmp_path / "p1", lambda d, n, m: d * 1.1)
    none = evaluate(gt, pred, "none")["total"]
    assert none["abs_rel"] == pytest.approx(0.1, abs=1e-6) and none["delta1"] == 1.0
    for method in ("median", "lstsq"):
        r = evaluate(gt, pred, "scale", scale_method=method)
        assert_depth(r["total"], PERFECT, 1e-6)
        assert r["views"]["0000"]["scale"] == pytest.approx(1 / 1.1, rel=1e-6)
    affine = predict(gt, tmp_path / "p2", lambda d, n, m: 0.5 * d + 0.8)
    r = evaluate(gt, affine, "scale-shift")
    assert_depth(r["total"], PERFECT, 1e-6)
    assert r["views"]["0001"]["shift"] == pytest.approx(-1.6, abs=1e-5)
    assert evaluate(gt, affine, "scale")["total"]["abs_rel"] > 0.02


def test_cli_synthetic_folder_json_csv_png_exr(tmp_path, capsys):
    import cv2
    import OpenEXR

    gt = gt_folder(tmp_path)
    pred = tmp_path / "pred"
    pred.mkdir()
    g0, g1 = gt_arrays(gt, "0000"), gt_arrays(gt, "0001")
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
    assert [row["name"] for row in table] == ["0000", "0001", "total", "pooled"]
    assert float(table[2]["abs_rel"]) == pytest.approx(r["total"]["abs_rel"])
    assert main([*args, "--align", "scale"]) == 0
    r = json.loads(js.read_text())
    assert r["total"]["abs_rel"] < 1e-4 and r["views"]["0001"]["normal_mean"] > 90


def test_own_exr_and_png16_exports_read_as_predictions(tmp_path):
    from blendtruth.exports import export

    gt = gt_folder(tmp_path)
    export("exr", gt, None)
    export("png16", gt, None, depth_scale=1e-4)
    r = evaluate(gt, gt / "exr")
    assert_depth(r["total"], PERFECT, 1e-6)
    assert r["total"]["normal_mean"] < 0.05 and r["total"]["iou"] == 1.0
    r = evaluate(gt, gt / "png16", depth_scale=1e-4)
    # Counts round to depth_scale / 2 = 5e-5 at depths >= 1.4: abs_rel <= 3.6e-5.
    assert 0 < r["total"]["abs_rel"] <= 5e-5 / 1.4 and r["total"]["delta1"] == 1.0


def test_single_render_layout(tmp_path):
    gt = tmp_path / "out"
    gt.mkdir()
    write_view_npz(gt / "view_0000.npz", view((0, 0, 2), (0, 0.3, -1)))
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
        shutil.copytree(gt_folder(tmp_path / model), data / "models" / model)
    pred = tmp_path / "pred"
    predict(data / "models" / "a", pred / "a", lambda d, n, m: d * 1.2)
    predict(data / "models" / "b", pred / "b", lambda d, n, m: d)
    np.save(pred / "a" / "0002.npy", np.ones((H, W)))  # no such GT view: warned, not scored
    with pytest.warns(BlendtruthWarning, match=r"1 prediction files match no .*a/0002.npy"):
        r = evaluate(data, pred)
    assert list(r["views"]) == ["a/0000", "a/0001", "b/0000", "b/0001"]
    assert r["views"]["a/0001"]["abs_rel"] == pytest.approx(0.2, abs=1e-6)
    assert r["total"]["abs_rel"] == pytest.approx(0.1, abs=1e-6)  # mean over views


def _bad(tmp_path: Path, setup, needle: str, capsys, extra=()) -> None:
    gt = gt_folder(tmp_path)
    pred = predict(gt, tmp_path / "pred", lambda d, n, m: d)
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
        (lambda p: None, "--seed >= 0", ("--seed", "-1")),
        (lambda p: None, "--tau", ("--tau", "nan")),
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
        evaluate(gt_folder(tmp_path / "c"), tmp_path / "c" / "missing")


# ---- a real render ----------------------------------------------------------------------


@pytest.mark.render
def test_cli_on_a_tiny_render(tmp_path, capsys):
    gt = tmp_path / "gt"
    args = ["render", "cube", "--views", "2", "--no-rgb", "--width", "64", "--height", "48"]
    assert main([*args, "--out", str(gt)]) == 0
    assert (gt / "mesh.ply").is_file()
    pred = predict(gt, tmp_path / "pred", lambda d, n, m: {"depth": d * 1.1,
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
