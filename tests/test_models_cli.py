"""Bad model files: one line naming the file, exit code 2, nothing written.
Valid-but-odd files render. (Runs the real CLI; Blender is needed.)"""

from __future__ import annotations

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
