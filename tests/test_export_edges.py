"""Exports that used to drop or bloat without a word, on a synthetic render folder whose
truth is closed-form (three cameras 2 units above the plane z = 0, looking straight down):
EXR carries uv, boundary and transparent and names what it leaves out; COLMAP keeps to its
point budget with exact points and valid tracks (read back by pycolmap); the layouts
nerfstudio's COLMAP parser and gsplat's trainer read at their defaults exist."""

from __future__ import annotations

import json
import math
import os
import warnings
from pathlib import Path

import cv2
import numpy as np
import pytest

from blendtruth.cli import main
from blendtruth.errors import BlendtruthWarning
from blendtruth.exports import export

H, W = 48, 64
K = np.array([[40.0, 0.0, 32.0], [0.0, 40.0, 24.0], [0.0, 0.0, 1.0]])
HEIGHT = 2.0
OFFSETS = (0.0, 0.2, 0.4)  # camera x positions, world units


def _pose(x: float) -> np.ndarray:
    """Camera at (x, 0, HEIGHT) looking down -Z: OpenCV x -> world +X, y -> world -Y."""
    pose = np.eye(4)
    pose[:3, :3] = np.diag([1.0, -1.0, -1.0])
    pose[:3, 3] = (x, 0.0, HEIGHT)
    return pose


