"""An unusable output folder is one line and exit 2 for every subcommand that writes, before
any import of Blender or any work: a regular file, a path under a regular file, a place
nobody can write (``/proc``, which refuses root too) and, when not root, a read-only folder.
Each case runs the CLI in a fresh interpreter and checks that bpy was never imported."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

MESH = Path(__file__).resolve().parents[1].parent / "shared" / "meshes" / "cow.obj"
_PROBE = (
    "import sys; from blendtruth.cli.main import main; rc = main(sys.argv[1:]); "
    "print('bpy-imported' if 'bpy' in sys.modules else 'no-bpy'); sys.exit(rc)"
)


def _commands(tmp: Path) -> dict[str, list[str]]:
    render_folder = tmp / "render"
    (render_folder / "views").mkdir(parents=True)
    (render_folder / "views" / "0000.npz").write_bytes(b"")
    return {
        "render": ["render", str(MESH), "--width", "16", "--height", "16", "--views", "1"],
        "dataset": ["dataset", str(MESH), "--views", "1", "--no-progress"],
        "scene": ["scene", str(MESH), "--objects", "1", "--views", "1"],
        "export": ["export", "colmap", str(render_folder)],
        "show": ["show", str(render_folder)],
    }


def _bad_outs(tmp: Path) -> list[Path]:
    blocker = tmp / "a-file"
    blocker.write_text("not a folder")
    outs = [blocker, blocker / "sub", Path("/proc/blendtruth-out")]
    if os.geteuid() != 0:  # root writes into a read-only folder anyway
        ro = tmp / "read-only"
        ro.mkdir()
        ro.chmod(0o500)
        outs.append(ro / "out")
    return outs


@pytest.mark.parametrize("command", ["render", "dataset", "scene", "export", "show"])
def test_unusable_out_is_one_line_and_exit_2_before_any_work(tmp_path, command):
    assert MESH.is_file()
    args = _commands(tmp_path)[command]
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1] / "src")}
    for out in _bad_outs(tmp_path):
        run = subprocess.run(
            [sys.executable, "-c", _PROBE, *args, "--out", str(out)],
            capture_output=True,
            text=True,
            timeout=120,
            env=env,
        )
        lines = run.stderr.strip().splitlines()
        assert run.returncode == 2, (out, run.stderr)
        assert len(lines) == 1, (out, run.stderr)
        assert lines[0].startswith("blendtruth: error: --out ") and str(out) in lines[0]
        assert run.stdout.strip().splitlines()[-1] == "no-bpy", (out, run.stdout)
    assert (tmp_path / "a-file").read_text() == "not a folder"


def test_files_summary_is_one_line_naming_folders_and_files(tmp_path):
    from blendtruth.cli.tools import files_summary

    out = tmp_path / "out"
    names = [f"{sub}/{i:04d}.{ext}" for i in range(12)
             for sub, ext in (("views", "npz"), ("rgb", "png"), ("depth", "npy"))]  # fmt: skip
    written = [out / n for n in names] + [out / "cameras.json", out / "mesh.ply"]
    line = files_summary(out, written)
    assert "\n" not in line
    assert line == (
        f"wrote 38 files into {out}: views/ (12), rgb/ (12), depth/ (12), cameras.json, mesh.ply"
    )
