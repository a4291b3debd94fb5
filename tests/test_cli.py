"""The command line: bad options fail in one line with exit 2 and write nothing;
`blendtruth render` writes the tutorial's files and the canonical view file."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest

from blendtruth.cli import main


def _run(args: list[str], capsys) -> tuple[int, str]:
    code = main(args)
    return code, capsys.readouterr().err


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (["--width", "0"], "--width"),
        (["--height", "-3"], "--height"),
        (["--samples", "-1"], "--samples"),
        (["--width", "abc"], "--width"),
        (["--engine", "mantra"], "--engine"),
        (["--device", "tpu"], "--device"),
        (["--normals", "magic"], "--normals"),
        (["--seed", "-5"], "--seed"),
        (["--bogus"], "--bogus"),
    ],
)
def test_bad_options_one_line_exit_2_no_output(tmp_path, capsys, args, needle):
    out = tmp_path / "out"
    code, err = _run(["render", "--out", str(out), *args], capsys)
    assert code == 2
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("blendtruth: error:") and needle in lines[0]
    assert not out.exists()


def test_unwritable_out(tmp_path, capsys):
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    for out in (blocker, blocker / "sub"):
        code, err = _run(["render", "--out", str(out), "--width", "8", "--height", "8"], capsys)
        assert code == 2
        assert len(err.strip().splitlines()) == 1 and str(out) in err
    assert blocker.read_text() == "not a folder"


@pytest.mark.render
def test_render_command_writes_the_tutorials_files(tmp_path):
    pytest.importorskip("bpy")
    out = tmp_path / "out"
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "blendtruth.cli",
            "render",
            "--out",
            str(out),
            "--width",
            "96",
            "--height",
            "54",
            "--samples",
            "4",
            "--normals",
            "sobel",
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr
    names = sorted(p.name for p in out.iterdir())
    assert names == [
        "d.npz",
        "depth.png",
        "instances.json",
        "normal.png",
        "rgb.png",
        "view_0000.npz",
    ]
    # One summary line, not a line per file: every file named once, at the top level.
    (line,) = [x for x in proc.stdout.splitlines() if x.startswith("wrote ")]
    assert line.startswith(f"wrote {len(names)} files into {out}: ")
    assert sorted(line.split(": ", 1)[1].split(", ")) == names
    assert "Fra:" not in proc.stdout, "Blender's per-sample progress must not leak"

    from blendtruth.geometry.normals import dmap2norm

    with np.load(out / "d.npz") as d, np.load(out / "view_0000.npz") as v:
        assert sorted(d.files) == ["dmap", "nmap"]
        assert d["dmap"].dtype == np.float32 and d["dmap"].shape == (54, 96)
        assert np.array_equal(d["dmap"], v["depth"])
        assert np.array_equal(d["nmap"], dmap2norm(d["dmap"]))
        assert v["rgb"].shape == (54, 96, 3) and v["K"].shape == (3, 3)
        assert v["cam_to_world"].shape == (4, 4) and v["mask"].dtype == bool
        meta = json.loads(str(v["meta"]))
        assert meta["conventions"]["camera_axes"].startswith("OpenCV")
        assert meta["nmap_source"] == "sobel" and meta["rgb"]["samples"] == 4
    import cv2

    rgb_png = cv2.imread(str(out / "rgb.png"))[..., ::-1]
    with np.load(out / "view_0000.npz") as v:
        assert np.array_equal(rgb_png, v["rgb"])
    assert not list(out.glob(".*")), "no temporary files may remain"


def test_help_lists_render(capsys):
    assert main(["--help"]) == 0
    assert "render" in capsys.readouterr().out
