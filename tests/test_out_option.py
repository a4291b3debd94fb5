"""``--out`` that cannot be a folder (an existing file, a path under a file, a place no one
may write) stops every writing subcommand with one line and exit 2, before Blender is
imported and before any work; nothing is created."""

from __future__ import annotations

import subprocess
import sys

import pytest

from export_helpers import MESHES

RUN = (
    "import sys; from blendtruth.cli import main\n"
    "try:\n"
    "    code = main(sys.argv[1:])\n"
    "except SystemExit as exc:\n"
    "    code = exc.code\n"
    "print('BPY' if 'bpy' in sys.modules else 'NO-BPY', code)\n"
)


def _commands(tmp_path, out):
    folder = tmp_path / "render"
    folder.mkdir(exist_ok=True)
    model = str(MESHES / "cow.obj")
    return {
        "render": ["render", model, "--out", out],
        "dataset": ["dataset", model, "--out", out, "--no-progress"],
        "scene": ["scene", model, "--out", out],
        "export": ["export", "png16", str(folder), "--out", out],
        "show": ["show", str(folder), "--out", out],
    }


@pytest.mark.parametrize("case", ["file", "under_file", "unwritable"])
@pytest.mark.parametrize("command", ["render", "dataset", "scene", "export", "show"])
def test_bad_out_is_one_line_before_any_work(tmp_path, command, case):
    blocker = tmp_path / "a_file"
    blocker.write_text("not a folder")
    out = {
        "file": str(blocker),
        "under_file": str(blocker / "sub" / "out"),
        "unwritable": "/proc/blendtruth-out",  # refused even to root
    }[case]
    args = _commands(tmp_path, out)[command]
    proc = subprocess.run([sys.executable, "-c", RUN, *args], capture_output=True, text=True,
                          timeout=120)  # fmt: skip
    err = proc.stderr.strip().splitlines()
    assert proc.stdout.split()[-2:] == ["NO-BPY", "2"], (proc.stdout, proc.stderr)
    assert len(err) == 1 and "--out" in err[0] and out in err[0], err
    assert blocker.read_text() == "not a folder"
    assert not (tmp_path / "render" / "show").exists()


def test_export_in_place_needs_a_writable_folder(tmp_path):
    proc = subprocess.run([sys.executable, "-c", RUN, "export", "png16", "/proc/self"],
                          capture_output=True, text=True, timeout=120)  # fmt: skip
    err = proc.stderr.strip().splitlines()
    assert proc.stdout.split()[-1] == "2" and len(err) == 1 and "FOLDER /proc/self" in err[0]
