"""The folder layout, the one view reader, load() -> write round trips, the export registry
and the truth/simulated pass kinds (pure tier: synthetic views, no Blender).

Views are built here from closed-form geometry (a plane seen by pinhole cameras, a fisheye
of the same plane), written with the project's writers, read back by ``blendtruth.load``
and written again: every array must come back bit for bit and every meta key equal.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import numpy as np
import pytest

import blendtruth
from blendtruth.errors import BlendtruthError
from blendtruth.exports import ExportFormat, export, formats, parse_formats, register, unregister
from blendtruth.geometry.camera import Intrinsics
from blendtruth.geometry.camera_models import fisheye_intrinsics
from blendtruth.geometry.frames import look_at
from blendtruth.layout import (
    DatasetLayout,
    RenderLayout,
    SingleViewLayout,
    parse_view_name,
    view_name,
)
from blendtruth.multiview import write_view_files
from blendtruth.passes import (
    PASSES,
    SIMULATED,
    Pass,
    parse_passes,
    register_pass,
    unregister_pass,
)
from blendtruth.view import Camera, View
from blendtruth.writers.npz import read_view_arrays, write_view_npz
from blendtruth.writers.output import write_single_view

from analytic import ray_plane

W, H = 40, 30


def _view(k: int, model: str = "pinhole", rgb: bool = True) -> View:
    """View ``k`` of the plane z = 0 seen from above: closed-form depth and normals."""
    pose = look_at((0.3 * k, -0.2, 2.0 + 0.1 * k), (0.0, 0.0, 0.0))
    if model == "fisheye":
        fov = 150.0
        camera = Camera(fisheye_intrinsics(W, H, fov), pose, "fisheye", fov)
        # Any exact arrays do for the file round trip: these are the plane's, stored as is.
        depth = np.full((H, W), 2.0 + k, np.float32)
        normal = np.zeros((H, W, 3), np.float32)
        normal[..., 2] = -1.0
        mask = np.ones((H, W), bool)
        meta = {"renderer": "synthetic", **camera.projection.meta()}
    else:
        intr = Intrinsics.from_fov(50.0, W, H)
        camera = Camera(intr, pose)
        # The plane z = 0 in the camera frame: a point on it and its normal.
        world_to_cam = np.linalg.inv(pose)
        point = world_to_cam[:3, 3]
        n = world_to_cam[:3, :3] @ np.array([0.0, 0.0, 1.0])
        d, nrm, mask = ray_plane(intr, point, n)
        depth, normal = d.astype(np.float32), nrm.astype(np.float32)
        meta = {"renderer": "synthetic", "seed": k}
    distance = (depth * (1.0 + 0.01 * np.arange(W, dtype=np.float32))[None, :]).astype(np.float32)
    rng = np.random.default_rng(k)
    extra = {
        "instance": np.where(mask, 1 + (np.arange(W)[None, :] > W // 2), 0).astype(np.int32),
        "position": rng.standard_normal((H, W, 3)).astype(np.float32),
        "amodal": rng.integers(0, 255, (2, H, (W + 7) // 8), dtype=np.uint8),
        "amodal_ids": np.array([1, 2], np.int32),
    }
    return View(
        camera=camera,
        depth=depth,
        distance=distance,
        normal=normal,
        mask=mask,
        rgb=rng.integers(0, 256, (H, W, 3), dtype=np.uint8) if rgb else None,
        alpha=rng.random((H, W)).astype(np.float32) if rgb else None,
        meta=meta,
        extra=extra,
    )


def _render_folder(root: Path, n: int = 3, rgb: bool = True) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    for d in RenderLayout(root).view_dirs(previews=False, rgb=rgb):
        d.mkdir(parents=True, exist_ok=True)
    for k in range(n):
        model = "fisheye" if k == n - 1 else "pinhole"
        write_view_files(root, view_name(k), _view(k, model, rgb))
    return root


def _assert_same_file(a: Path, b: Path) -> None:
    """Array for array (dtype, shape, values) and meta for meta."""
    x, y = read_view_arrays(a), read_view_arrays(b)
    assert sorted(x) == sorted(y), (a, sorted(x), sorted(y))
    meta_x, meta_y = json.loads(str(x.pop("meta"))), json.loads(str(y.pop("meta")))
    assert meta_x == meta_y
    for key in x:
        assert x[key].dtype == y[key].dtype and x[key].shape == y[key].shape, key
        np.testing.assert_array_equal(x[key], y[key], err_msg=key)


def _rewrite(view: View, path: Path) -> Path:
    write_view_npz(path, view)
    return path


# ---------------------------------------------------------------- layout


def test_static_names_and_paths_are_the_ones_written_today(tmp_path):
    lay = RenderLayout(tmp_path)
    at = lay.at(7)
    assert view_name(7) == "0007" and view_name(12345) == "12345"
    rel = {k: lay.rel(getattr(at, k)) for k in ("npz", "depth", "mask", "rgb")}
    assert rel == {
        "npz": "views/0007.npz",
        "depth": "depth/0007.npy",
        "mask": "mask/0007.png",
        "rgb": "rgb/0007.png",
    }
    assert lay.rel(at.preview_depth) == "preview/0007_depth.png"
    assert lay.rel(at.preview_normal) == "preview/0007_normal.png"
    assert lay.rel(lay.flow("0001", "0002")) == "flow/0001_0002.npz"
    named = [
        lay.cameras_json,
        lay.instances_json,
        lay.mesh_ply,
        lay.points_ply,
        lay.pairs_json,
        lay.transforms_json,
    ]
    assert [lay.rel(p) for p in named] == [
        "cameras.json",
        "instances.json",
        "mesh.ply",
        "points.ply",
        "pairs.json",
        "transforms.json",
    ]
    # Time: (frame, camera) names sort by frame, then camera, and parse back.
    assert view_name(3, frame=12) == "000012_0003"
    assert parse_view_name("000012_0003") == (12, 3) and parse_view_name("0003") == (None, 3)
    assert sorted([view_name(0, 2), view_name(5, 1), view_name(1, 1)]) == [
        "000001_0001",
        "000001_0005",
        "000002_0000",
    ]
    with pytest.raises(ValueError):
        parse_view_name("views/0003")
    ds = DatasetLayout(tmp_path)
    assert ds.item("models", "chair").root == tmp_path / "models" / "chair"
    assert ds.tmp_item("scenes", "0004", "77").name == ".0004.tmp-77"
    single = SingleViewLayout(tmp_path)
    assert [
        p.name
        for p in (
            single.view_npz,
            single.rgb_png,
            single.tutorial_npz,
            single.depth_png,
            single.normal_png,
        )
    ] == ["view_0000.npz", "rgb.png", "d.npz", "depth.png", "normal.png"]


def test_writers_put_files_exactly_where_the_layout_says(tmp_path):
    root = _render_folder(tmp_path / "r", n=2)
    lay = RenderLayout(root)
    files = sorted(lay.rel(p) for p in root.rglob("*") if p.is_file())
    want = sorted(
        lay.rel(getattr(lay.at(k), f)) for k in range(2) for f in ("npz", "depth", "mask", "rgb")
    )
    assert files == want
    assert lay.view_names() == ("0000", "0001")
    (tmp_path / "s").mkdir()
    single = write_single_view(tmp_path / "s", _view(0))
    assert sorted(single) == sorted(
        getattr(SingleViewLayout(tmp_path / "s"), a)
        for a in ("view_npz", "rgb_png", "tutorial_npz", "depth_png", "normal_png")
    )


# ---------------------------------------------------------------- one reader, round trips


def test_load_then_write_gives_back_a_render_folder(tmp_path):
    root = _render_folder(tmp_path / "r")
    views = list(blendtruth.load(root))
    assert len(views) == 3
    for k, view in enumerate(views):
        assert view.meta["loaded_from"] == {"model": "r", "view": view_name(k)}
        assert list(view.passes()) == [
            "depth",
            "distance",
            "normal",
            "mask",
            "instance",
            "position",
        ]
        path = RenderLayout(root).at(k).npz
        _assert_same_file(path, _rewrite(view, tmp_path / f"again{k}.npz"))
    fisheye = views[-1].camera
    assert fisheye.model == "fisheye" and fisheye.fov_deg == 150.0
    assert views[0].camera.model == "pinhole"


def test_load_then_write_gives_back_a_dataset_and_its_shards(tmp_path):
    data = tmp_path / "data"
    for mid, n in (("b.chair", 2), ("a", 3)):
        _render_folder(DatasetLayout(data).item("models", mid).root, n=n, rgb=mid == "a")
    originals = [
        RenderLayout(data / "models" / m).at(k).npz
        for m, n in (("a", 3), ("b.chair", 2))
        for k in range(n)
    ]
    loaded = list(blendtruth.load(data))
    assert [v.meta["loaded_from"]["model"] for v in loaded] == ["a"] * 3 + ["b.chair"] * 2
    for k, (view, path) in enumerate(zip(loaded, originals, strict=True)):
        _assert_same_file(path, _rewrite(view, tmp_path / f"d{k}.npz"))
    export("webdataset", data, tmp_path / "wds", max_shard_bytes=60_000)
    target = tmp_path / "wds" / "webdataset"
    assert len(list(target.glob("shard-*.tar"))) > 1  # several shards, read in manifest order
    from_shards = list(blendtruth.load(target))
    assert len(from_shards) == len(originals)
    for k, (view, path) in enumerate(zip(from_shards, originals, strict=True)):
        assert view.camera.model == (
            "fisheye"
            if path.stem == "0002" or (path.parent.parent.name == "b.chair" and path.stem == "0001")
            else "pinhole"
        )
        assert "amodal" in view.extra and "instance" in view.passes()
        _assert_same_file(path, _rewrite(view, tmp_path / f"s{k}.npz"))


def test_load_reads_the_single_view_render_layout(tmp_path, capsys):
    view = _view(1, rgb=True)
    write_single_view(tmp_path, view, normals_source="pass")
    (loaded,) = list(blendtruth.load(tmp_path))
    assert loaded.meta["loaded_from"] == {"model": tmp_path.name, "view": "0000"}
    _assert_same_file(SingleViewLayout(tmp_path).view_npz, _rewrite(loaded, tmp_path / "b.npz"))
    from blendtruth.cli import main

    for command in (["show"], ["check"], ["export", "png16"]):
        capsys.readouterr()
        assert main([*command, str(tmp_path)]) == 2
        err = capsys.readouterr().err.strip()
        assert "single-view render (view_0000.npz)" in err and len(err.splitlines()) == 1


def test_the_reader_refuses_broken_files_in_one_line(tmp_path):
    root = _render_folder(tmp_path / "r", n=1)
    path = RenderLayout(root).at(0).npz
    arrays = read_view_arrays(path)
    del arrays["depth"]
    np.savez(path, **arrays)
    with pytest.raises(BlendtruthError, match=r"0000\.npz: not a complete blendtruth view"):
        list(blendtruth.load(root))
    path.write_bytes(b"not a zip")
    with pytest.raises(BlendtruthError, match="not a readable blendtruth view file"):
        list(blendtruth.load(root))


# ---------------------------------------------------------------- export registry


def _export_dummy(folder, target, scale: float = 1.0) -> list[Path]:
    out = Path(target) / "dummy"
    out.mkdir(exist_ok=True)
    written = []
    for name, view in folder.views():
        path = out / f"{name}.txt"
        path.write_text(f"{float(view.depth[view.mask].max()) * scale:.6f}\n")
        written.append(path)
    return written


def test_a_format_registered_from_outside_works_end_to_end(tmp_path):
    from blendtruth.cli.tools import run_exports
    from blendtruth.writers.swap import render_outputs

    data = tmp_path / "data"
    for mid in ("m1", "m2"):
        _render_folder(data / "models" / mid, n=2)
    register(ExportFormat("dummy", _export_dummy, needs=("depth", "mask"), writes=("dummy",)))
    try:
        assert "dummy" in formats() and parse_formats("dummy,exr") == ["dummy", "exr"]
        assert formats()["dummy"].options == {"scale"}
        assert "dummy" in render_outputs()  # a new render replaces its files
        written = run_exports(
            ["dummy"], data, tmp_path / "out", False, scale=2.0, max_points=5
        )  # max_points: not a dummy option, so not passed
        assert sorted(p.relative_to(tmp_path / "out").as_posix() for p in written) == [
            f"{m}/dummy/{n}.txt" for m in ("m1", "m2") for n in ("0000", "0001")
        ]
        for path in written:
            view = next(
                v
                for v in blendtruth.load(data / "models" / path.parts[-3])
                if v.meta["loaded_from"]["view"] == path.stem
            )
            assert float(path.read_text()) == pytest.approx(
                2.0 * view.depth[view.mask].max(), abs=1e-6
            )
    finally:
        unregister("dummy")
    with pytest.raises(BlendtruthError, match="unknown format dummy"):
        parse_formats("dummy")


def test_a_format_missing_its_optional_package_says_so_when_used(tmp_path, monkeypatch):
    import importlib
    import pkgutil

    import blendtruth.exports as ex

    real_iter, real_import = pkgutil.iter_modules, importlib.import_module

    def iter_modules(path):
        yield from real_iter(path)
        yield pkgutil.ModuleInfo(None, "fakecoco", False)

    def import_module(name, *args):
        if name == "blendtruth.exports.fakecoco":
            raise ModuleNotFoundError("No module named 'pycocotools'", name="pycocotools")
        return real_import(name, *args)

    monkeypatch.setattr(pkgutil, "iter_modules", iter_modules)
    monkeypatch.setattr(importlib, "import_module", import_module)
    monkeypatch.setattr(ex, "_REGISTRY", {})
    monkeypatch.setattr(ex, "_discovered", False)
    assert parse_formats("fakecoco,png16") == ["fakecoco", "png16"]  # the others still work
    root = _render_folder(tmp_path / "r", n=1)
    with pytest.raises(
        BlendtruthError, match="export fakecoco: needs the Python package 'pycocotools'"
    ):
        export("fakecoco", root)
    assert export("png16", root)[-1].name == "meta.json"


def test_built_in_formats_declare_what_they_need_and_write():
    found = formats()
    assert {"colmap", "nerfstudio", "exr", "png16", "webdataset"} <= set(found)
    assert found["webdataset"].scope == "folder" and found["png16"].scope == "model"
    assert found["nerfstudio"].needs_rgb and not found["exr"].needs_rgb
    assert found["png16"].options == {"depth_scale"}
    assert found["colmap"].options == {"max_points", "image_factors"}
    assert found["webdataset"].options == {"max_shard_bytes", "on_sample"}
    from blendtruth.exports import check_render_options

    with pytest.raises(BlendtruthError, match="--export nerfstudio needs RGB"):
        check_render_options(["exr", "nerfstudio"], rgb=False)
    check_render_options(["exr", "nerfstudio"], rgb=True)


# ---------------------------------------------------------------- truth vs simulated


@pytest.fixture
def noisy_depth():
    spec = register_pass(
        Pass(
            "depth_noisy",
            "float32",
            0,
            0.0,
            "scene units (metres)",
            "depth with sensor noise",
            kind=SIMULATED,
            derives_from=("depth",),
        )
    )
    yield spec
    unregister_pass("depth_noisy")


def test_exports_refuse_a_simulated_pass_as_truth(tmp_path, noisy_depth):
    root = _render_folder(tmp_path / "r", n=1)
    assert "SIMULATED from depth" in noisy_depth.describe()
    assert "depth_noisy" not in parse_passes("all")  # all = every ground-truth pass
    assert "depth" in parse_passes("all") and "boundary" in parse_passes("all")
    register(ExportFormat("noisy", _export_dummy, needs=("depth_noisy",)))
    try:
        with pytest.raises(
            BlendtruthError,
            match=r"export noisy: pass 'depth_noisy' is "
            r"simulated \(from depth\)",
        ):
            export("noisy", root)
        assert not (root / "dummy").exists()  # refused before anything was written
    finally:
        unregister("noisy")
    with pytest.raises(ValueError, match="derives from unknown"):
        register_pass(dataclasses.replace(noisy_depth, name="x", derives_from=("nope",)))


def test_check_refuses_a_simulated_pass_as_truth(tmp_path, monkeypatch):
    from blendtruth.check import check_folder
    from blendtruth.exports.source import render_folder

    root = _render_folder(tmp_path / "r", n=1)
    noisy = dataclasses.replace(PASSES["normal"], kind=SIMULATED, derives_from=("depth",))
    monkeypatch.setitem(PASSES, "normal", noisy)
    with pytest.raises(BlendtruthError, match=r"check: pass 'normal' is simulated"):
        check_folder(render_folder(root))


# ---------------------------------------------------------------- a real render_model run


def test_a_fake_backend_render_lays_out_and_round_trips(tmp_path):
    """render_model (fake backend: the project's ray caster on analytic boxes) writes
    exactly the layout's files, and every view loaded and written again is its own file."""
    from blendtruth.multiview import ViewPlan, render_model
    from blendtruth.scene import SceneSpec
    from blendtruth.settings import RenderSettings
    from blendtruth.testing import FakeBackend

    settings = RenderSettings(width=48, height=32, passes="all", previews=True)
    out = tmp_path / "model"
    render_model(
        SceneSpec.parse("box.obj"),
        ViewPlan(sampler="orbit", views=2, pairs="all"),
        settings,
        out,
        backend=FakeBackend(),
    )
    lay = RenderLayout(out)
    want = {
        lay.rel(getattr(lay.at(k), f))
        for k in range(2)
        for f in ("npz", "depth", "mask", "rgb", "preview_depth", "preview_normal")
    }
    want |= {
        lay.rel(p)
        for p in (
            lay.cameras_json,
            lay.instances_json,
            lay.mesh_ply,
            lay.mesh_instance_npy,
            lay.transforms_json,
            lay.pairs_json,
            lay.flow("0000", "0001"),
            lay.flow("0001", "0000"),
        )
    }
    assert {lay.rel(p) for p in out.rglob("*") if p.is_file()} == want
    for k, view in enumerate(blendtruth.load(out)):
        assert view.meta["loaded_from"]["view"] == view_name(k)
        assert {"instance", "boundary", "position"} <= set(view.passes())
        _assert_same_file(lay.at(k).npz, _rewrite(view, tmp_path / f"again{k}.npz"))
