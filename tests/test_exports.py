"""Exports read back by the real consumers: pycolmap, a nerfstudio-defaults reader,
OpenEXR, OpenCV/Pillow, webdataset, OpenCV's projectPoints; plus blendtruth.load."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import cv2
import numpy as np
import pytest

from blendtruth.cli import main
from blendtruth.geometry.camera import Intrinsics
from blendtruth.geometry.frames import invert_pose
from blendtruth.geometry.rays import backproject
from export_helpers import K_ODD, MESHES, npz, render

pytestmark = pytest.mark.render
pytest.importorskip("bpy")


@pytest.fixture(scope="module")
def spot(tmp_path_factory) -> Path:
    """RGB, 3 orbit views, odd K."""
    return render(tmp_path_factory.mktemp("spot") / "spot", "spot.obj", 3, rgb=True, K=K_ODD)


@pytest.fixture(scope="module")
def cow(tmp_path_factory) -> Path:
    """Ground truth only, 4 sphere views."""
    return render(tmp_path_factory.mktemp("cow") / "cow", "cow.obj", 4, rgb=False, sampler="sphere")


def _names(folder: Path) -> list[str]:
    return sorted(p.stem for p in (folder / "views").glob("*.npz"))


# ---------------------------------------------------------------- COLMAP


def _pycolmap_checks(rec, folder: Path) -> None:
    views = {f"{n}.png": npz(folder, n) for n in _names(folder)}
    assert rec.num_images() == len(views) and rec.num_cameras() == 1
    for image in rec.images.values():
        v = views[image.name]
        cam = rec.cameras[image.camera_id]
        assert cam.model.name == "PINHOLE" and (cam.width, cam.height) == (64, 48)
        np.testing.assert_array_equal(cam.params, [60.0, 55.0, 30.5, 25.25])
        w2c = invert_pose(v["cam_to_world"])
        np.testing.assert_allclose(image.cam_from_world().matrix(), w2c[:3], atol=1e-12)
    n_masked = sum(int(v["mask"].sum()) for v in views.values())
    assert rec.num_points3D() == n_masked  # stride 1 at this size: every hit pixel
    by_id = {i: views[im.name] for i, im in rec.images.items()}
    longest = 0
    for point in rec.points3D.values():
        elements = point.track.elements
        longest = max(longest, len(elements))
        # The first observation is the pixel the point was back-projected from.
        for k, el in enumerate(elements):
            image = rec.images[el.image_id]
            xy = image.points2D[el.point2D_idx].xy
            proj = image.project_point(point.xyz)
            assert np.abs(proj - xy).max() <= 1e-3, (proj, xy)
            v = by_id[el.image_id]
            z = (invert_pose(v["cam_to_world"])[:3] @ np.append(point.xyz, 1.0))[2]
            col, row = int(np.floor(xy[0])), int(np.floor(xy[1]))
            assert v["mask"][row, col]
            if k == 0:
                np.testing.assert_allclose(xy - [col, row], [0.5, 0.5], atol=1e-9)
                assert abs(z - v["depth"][row, col]) <= 1e-6 * z
            else:  # seen by another view: its depth at that pixel agrees (to a pixel's slope)
                assert abs(z - v["depth"][row, col]) <= 0.05 * z
    assert longest >= 2, "tracks must span views"


def test_colmap_text_and_binary_read_by_pycolmap(spot, tmp_path):
    pycolmap = pytest.importorskip("pycolmap")
    out = tmp_path / "colmap"
    assert main(["export", "colmap", str(spot), "--out", str(out)]) == 0
    sparse = out / "sparse" / "0"
    for reader in ("read_text", "read_binary"):
        rec = pycolmap.Reconstruction()
        getattr(rec, reader)(str(sparse))
        _pycolmap_checks(rec, spot)
    # pycolmap writes the model it read back byte for byte: text from text, binary too.
    rec = pycolmap.Reconstruction()
    rec.read_text(str(sparse))
    again = tmp_path / "again"
    again.mkdir()
    rec.write_text(str(again))
    rec.write_binary(str(again))
    for name in ("cameras", "images", "points3D", "rigs", "frames"):
        assert (again / f"{name}.txt").read_bytes() == (sparse / f"{name}.txt").read_bytes()
        assert (again / f"{name}.bin").read_bytes() == (sparse / f"{name}.bin").read_bytes()
    for n in _names(spot):
        assert (out / "images" / f"{n}.png").read_bytes() == (
            spot / "rgb" / f"{n}.png"
        ).read_bytes()


def test_colmap_without_rgb_writes_no_images(cow, tmp_path):
    pycolmap = pytest.importorskip("pycolmap")
    out = tmp_path / "c"
    assert main(["export", "colmap", str(cow), "--out", str(out)]) == 0
    assert not (out / "images").exists()
    assert pycolmap.Reconstruction(str(out / "sparse" / "0")).num_images() == 4


# ---------------------------------------------------------------- nerfstudio


def nerfstudio_depth(folder: Path, frame: dict, float32: bool) -> np.ndarray:
    """nerfstudio's loading of depth_file_path at its defaults, as its source has it: the
    parser config's depth_unit_scale_factor = 1e-3 (the JSON key is not read), times the
    dataparser scale (1 here: no rescaling); .npy via np.load (float32 cast in recent
    versions), images via cv2.imread(IMREAD_ANYDEPTH)."""
    scale = 1e-3 * 1.0
    path = folder / frame["depth_file_path"]
    if path.suffix == ".npy":
        image = np.load(path)
        if float32:
            image = image.astype(np.float32)
        return image * scale
    return cv2.imread(str(path), cv2.IMREAD_ANYDEPTH).astype(np.float64) * scale


def test_render_writes_transforms_without_a_depth_copy(spot):
    data = json.loads((spot / "transforms.json").read_text())  # what `render` wrote
    assert "depth_unit_scale_factor" not in data and not (spot / "nerfstudio_depth").exists()
    assert all("depth_file_path" not in f and f["mask_path"] for f in data["frames"])
    assert "--export nerfstudio adds nerfstudio_depth/" in data["blendtruth"]["note"]


def test_nerfstudio_defaults_recover_depth_in_scene_units(spot, tmp_path):
    folder = tmp_path / "ns"
    assert main(["export", "nerfstudio", str(spot), "--out", str(folder)]) == 0
    data = json.loads((folder / "transforms.json").read_text())
    assert data["depth_unit_scale_factor"] == 1e-3
    assert (data["fl_x"], data["fl_y"], data["cx"], data["cy"], data["w"], data["h"]) == (
        60.0, 55.0, 30.5, 25.25, 64, 48)  # fmt: skip
    for name, frame in zip(_names(spot), data["frames"], strict=True):
        v = npz(spot, name)
        exact = nerfstudio_depth(folder, frame, float32=False)
        assert exact.dtype == np.float64
        np.testing.assert_array_equal(exact.astype(np.float32), v["depth"])
        recent = nerfstudio_depth(folder, frame, float32=True)
        np.testing.assert_allclose(recent, v["depth"], rtol=2.5e-7, atol=0)
        mask = cv2.imread(str(folder / frame["mask_path"]), cv2.IMREAD_UNCHANGED)
        np.testing.assert_array_equal(mask == 255, v["mask"])
        rgb = cv2.imread(str(folder / frame["file_path"]))[..., ::-1]
        np.testing.assert_array_equal(rgb, v["rgb"])
        gl = v["cam_to_world"] @ np.diag([1.0, -1.0, -1.0, 1.0])
        np.testing.assert_allclose(frame["transform_matrix"], gl, atol=1e-15)


def test_nerfstudio_without_rgb_has_no_fake_image(cow, capsys):
    data = json.loads((cow / "transforms.json").read_text())
    assert all("file_path" not in f for f in data["frames"])
    assert all((cow / f["mask_path"]).is_file() for f in data["frames"])
    assert "no RGB" in data["blendtruth"]["note"]
    code = main(["export", "nerfstudio", str(cow), "--out", str(cow.parent / "ns")])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1 and "no RGB" in err[0] and str(cow) in err[0]


# ---------------------------------------------------------------- EXR, PNG16


def test_exr_read_by_openexr_equals_float32(spot, tmp_path):
    import OpenEXR

    assert main(["export", "exr", str(spot), "--out", str(tmp_path)]) == 0
    for name in _names(spot):
        v = npz(spot, name)
        with OpenEXR.File(str(tmp_path / "exr" / f"{name}.exr")) as f:
            ch = {k: c.pixels for k, c in f.channels().items()}
            header = dict(f.header())  # the live header is emptied on close
        assert sorted(ch) == [
            "depth", "distance", "instance", "mask", "normal.X", "normal.Y", "normal.Z"
        ]  # fmt: skip
        assert ch["instance"].dtype == np.uint32
        np.testing.assert_array_equal(ch["instance"], v["instance"])
        assert all(c.dtype == np.float32 for k, c in ch.items() if k != "instance")
        np.testing.assert_array_equal(ch["depth"], v["depth"])
        np.testing.assert_array_equal(ch["distance"], v["distance"])
        np.testing.assert_array_equal(
            np.dstack([ch["normal.X"], ch["normal.Y"], ch["normal.Z"]]), v["normal"]
        )
        np.testing.assert_array_equal(ch["mask"] == 1, v["mask"])
        np.testing.assert_array_equal(json.loads(header["blendtruth_K"]), v["K"])


def test_png16_read_by_opencv_and_pillow_within_half_a_step(spot, tmp_path):
    from PIL import Image

    assert main(["export", "png16", str(spot), "--out", str(tmp_path)]) == 0
    meta = json.loads((tmp_path / "png16" / "meta.json").read_text())
    scale = meta["depth_scale"]
    assert scale == 1e-4  # the finest power of ten whose 65535 steps hold these depths
    for name in _names(spot):
        v = npz(spot, name)
        path = tmp_path / "png16" / f"{name}.png"
        a = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
        b = np.array(Image.open(path))
        assert a.dtype == np.uint16 and np.array_equal(a, b)
        assert (a[~v["mask"]] == 0).all() and (a[v["mask"]] > 0).all()
        err = np.abs(a[v["mask"]] * scale - v["depth"][v["mask"]])
        assert err.max() <= scale / 2 + 1e-9
        assert err.max() > scale / 10, "quantised, not exact: the stated step is real"
        assert meta["clipped"][name] == 0


def test_png16_clips_far_depth_to_zero_and_counts_it(spot, tmp_path):
    # 1e-5 per count holds at most 0.655 scene units: every surface here is farther.
    assert (
        main(["export", "png16", str(spot), "--out", str(tmp_path), "--depth-scale", "1e-5"]) == 0
    )
    meta = json.loads((tmp_path / "png16" / "meta.json").read_text())
    for name in _names(spot):
        a = cv2.imread(str(tmp_path / "png16" / f"{name}.png"), cv2.IMREAD_UNCHANGED)
        assert (a == 0).all()
        assert meta["clipped"][name] == int(npz(spot, name)["mask"].sum())


# ---------------------------------------------------------------- WebDataset, load


def test_webdataset_reads_every_sample_within_the_shard_bound(spot, cow, tmp_path):
    wds = pytest.importorskip("webdataset")
    limit = 200_000  # a spot view's sample is ~115 kB (with the instance pass): one per shard
    for folder in (spot, cow):
        assert main(["export", "webdataset", str(folder), "--out", str(tmp_path / folder.name),
                     "--shard-bytes", str(limit)]) == 0  # fmt: skip
        target = tmp_path / folder.name / "webdataset"
        manifest = json.loads((target / "manifest.json").read_text())
        urls = [str(target / s["file"]) for s in manifest["shards"]]
        assert len(urls) >= 2 and manifest["samples"] == len(_names(folder))
        for s in manifest["shards"]:
            assert (target / s["file"]).stat().st_size == s["bytes"] <= limit
        samples = list(wds.WebDataset(urls, shardshuffle=False).decode("rgb8"))
        assert [s["__key__"] for s in samples] == [f"{folder.name}-{n}" for n in _names(folder)]
        for sample, name in zip(samples, _names(folder), strict=True):
            v = npz(folder, name)
            for key in ("depth", "distance", "normal", "mask"):
                np.testing.assert_array_equal(sample[f"{key}.npy"], v[key])
            info = sample["json"]
            np.testing.assert_array_equal(info["cam_to_world"], v["cam_to_world"])
            np.testing.assert_array_equal(info["K"], v["K"])
            if "rgb" in v:
                np.testing.assert_array_equal(sample["rgb.png"], v["rgb"])
            else:
                assert "rgb.png" not in sample
        import blendtruth

        loaded = list(blendtruth.load(target))
        assert len(loaded) == len(samples)
        for view, name in zip(loaded, _names(folder), strict=True):
            np.testing.assert_array_equal(view.depth, npz(folder, name)["depth"])
            assert view.meta["loaded_from"] == {"model": folder.name, "view": name}


def test_a_loaded_rendered_view_writes_back_its_own_file(spot, tmp_path):
    """Real renders: load() of the folder and of its shards, written again, gives back
    every array and every meta key of views/NNNN.npz; passes() works on loaded views."""
    import blendtruth
    from blendtruth.writers.npz import write_view_npz

    assert main(["export", "webdataset", str(spot), "--out", str(tmp_path)]) == 0
    for source in (spot, tmp_path / "webdataset"):
        loaded = list(blendtruth.load(source))
        assert [v.meta["loaded_from"]["view"] for v in loaded] == _names(spot)
        for view in loaded:
            name = view.meta["loaded_from"]["view"]
            assert "instance" in view.passes() and view.rgb is not None
            write_view_npz(tmp_path / "again.npz", view)
            original, again = npz(spot, name), dict(np.load(tmp_path / "again.npz"))
            assert sorted(original) == sorted(again)
            assert json.loads(str(original.pop("meta"))) == json.loads(str(again.pop("meta")))
            for key, value in original.items():
                assert value.dtype == again[key].dtype, key
                np.testing.assert_array_equal(value, again[key], err_msg=key)


def test_load_a_render_folder_lazily(spot):
    import blendtruth

    views = blendtruth.load(spot)
    first = next(views)  # a generator: nothing read before asked
    np.testing.assert_array_equal(first.depth, npz(spot, "0000")["depth"])
    assert first.rgb.shape == (48, 64, 3) and len(list(views)) == 2


# ---------------------------------------------------------------- intrinsics


def test_K_opencv_with_projectPoints_lands_on_pixel_centres(spot):  # noqa: N802
    cameras = json.loads((spot / "cameras.json").read_text())["frames"]
    for name, frame in zip(_names(spot), cameras, strict=True):
        v = npz(spot, name)
        meta = json.loads(str(v["meta"]))
        np.testing.assert_array_equal(frame["K_opencv"], meta["K_opencv"])
        K_cv = np.array(frame["K_opencv"])  # noqa: N806
        np.testing.assert_array_equal(K_cv[:2, 2], v["K"][:2, 2] - 0.5)
        rows, cols = np.nonzero(v["mask"])
        world = backproject(v["depth"], Intrinsics.from_K(v["K"], 64, 48), v["cam_to_world"])
        world = world[rows, cols].astype(np.float64)
        w2c = invert_pose(v["cam_to_world"])
        rvec, _ = cv2.Rodrigues(w2c[:3, :3])
        uv, _ = cv2.projectPoints(world, rvec, w2c[:3, 3], K_cv, None)
        uv = uv.reshape(-1, 2)
        # OpenCV's pixel (col, row) has its centre at integer coordinates.
        assert np.abs(uv - np.stack([cols, rows], axis=1)).max() < 1e-4
        plain, _ = cv2.projectPoints(world, rvec, w2c[:3, 3], v["K"], None)
        assert np.abs(plain.reshape(-1, 2) - np.stack([cols, rows], 1) - 0.5).max() < 1e-4


# ---------------------------------------------------------------- CLI


def test_render_with_export_option(tmp_path):
    pytest.importorskip("pycolmap")
    out = tmp_path / "r"
    args = ["render", str(MESHES / "cow.obj"),
            "--out", str(out), "--views", "2", "--width", "32", "--height", "24", "--no-rgb",
            "--export", "colmap,exr,png16"]  # fmt: skip
    assert main(args) == 0
    assert (out / "sparse/0/points3D.bin").is_file() and (out / "exr/0001.exr").is_file()
    assert (out / "png16/meta.json").is_file()


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (["export", "obj", "{spot}"], "unknown format obj"),
        (["export", "exr", "{missing}"], "no such folder"),
        (["export", "png16", "{spot}", "--depth-scale", "x"], "--depth-scale"),
        (["render", "cube", "--views", "1", "--export", "zip"], "--export"),
        (["render", "--export", "exr"], "multi-view"),
        (["show", "{missing}"], "no such folder"),
        (["check", "{missing}"], "no such folder"),
    ],
)
def test_bad_export_input_one_line_exit_2(spot, tmp_path, capsys, args, needle):
    fill = {"spot": str(spot), "missing": str(tmp_path / "nope")}
    code = main([a.format(**fill) for a in args])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1 and needle in err[0], err


def test_export_into_a_copy_keeps_the_source_untouched(spot, tmp_path):
    copy = tmp_path / "copy"
    shutil.copytree(spot, copy)
    before = sorted(p.relative_to(copy) for p in copy.rglob("*"))
    assert main(["export", "exr", str(copy), "--out", str(tmp_path / "x")]) == 0
    assert sorted(p.relative_to(copy) for p in copy.rglob("*")) == before


def test_a_corrupt_view_file_is_one_line_exit_2_and_no_temp_files_remain(spot, tmp_path, capsys):
    copy = tmp_path / "copy"
    shutil.copytree(spot, copy)
    out = tmp_path / "x"
    assert main(["export", "exr,png16,colmap,webdataset", str(copy), "--out", str(out)]) == 0
    assert not list(out.rglob(".*")), "temporary files left behind"
    (copy / "views" / "0001.npz").write_bytes(b"not a zip file")
    code = main(["export", "exr", str(copy), "--out", str(tmp_path / "y")])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1 and "0001.npz" in err[0], err
    assert not list((tmp_path / "y").rglob(".*"))
    import blendtruth
    from blendtruth.errors import BlendtruthError

    (tmp_path / "junk.tar").write_bytes(b"junk" * 100)
    with pytest.raises(BlendtruthError, match="junk.tar"):
        list(blendtruth.load(tmp_path / "junk.tar"))


def test_exr_carries_further_passes(spot, tmp_path):
    import OpenEXR

    copy = tmp_path / "copy"
    shutil.copytree(spot, copy)
    a = npz(copy, "0000")
    a["instance"] = (a["mask"] * 3).astype(np.int32)
    a["position"] = np.random.default_rng(0).normal(size=(48, 64, 3)).astype(np.float32)
    np.savez_compressed(copy / "views" / "0000.npz", **a)
    assert main(["export", "exr", str(copy), "--out", str(tmp_path / "x")]) == 0
    with OpenEXR.File(str(tmp_path / "x" / "exr" / "0000.exr")) as f:
        ch = {k: c.pixels for k, c in f.channels().items()}
    assert ch["instance"].dtype == np.uint32
    np.testing.assert_array_equal(ch["instance"], a["instance"])
    position = np.dstack([ch["position.X"], ch["position.Y"], ch["position.Z"]])
    np.testing.assert_array_equal(position, a["position"])
