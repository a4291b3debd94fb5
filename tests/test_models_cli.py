"""Bad model files: one line naming the file, exit code 2, nothing written.
Valid-but-odd files render. (Runs the real CLI; Blender is needed.)"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from blendtruth.cli import main

pytestmark = pytest.mark.render
pytest.importorskip("bpy")

BAD = [
    ("empty.obj", "no geometry"),
    ("obj_empty.obj", "no geometry"),
    ("empty.stl", "could not import"),
    ("stl_empty_bin.stl", "no geometry"),
    ("empty.ply", "could not import"),
    ("ply_empty_header.ply", "could not import"),
    ("points_ascii.ply", "no faces"),
    ("points_bin.ply", "no faces"),
    ("obj_wireframe.obj", "no faces"),
    ("notenoughindices.obj", "at least 3"),
    ("empty_nodes.glb", "no geometry"),
]


@pytest.mark.parametrize(("name", "reason"), BAD)
def test_bad_model_one_line_exit_2_nothing_written(meshes, tmp_path, capsys, name, reason):
    path = meshes / "bad" / name
    out = tmp_path / "out"
    code = main(
        [
            "render",
            str(path),
            "--out",
            str(out),
            "--width",
            "32",
            "--height",
            "32",
            "--views",
            "1",
            "--no-rgb",
        ]
    )
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2
    assert len(err) == 1 and str(path) in err[0] and reason in err[0], err
    assert not out.exists()


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (["missing.obj"], "no such file"),
        (["model.xyz"], "unknown model format"),
    ],
)
def test_missing_or_unknown_file(tmp_path, capsys, args, needle):
    (tmp_path / "model.xyz").write_text("1 2 3\n")
    code = main(["render", *(str(tmp_path / a) for a in args), "--out", str(tmp_path / "o")])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1 and needle in err[0]


@pytest.mark.parametrize("name", ["negative_indices.obj", "soup.stl", "nancolor.obj"])
def test_odd_but_valid_files_render(meshes, tmp_path, name):
    out = tmp_path / "out"
    code = main(
        [
            "render",
            str(meshes / "bad" / name),
            "--out",
            str(out),
            "--width",
            "48",
            "--height",
            "48",
            "--views",
            "2",
            "--samples",
            "2",
        ]
    )
    assert code == 0
    for i in range(2):
        with np.load(out / "views" / f"{i:04d}.npz") as v:
            assert v["mask"].sum() > 50, "the object must be visible"
            assert v["rgb"][v["mask"]].mean() > 10, "a visible object must not be black"


def test_render_models_writes_the_model_folder(meshes, tmp_path, capsys):
    out = tmp_path / "out"
    args = ["render", str(meshes / "suzanne.obj"), str(meshes / "cow.obj"), "--out", str(out),
            "--views", "3", "--sampler", "orbit", "--width", "40", "--height", "30",
            "--samples", "2", "--K", "45,40,19.5,15.5", "--points"]  # fmt: skip
    assert main(args) == 0
    assert "rendered 3 views" in capsys.readouterr().out
    for sub, ext in [("views", "npz"), ("rgb", "png"), ("depth", "npy"), ("mask", "png")]:
        assert sorted(p.name for p in (out / sub).iterdir()) == [f"000{i}.{ext}" for i in range(3)]
    for name in ("cameras.json", "transforms.json", "points.ply"):
        assert (out / name).stat().st_size > 0
    view = np.load(out / "views" / "0001.npz")
    np.testing.assert_allclose(view["K"], [[45, 0, 19.5], [0, 40, 15.5], [0, 0, 1]])
    np.testing.assert_array_equal(np.load(out / "depth" / "0001.npy"), view["depth"])
    meta = json.loads(str(view["meta"]))
    assert [Path(p).name for p in meta["scene"]["models"]] == ["suzanne.obj", "cow.obj"]
    assert not list(out.rglob(".*")), "no temporary files may remain"

    # The same cameras again, from the written transforms.json: identical ground truth.
    again = tmp_path / "again"
    models = [str(meshes / "suzanne.obj"), str(meshes / "cow.obj")]
    cams = str(out / "transforms.json")
    assert main(["render", *models, "--out", str(again), "--cameras", cams, "--no-rgb"]) == 0
    for i in range(3):
        a = np.load(out / "views" / f"000{i}.npz")
        b = np.load(again / "views" / f"000{i}.npz")
        np.testing.assert_allclose(b["cam_to_world"], a["cam_to_world"], atol=1e-12)
        assert np.array_equal(a["mask"], b["mask"])
        np.testing.assert_allclose(b["depth"], a["depth"], rtol=1e-6)


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (["--views", "0"], "--views"),
        (["--K", "1,2,3"], "--K"),
        (["--fill", "2"], "--fill"),
        (["--cameras", "nope.json"], "--cameras"),
        (["--light", "disco"], "--light"),
    ],
)
def test_bad_view_options(meshes, tmp_path, capsys, args, needle):
    out = tmp_path / "out"
    code = main(["render", str(meshes / "cow.obj"), "--out", str(out), *args])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1 and needle in err[0], err
    assert not out.exists()


def test_unreadable_texture_warns_in_one_line_and_renders(meshes, tmp_path, capsys):
    # fuze.obj's material names "fuze uv.jpg"; copy the model without it.
    for name in ("fuze.obj", "fuze.obj.mtl"):
        (tmp_path / name).write_bytes((meshes / name).read_bytes())
    out = tmp_path / "out"
    code = main(["render", str(tmp_path / "fuze.obj"), "--out", str(out), "--views", "1",
                 "--width", "32", "--height", "32", "--samples", "2"])  # fmt: skip
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 0
    assert len(err) == 1 and err[0].startswith("blendtruth: warning:")
    assert "fuze uv.jpg" in err[0] and "fuze.obj" in err[0]
    assert np.load(out / "views" / "0000.npz")["mask"].sum() > 20


def test_render_a_primitive_by_name(tmp_path):
    out = tmp_path / "out"
    assert main(["render", "uv_sphere", "--out", str(out), "--views", "2", "--width", "32",
                 "--height", "32", "--no-rgb"]) == 0  # fmt: skip
    meta = json.loads(str(np.load(out / "views" / "0000.npz")["meta"]))
    assert meta["scene"]["primitive"] == "uv_sphere"
    assert meta["scene"]["bounding_sphere"]["radius"] == pytest.approx(1.0, abs=1e-6)