def _rgb(seed: int) -> np.ndarray:
    """Constant 4×4 blocks: a 4× area-average reproduces each block's colour exactly."""
    blocks = np.random.default_rng(seed).integers(0, 256, (H // 4, W // 4, 3), dtype=np.uint8)
    return blocks.repeat(4, axis=0).repeat(4, axis=1)


def _folder(root: Path, amodal: bool = True) -> Path:
    (root / "views").mkdir(parents=True)
    (root / "rgb").mkdir()
    rng = np.random.default_rng(7)
    for i, x in enumerate(OFFSETS):
        name = f"{i:04d}"
        rgb = _rgb(i)
        cv2.imwrite(str(root / "rgb" / f"{name}.png"), rgb[..., ::-1])
        arrays = {
            "depth": np.full((H, W), HEIGHT, np.float32),
            "normal": np.tile(np.float32([0, 0, -1]), (H, W, 1)),
            "mask": np.ones((H, W), bool),
            "rgb": rgb,
            "uv": rng.random((H, W, 2)).astype(np.float32),
            "boundary": rng.random((H, W)) < 0.2,
            "transparent": rng.random((H, W)) < 0.1,
            "instance": rng.integers(-1, 5, (H, W)).astype(np.int32),
            "K": K,
            "cam_to_world": _pose(x),
            "meta": json.dumps({}),
        }
        u, v = np.meshgrid(np.arange(W) + 0.5, np.arange(H) + 0.5)
        rays = np.stack([(u - 32) / 40, (v - 24) / 40, np.ones_like(u)], axis=-1)
        arrays["distance"] = (HEIGHT * np.linalg.norm(rays, axis=-1)).astype(np.float32)
        if amodal:
            arrays["amodal"] = rng.integers(0, 256, (2, H, W // 8), dtype=np.uint8)
        np.savez(root / "views" / f"{name}.npz", **arrays)
    return root


# ---------------------------------------------------------------- exr


def test_exr_writes_uv_boundary_transparent_and_names_what_it_leaves_out(tmp_path):
    import OpenEXR

    folder = _folder(tmp_path / "r")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        export("exr", folder, tmp_path / "x")
    messages = [str(w.message) for w in caught if issubclass(w.category, BlendtruthWarning)]
    assert len(messages) == 1 and "left out amodal" in messages[0], messages
    a = np.load(folder / "views" / "0001.npz")
    with OpenEXR.File(str(tmp_path / "x" / "exr" / "0001.exr")) as f:
        ch = {k: c.pixels for k, c in f.channels().items()}
    np.testing.assert_array_equal(np.dstack([ch["uv.U"], ch["uv.V"]]), a["uv"])
    for flag in ("boundary", "transparent"):
        assert ch[flag].dtype == np.float32
        np.testing.assert_array_equal(ch[flag], a[flag].astype(np.float32))
    # Signed ids (-1 = none) were dropped before; now exact float32.
    assert ch["instance"].dtype == np.float32
    np.testing.assert_array_equal(ch["instance"], a["instance"])
    assert "amodal" not in ch


def test_exr_without_unholdable_arrays_warns_nothing(tmp_path):
    folder = _folder(tmp_path / "r", amodal=False)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        export("exr", folder, tmp_path / "x")
    assert not [w for w in caught if issubclass(w.category, BlendtruthWarning)]


# ---------------------------------------------------------------- colmap


def _project(point, image, camera) -> np.ndarray:
    cam = image.cam_from_world() if callable(image.cam_from_world) else image.cam_from_world
    xyz = cam * np.asarray(point)
    k = camera.calibration_matrix()
    return (k @ (xyz / xyz[2]))[:2]


@pytest.mark.parametrize("budget", [300, 2000])
def test_colmap_keeps_its_budget_with_exact_points_and_valid_tracks(tmp_path, budget):
    pycolmap = pytest.importorskip("pycolmap")
    folder = _folder(tmp_path / "r", amodal=False)
    export("colmap", folder, tmp_path / "c", max_points=budget)
    rec = pycolmap.Reconstruction(str(tmp_path / "c" / "sparse" / "0"))
    n = rec.num_points3D()
    assert budget // 8 <= n <= budget, n
    xyz = np.array([p.xyz for p in rec.points3D.values()])
    # Every point is an exact back-projection onto the plane z = 0 ...
    np.testing.assert_allclose(xyz[:, 2], 0.0, atol=1e-9)
    # ... and every observation in its track is where the point projects (1e-6 px).
    worst, seen = 0.0, 0
    for pid, point in rec.points3D.items():
        for el in point.track.elements:
            image = rec.images[el.image_id]
            uv = _project(point.xyz, image, rec.cameras[image.camera_id])
            obs = image.points2D[el.point2D_idx]
            assert obs.point3D_id == pid
            worst = max(worst, float(np.abs(uv - obs.xy).max()))
            seen += 1
    assert worst < 1e-6 and seen > n  # tracks span views (the views overlap)


# ---------------------------------------------------------------- consumer layouts


def test_colmap_layouts_for_nerfstudio_and_gsplat_defaults(tmp_path, capsys):
    pycolmap = pytest.importorskip("pycolmap")
    folder = _folder(tmp_path / "r", amodal=False)
    out = tmp_path / "c"
    assert main(["export", "colmap", str(folder), "--out", str(out), "--no-progress"]) == 0
    text = capsys.readouterr().out
    assert "colmap/sparse/0" in text and "images_4/" in text and "--image-factors" in text
    # nerfstudio's colmap parser: colmap/sparse/0 + images/.
    for name in ("cameras.bin", "images.bin", "points3D.bin", "cameras.txt"):
        a, b = out / "sparse" / "0" / name, out / "colmap" / "sparse" / "0" / name
        assert a.read_bytes() == b.read_bytes()
        assert os.stat(a).st_ino == os.stat(b).st_ino  # a link, not a second copy
    rec = pycolmap.Reconstruction(str(out / "colmap" / "sparse" / "0"))
    assert rec.num_images() == 3
    assert sorted(p.name for p in (out / "images").iterdir()) == [
        "0000.png",
        "0001.png",
        "0002.png",
    ]
    # gsplat's data_factor 4: images_4/, each block of 4×4 pixels averaged exactly.
    for i in range(3):
        small = cv2.imread(str(out / "images_4" / f"{i:04d}.png"))[..., ::-1]
        assert small.shape == (H // 4, W // 4, 3)
        np.testing.assert_array_equal(small, _rgb(i)[::4, ::4])
    assert not (out / "images_2").exists()


def test_image_factors_option(tmp_path, capsys):
    folder = _folder(tmp_path / "r", amodal=False)
    out = tmp_path / "c"
    args = ["export", "colmap", str(folder), "--out", str(out), "--no-progress"]
    assert main([*args, "--image-factors", "2,8"]) == 0
    assert cv2.imread(str(out / "images_2" / "0000.png")).shape == (24, 32, 3)
    assert cv2.imread(str(out / "images_8" / "0000.png")).shape == (6, 8, 3)
    assert not (out / "images_4").exists()
    other = tmp_path / "d"
    assert main([*args[:-3], "--out", str(other), "--image-factors", "none"]) == 0
    assert not list(other.glob("images_*"))
    capsys.readouterr()
    assert main([*args, "--image-factors", "3x"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "--image-factors" in err[0]


def test_gsplat_style_intrinsics_scaling_is_exact_for_the_downscaled_images():
    """gsplat scales K by (new size / old size); with edge-to-edge resizing a pixel centre
    of the small image, mapped back, lands on the big image's block centre."""
    for factor in (2, 4, 8):
        s = round(W / factor) / W
        k_small = K.copy()
        k_small[:2] *= s
        # The small pixel (0, 0) centre (0.5, 0.5) is the big block centre (f/2, f/2).
        ray_small = np.linalg.solve(k_small, [0.5, 0.5, 1.0])
        ray_big = np.linalg.solve(K, [factor / 2, factor / 2, 1.0])
        assert math.isclose(ray_small[0], ray_big[0], abs_tol=1e-12)
        assert math.isclose(ray_small[1], ray_big[1], abs_tol=1e-12)
