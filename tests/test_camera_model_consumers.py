"""Camera-model consumers beyond tests/test_check_models.py: `check` on a fisheye wider
than 180 deg (rays behind the image plane) passes and fails when perturbed; COLMAP and
nerfstudio exports refuse what they cannot express in one line; the nerfstudio export
writes a fisheye of <= 180 deg as OPENCV_FISHEYE whose rays, generated as nerfstudio
generates them, are ours."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from blendtruth.cli import main
from export_helpers import MESHES, npz

# (name, camera model, fisheye fov, width, height)
CASES = [
    ("ortho", "ortho", 180.0, 64, 48),
    ("equirect", "equirect", 180.0, 64, 32),
    ("fisheye170", "fisheye", 170.0, 64, 48),
    ("fisheye220", "fisheye", 220.0, 64, 64),
]
WIDE = "fisheye220"  # the other models' check is tests/test_check_models.py


def _render(out: Path, model: str, fov: float, w: int, h: int) -> Path:
    import blendtruth
    from blendtruth import RenderSettings, SceneSpec, ViewPlan

    blendtruth.render_model(
        SceneSpec(models=[MESHES / "spot.obj"]),
        ViewPlan(sampler="orbit", views=3, camera_model=model, fisheye_fov=fov),
        RenderSettings(width=w, height=h, rgb=False, samples=1),
        out,
    )
    assert (out / "mesh.ply").is_file()
    return out


@pytest.fixture(scope="module")
def renders(tmp_path_factory) -> dict[str, Path]:
    pytest.importorskip("bpy")
    root = tmp_path_factory.mktemp("models")
    return {name: _render(root / name, *case) for name, *case in CASES}


def _perturbed(src: Path, dst: Path, kind: str, view: str = "0001") -> Path:
    shutil.copytree(src, dst)
    a = npz(dst, view)
    fx = a["K"][0, 0]  # pixels per scene unit (ortho) or per radian (panoramic)
    pose = a["cam_to_world"]
    if kind == "depth":
        a["depth"] = (a["depth"] * (1 + 1e-3)).astype(np.float32)
    elif "ortho" in src.name:  # half a pixel sideways: the footprint is 1/fx scene units
        pose[:3, 3] += pose[:3, 0] * 0.5 / fx
    else:  # turn by half a pixel's angle about the camera's y axis
        c, s = np.cos(0.5 / fx), np.sin(0.5 / fx)
        pose[:3, :3] = pose[:3, :3] @ np.array([[c, 0, s], [0, 1, 0], [-s, 0, c]])
    np.savez_compressed(dst / "views" / f"{view}.npz", **a)
    return dst


@pytest.mark.render
def test_check_passes_a_fisheye_wider_than_180(renders, capsys):
    assert main(["check", str(renders[WIDE])]) == 0
    out = capsys.readouterr().out
    assert ": PASS" in out, out


@pytest.mark.render
@pytest.mark.parametrize("kind", ["depth", "pose"])
def test_check_fails_a_wide_fisheye_when_perturbed(renders, kind, tmp_path, capsys):
    bad = _perturbed(renders[WIDE], tmp_path / WIDE, kind)
    assert main(["check", str(bad)]) == 1
    out = capsys.readouterr().out
    assert "FAIL" in out, out
    if kind == "depth":
        assert "depth_median" in out.split("FAIL")[1].split(")")[0], out


@pytest.mark.render
@pytest.mark.parametrize(
    ("name", "formats"),
    [("ortho", ("colmap", "nerfstudio")), ("equirect", ("colmap",)),
     ("fisheye220", ("colmap", "nerfstudio"))],
)  # fmt: skip
def test_colmap_and_nerfstudio_refuse_what_they_cannot_express(
    renders, name, formats, tmp_path, capsys
):
    for fmt in formats:
        out = tmp_path / fmt
        assert main(["export", fmt, str(renders[name]), "--out", str(out)]) == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and ("220" if "fisheye" in name else name) in err[0], err
        assert not (out / "sparse").exists() and not (out / "transforms.json").exists()


@pytest.mark.render
def test_nerfstudio_fisheye_rays_are_ours(renders, tmp_path):
    """transforms.json of a 170 deg fisheye, its rays generated the way nerfstudio's
    Cameras.generate_rays does for CameraType.FISHEYE (nerfstudio/cameras/cameras.py:
    pixel centres at +0.5, c = ((u - cx)/fl_x, -(v - cy)/fl_y), theta = |c| clipped to pi,
    d = (c sin(theta)/theta, -cos(theta)) in OpenGL axes, rotated by transform_matrix)."""
    from blendtruth.exports.nerfstudio import export_nerfstudio
    from blendtruth.exports.source import render_folders

    (folder,) = render_folders(renders["fisheye170"])
    export_nerfstudio(folder, tmp_path, require_rgb=False)
    data = json.loads((tmp_path / "transforms.json").read_text())
    assert data["camera_model"] == "OPENCV_FISHEYE"
    assert all(data[k] == 0.0 for k in ("k1", "k2", "k3", "k4"))
    w, h = data["w"], data["h"]
    u, v = np.meshgrid(np.arange(w) + 0.5, np.arange(h) + 0.5)
    c = np.stack([(u - data["cx"]) / data["fl_x"], -(v - data["cy"]) / data["fl_y"]], -1)
    theta = np.clip(np.linalg.norm(c, axis=-1), 0.0, np.pi)
    d_gl = np.concatenate([c * (np.sin(theta) / theta)[..., None], -np.cos(theta)[..., None]], -1)
    for frame in data["frames"]:
        name = Path(frame["depth_file_path"]).stem
        pose = np.array(frame["transform_matrix"])
        theirs = d_gl @ pose[:3, :3].T
        a = npz(renders["fisheye170"], name)
        view = folder.read(name)
        o, d, valid = view.camera.projection.rays(view.camera.projection.pixel_grid())
        ours = d @ a["cam_to_world"][:3, :3].T
        assert np.abs(theirs - ours)[valid].max() <= 1e-9
        assert np.allclose(pose[:3, 3], a["cam_to_world"][:3, 3], rtol=0, atol=1e-12)
        # its depth file (x 1e-3, nerfstudio's default scale) along its unit ray is our point
        depth = np.load(tmp_path / frame["depth_file_path"]) * 1e-3
        m = a["mask"]
        assert not (~valid & m).any()  # nothing is seen outside the image circle
        pts = pose[:3, 3] + theirs[m] * depth[m, None]
        want = a["cam_to_world"][:3, 3] + ours[m] * a["distance"][m, None].astype(np.float64)
        assert np.abs(pts - want).max() <= 1e-6


@pytest.mark.render
def test_views_loaded_from_files_and_shards_keep_their_camera_model(renders, tmp_path):
    import blendtruth

    src = renders["fisheye170"]
    assert main(["export", "webdataset", str(src), "--out", str(tmp_path / "wds")]) == 0
    (shard,) = sorted((tmp_path / "wds").rglob("*.tar"))
    for views in (list(blendtruth.load(src)), list(blendtruth.load(shard))):
        assert len(views) == 3
        for view in views:
            cam = view.camera
            assert cam.model == "fisheye" and cam.fisheye_fov_deg == 170.0
            assert cam.projection.colmap()[0] == "OPENCV_FISHEYE"
