"""``check`` on every camera model the renderer writes: correct ortho, equirect and fisheye
renders pass, and each fails when its depth is scaled by 1 + 1e-3 or its pose is moved by
half a pixel's footprint (an independent trimesh + embreex cast along the model's rays)."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import numpy as np
import pytest

from blendtruth.cli import main
from blendtruth.errors import BlendtruthError
from export_helpers import MESHES, npz

pytestmark = pytest.mark.render
pytest.importorskip("bpy")

MODELS = {
    # model: (extra options, image size)
    "ortho": ([], (64, 48)),
    "equirect": (["--radius", "1.3"], (128, 64)),
    "fisheye": (["--fisheye-fov", "180"], (64, 64)),
}


@pytest.fixture(scope="module", params=sorted(MODELS))
def rendered(request, tmp_path_factory) -> tuple[str, Path]:
    model = request.param
    extra, (w, h) = MODELS[model]
    out = tmp_path_factory.mktemp(model) / model
    args = ["render", str(MESHES / "spot.obj"), "--camera", model, "--views", "3",
            "--sampler", "orbit", "--width", str(w), "--height", str(h), "--no-rgb",
            "--out", str(out), *extra]  # fmt: skip
    assert main(args) == 0
    return model, out


def _figures(out: str) -> dict[str, float]:
    return {k: float(v) for k, v in re.findall(r"(\w+) ([-\d.e+]+)", out.split("views:")[1])}


def test_check_passes_every_camera_model(rendered, capsys):
    model, folder = rendered
    assert main(["check", str(folder)]) == 0, capsys.readouterr().out
    figures = _figures(capsys.readouterr().out)
    assert figures["mask_disagreement"] == 0.0, model
    assert figures["depth_median"] <= 1e-6, model
    if model != "equirect":  # the orbit's three equirect views share few surface points
        assert figures["reprojection_px"] <= 0.25, model


def _perturb(src: Path, dst: Path, kind: str, model: str) -> Path:
    shutil.copytree(src, dst)
    a = npz(dst, "0001")
    pose = a["cam_to_world"]
    if kind == "depth":
        a["depth"] = (a["depth"] * (1 + 1e-3)).astype(np.float32)
    elif model == "ortho":  # slide the image plane sideways by half a pixel
        pose[:3, 3] += pose[:3, 0] * 0.5 / a["K"][0, 0]
    else:  # turn the camera by the angle of half a pixel (fx: pixels per radian)
        angle = 0.5 / a["K"][0, 0]
        c, s = np.cos(angle), np.sin(angle)
        pose[:3, :3] = pose[:3, :3] @ np.array([[c, 0, s], [0, 1, 0], [-s, 0, c]])
    np.savez_compressed(dst / "views" / "0001.npz", **a)
    return dst


@pytest.mark.parametrize("kind", ["depth", "pose"])
def test_check_fails_each_model_on_scaled_depth_or_half_pixel_pose(
    rendered, tmp_path, capsys, kind
):
    model, folder = rendered
    bad = _perturb(folder, tmp_path / "bad", kind, model)
    assert main(["check", str(bad)]) == 1, (model, kind)
    out = capsys.readouterr().out
    failed = out.split("FAIL (")[1].split(")")[0]
    assert ("depth_median" in failed) if kind == "depth" else ("depth_outliers" in failed), out


def test_colmap_export_writes_the_models_own_camera_or_refuses(rendered, tmp_path, capsys):
    model, folder = rendered
    code = main(["export", "colmap", str(folder), "--out", str(tmp_path / "colmap")])
    err = capsys.readouterr().err
    if model != "fisheye":
        # ortho and equirect rays have no COLMAP camera model: one line, exit 2.
        assert code == 2 and len(err.strip().splitlines()) == 1, err
        assert "COLMAP has no camera model" in err and model in err
        assert not (tmp_path / "colmap" / "sparse" / "0" / "cameras.txt").exists()
        return
    pycolmap = pytest.importorskip("pycolmap")
    assert code == 0, err
    rec = pycolmap.Reconstruction(str(tmp_path / "colmap" / "sparse" / "0"))
    (cam,) = rec.cameras.values()
    assert cam.model.name == "OPENCV_FISHEYE"
    a = npz(folder, "0000")
    np.testing.assert_array_equal(cam.params[:4], [a["K"][0, 0], a["K"][1, 1], a["K"][0, 2],
                                                   a["K"][1, 2]])  # fmt: skip
    # Every surface pixel's point (along our fisheye ray at its distance) projects, through
    # COLMAP's own model, onto its pixel centre.
    from blendtruth.geometry.camera import Intrinsics
    from blendtruth.geometry.camera_models import Fisheye

    lens = Fisheye(Intrinsics.from_K(a["K"], 64, 64), 180.0)
    rows, cols = np.nonzero(a["mask"])
    centres = np.stack([cols + 0.5, rows + 0.5], axis=1)
    o, d, _ = lens.rays(centres)
    points = o + d * a["distance"][rows, cols, None].astype(np.float64)
    np.testing.assert_allclose(cam.img_from_cam(points), centres, atol=1e-6)
    # The exported 3D points land on their observations in every image.
    for image in rec.images.values():
        for p2d in image.points2D:
            if p2d.has_point3D():
                xyz = rec.points3D[p2d.point3D_id].xyz
                cam_xyz = image.cam_from_world() * xyz
                assert np.linalg.norm(cam.img_from_cam(cam_xyz) - p2d.xy) < 1e-6


def test_flow_pairs_of_non_pinhole_views_are_refused(rendered, tmp_path, capsys):
    model, folder = rendered
    extra, (w, h) = MODELS[model]
    out = tmp_path / "pairs"
    code = main(["render", str(MESHES / "spot.obj"), "--camera", model, "--views", "2",
                 "--width", str(w), "--height", str(h), "--no-rgb", "--pairs", "consecutive",
                 "--out", str(out), *extra])  # fmt: skip
    err = capsys.readouterr().err
    assert code == 2 and "pinhole cameras only" in err and len(err.strip().splitlines()) == 1
    assert not out.exists()
    from blendtruth.geometry.correspondence import flow_between
    from blendtruth.writers.npz import read_view_npz

    view = read_view_npz(folder / "views" / "0000.npz")
    with pytest.raises(BlendtruthError, match="pinhole cameras only"):
        flow_between(view, read_view_npz(folder / "views" / "0001.npz"))
