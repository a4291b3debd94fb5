"""Every consumer on ortho, equirect and fisheye renders: `check` casts each model's own
rays (passes the render, fails it when depth is scaled by 1 + 1e-3 or the pose moves by
half a pixel's footprint), `export colmap` writes OPENCV_FISHEYE for a fisheye (read back
with pycolmap: projections agree with our model to 1e-6 px) and refuses ortho and
equirect, `export nerfstudio` refuses them, flow pairs of non-pinhole views are refused."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from blendtruth.cli import main
from blendtruth.errors import BlendtruthError
from blendtruth.geometry.correspondence import flow_between
from blendtruth.geometry.projection import model_intrinsics
from blendtruth.multiview import ViewPlan
from blendtruth.view import Camera, View
from export_helpers import MESHES, npz

# (name, camera model, fisheye fov, width, height)
CASES = [
    ("ortho", "ortho", 180.0, 64, 48),
    ("equirect", "equirect", 180.0, 64, 32),
    ("fisheye170", "fisheye", 170.0, 64, 48),
    ("fisheye220", "fisheye", 220.0, 64, 64),
]


def _render(out: Path, model: str, fov: float, w: int, h: int) -> Path:
    import blendtruth
    from blendtruth import RenderSettings, SceneSpec

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
@pytest.mark.parametrize("name", [c[0] for c in CASES])
def test_check_passes_each_camera_model(renders, name, capsys):
    assert main(["check", str(renders[name])]) == 0
    out = capsys.readouterr().out
    assert ": PASS" in out, out


@pytest.mark.render
@pytest.mark.parametrize("kind", ["depth", "pose"])
@pytest.mark.parametrize("name", [c[0] for c in CASES])
def test_check_fails_each_camera_model_when_perturbed(renders, name, kind, tmp_path, capsys):
    bad = _perturbed(renders[name], tmp_path / name, kind)
    assert main(["check", str(bad)]) == 1
    out = capsys.readouterr().out
    assert "FAIL" in out, out
    if kind == "depth":
        assert "depth_median" in out.split("FAIL")[1].split(")")[0], out


@pytest.mark.render
def test_colmap_fisheye_is_opencv_fisheye_read_back_by_pycolmap(renders, tmp_path):
    pycolmap = pytest.importorskip("pycolmap")
    from blendtruth.exports.source import render_folders
    from blendtruth.geometry.reproject import project

    src = renders["fisheye170"]
    assert main(["export", "colmap", str(src), "--out", str(tmp_path / "c")]) == 0
    line = (tmp_path / "c/sparse/0/cameras.txt").read_text().splitlines()[-1].split()
    (folder,) = render_folders(src)
    view = folder.read("0000")
    fx, fy = 64 / np.radians(170.0), 48 / np.radians(170.0)
    assert line[1] == "OPENCV_FISHEYE" and line[2:4] == ["64", "48"]
    assert np.allclose([float(x) for x in line[4:]], [fx, fy, 32, 24, 0, 0, 0, 0], atol=1e-12)
    rec = pycolmap.Reconstruction(str(tmp_path / "c/sparse/0"))
    assert rec.cameras[1].model.name == "OPENCV_FISHEYE"
    xyz = np.array([p.xyz for p in rec.points3D.values()])
    assert len(xyz) > 100
    worst = 0.0
    for image in rec.images.values():
        view = folder.read(Path(image.name).stem)
        ours, depth = project(xyz, view.camera)
        cam = image.cam_from_world()
        theirs = [rec.cameras[image.camera_id].img_from_cam(cam * p) for p in xyz]
        seen = np.array([t is not None for t in theirs]) & (depth > 0)
        assert seen.sum() > 50
        got = np.array([t for t, s in zip(theirs, seen, strict=True) if s])
        worst = max(worst, float(np.abs(got - ours[seen]).max()))
    assert worst <= 1e-6, worst
    # every observation COLMAP reads is where our model projects its 3D point
    image = rec.images[1]
    view = folder.read(Path(image.name).stem)
    obs = [(p.xy, rec.points3D[p.point3D_id].xyz) for p in image.points2D if p.has_point3D()]
    ours, _ = project(np.array([o[1] for o in obs]), view.camera)
    assert np.abs(np.array([o[0] for o in obs]) - ours).max() <= 1e-6


@pytest.mark.render
@pytest.mark.parametrize("name", ["ortho", "equirect", "fisheye220"])
def test_colmap_and_nerfstudio_refuse_what_they_cannot_express(renders, name, tmp_path, capsys):
    for fmt in ("colmap", "nerfstudio"):
        out = tmp_path / fmt
        assert main(["export", fmt, str(renders[name]), "--out", str(out)]) == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and name.rstrip("0123456789") in err[0], err
        assert not (out / "sparse").exists() and not (out / "transforms.json").exists()


def test_flow_pairs_of_non_pinhole_views_are_refused():
    for model in ("ortho", "equirect", "fisheye"):
        with pytest.raises(BlendtruthError, match=f"--pairs: .*--camera {model}"):
            ViewPlan(views=2, camera_model=model, pairs="consecutive")
    ViewPlan(views=2, camera_model="fisheye", pairs="none")  # no flow: fine
    intr = model_intrinsics("fisheye", 16, 12, 180.0)
    depth = np.ones((12, 16), np.float32)
    views = [
        View(
            Camera(intr, np.eye(4), "fisheye", 180.0),
            depth,
            depth,
            np.zeros((12, 16, 3)),
            depth > 0,
        )
        for _ in range(2)
    ]
    with pytest.raises(BlendtruthError, match="pinhole cameras only"):
        flow_between(views[0], views[1])


@pytest.mark.render
def test_check_runs_without_trimesh(renders):
    """The README's plain install has no trimesh: check must not need it."""
    code = (
        "import sys; sys.modules['trimesh'] = None\n"  # any import of trimesh now fails
        "from blendtruth.cli import main\n"
        f"sys.exit(main(['check', {str(renders['ortho'])!r}]))"
    )
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert run.returncode == 0 and "ortho: PASS" in run.stdout, run.stdout + run.stderr
