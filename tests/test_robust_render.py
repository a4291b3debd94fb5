"""Run-time robustness with real Blender (issue 12): a really full disk (a small tmpfs),
`render` under a time limit and stopped by SIGTERM, a glTF memory bomb under the limit,
bad .blend files. Tiny renders (32 px, 2 views)."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest

from blendtruth.dataset.manifest import read_records
from blendtruth.dataset.sources import model_id

sys.path.insert(0, str(Path(__file__).parent))
from test_robust import (  # noqa: E402
    _MARKERS,
    _marked_env,
    _no_leftover_processes,  # noqa: F401 - the autouse fixture applies here too
    _processes_with,
)

pytestmark = pytest.mark.render

SMALL = ["--views", "2", "--width", "32", "--height", "32", "--no-rgb", "--no-progress"]


def _blendtruth(*args: str, marker: str = "", timeout: float = 300):
    marker = marker or uuid.uuid4().hex
    _MARKERS.append(marker)
    return subprocess.run([sys.executable, "-m", "blendtruth.cli", *args], env=_marked_env(marker),
                          capture_output=True, text=True, timeout=timeout)  # fmt: skip


@pytest.fixture
def small_disk(tmp_path):
    """A tmpfs of a given size in bytes (a callable), unmounted afterwards."""
    disk = tmp_path / "disk"
    disk.mkdir()

    def mount(size: int):
        mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs",
                                  str(disk)], capture_output=True)  # fmt: skip
        if mounted.returncode != 0:
            pytest.skip("cannot mount a tmpfs here (needs root); the simulated full disk in "
                        "test_robust.py still runs")  # fmt: skip
        return disk

    yield mount
    subprocess.run(["umount", "-l", str(disk)], check=False)


def test_a_really_full_disk_stops_cleanly_and_the_next_run_completes(meshes, tmp_path, small_disk):
    # Four copies of one model, so every model's folder has the same size; the disk holds
    # about two and a half of them (measured here, so new output files keep it true).
    src = tmp_path / "src"
    src.mkdir()
    names = [f"m{i}.ply" for i in range(4)]
    for name in names:
        shutil.copy(meshes / "sphere.ply", src / name)
    probe = tmp_path / "probe"
    one = tmp_path / "one"
    one.mkdir()
    shutil.copy(meshes / "sphere.ply", one / "m.ply")
    assert _blendtruth("dataset", str(one), "--out", str(probe), *SMALL).returncode == 0
    per_model = sum(p.stat().st_size for p in (probe / "models").rglob("*") if p.is_file())
    disk = small_disk(int(2.5 * per_model) + 32 * 1024)
    out = disk / "out"
    start = time.monotonic()
    full = _blendtruth("dataset", str(src), "--out", str(out), "--workers", "2", *SMALL)
    lines = full.stderr.strip().splitlines()
    assert full.returncode == 2 and len(lines) == 1, full.stderr
    assert lines[0].startswith(f"blendtruth: error: disk full: {out}")
    assert "No space left on device" in lines[0] and "nothing was marked failed" in lines[0]
    assert time.monotonic() - start < 120
    records = read_records(out)
    assert 0 < len(records) < len(names) and all(r["status"] == "done" for r in records.values())
    assert not [p for p in (out / "models").iterdir() if p.name.startswith(".")]
    subprocess.run(["mount", "-o", "remount,size=64m", str(disk)], check=True)
    again = _blendtruth("dataset", str(src), "--out", str(out), "--workers", "2", *SMALL)
    assert again.returncode == 0, again.stderr
    summary = json.loads((out / "summary.json").read_text())
    assert summary["skipped_already_done"] == len(records)
    assert summary["models_done"] == len(names) - len(records)
    index = json.loads((out / "index.json").read_text())
    assert len(index["models"]) == len(names)


def test_render_timeout_is_one_line_and_leaves_no_process(meshes, tmp_path):
    marker = uuid.uuid4().hex
    run = _blendtruth("render", str(meshes / "cow.obj"), "--out", str(tmp_path / "o"),
                      "--timeout", "0.5", *SMALL[:-1], marker=marker)  # fmt: skip
    lines = run.stderr.strip().splitlines()
    assert run.returncode == 2 and len(lines) == 1, run.stderr
    assert lines[0] == f"blendtruth: error: {meshes / 'cow.obj'}: timed out after 0.5 s"
    assert _processes_with(marker) == []


def test_sigterm_stops_render_at_once(meshes, tmp_path):
    marker = uuid.uuid4().hex
    _MARKERS.append(marker)
    out = tmp_path / "o"
    args = [sys.executable, "-m", "blendtruth.cli", "render", str(meshes / "stanford-bunny.obj"),
            "--out", str(out), "--views", "3000", "--width", "64", "--height", "64"]  # fmt: skip
    run = subprocess.Popen(args, env=_marked_env(marker), text=True,
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE)  # fmt: skip
    deadline = time.monotonic() + 120
    # Views go to the hidden staging folder first (writers/swap.py): watch it, so the
    # signal arrives while the render runs, not after it moved its files into place.
    while not (out.is_dir() and any(out.glob(".render-tmp-*/views/*.npz"))):
        assert time.monotonic() < deadline, "the render did not start"
        time.sleep(0.05)
    sent = time.monotonic()
    run.send_signal(signal.SIGTERM)
    _, err = run.communicate(timeout=30)
    assert time.monotonic() - sent < 5
    assert run.returncode == 143 and "blendtruth: SIGTERM: stopping the render" in err, err
    time.sleep(0.3)
    assert _processes_with(marker) == []


def _gltf_bomb(path: Path) -> None:
    """500 bytes of glTF whose accessor declares 2^31 positions over a 36-byte buffer."""
    import base64

    gltf = {
        "asset": {"version": "2.0"}, "scene": 0, "scenes": [{"nodes": [0]}],
        "nodes": [{"mesh": 0}], "meshes": [{"primitives": [{"attributes": {"POSITION": 0}}]}],
        "buffers": [{"byteLength": 36, "uri": "data:application/octet-stream;base64,"
                     + base64.b64encode(bytes(36)).decode()}],
        "bufferViews": [{"buffer": 0, "byteLength": 36}],
        "accessors": [{"bufferView": 0, "componentType": 5126, "count": 2**31, "type": "VEC3",
                       "min": [0, 0, 0], "max": [1, 1, 1]}],
    }  # fmt: skip
    path.write_text(json.dumps(gltf))


def test_memory_bomb_and_bad_blend_fail_once_among_good_models(meshes, tmp_path):
    src = tmp_path / "src"
    src.mkdir()
    shutil.copy(meshes / "cow.obj", src / "cow.obj")
    _gltf_bomb(src / "bomb.gltf")
    (src / "bad.blend").write_bytes(b"BLENDER-v300" + bytes(5000))
    (src / "noise.blend").write_bytes(os.urandom(3000))
    out = tmp_path / "out"
    start = time.monotonic()
    run = _blendtruth("dataset", str(src), "--out", str(out), "--workers", "2", "--retries", "2",
                      "--max-memory", "2G", *SMALL)  # fmt: skip
    assert time.monotonic() - start < 120
    assert run.returncode == 1, run.stderr
    failed = [line for line in run.stderr.splitlines() if line.startswith("blendtruth: failed: ")]
    assert len(failed) == 3, run.stderr
    for name in ("bomb.gltf", "bad.blend", "noise.blend"):
        rec = read_records(out)[model_id(src / name)]
        assert rec["status"] == "failed" and rec["attempts"] == 1, rec  # not retried
        assert rec["reason"].startswith(f"{src / name}: "), rec
    bomb = read_records(out)[model_id(src / "bomb.gltf")]["reason"]
    # The input checks (inputs/gltf.py) refuse it before Blender; the memory limit is the
    # backstop (tests/test_robust.py exercises it with jobs that really allocate).
    assert bomb in (
        f"{src / 'bomb.gltf'}: exceeded memory limit 2.0 GiB",
        f"{src / 'bomb.gltf'}: accessor 0 declares 2147483648 elements (25769803776 bytes) "
        "but bufferView 0 holds 36 bytes",
    ), bomb
    assert read_records(out)[model_id(src / "cow.obj")]["status"] == "done"
    one = _blendtruth("render", str(src / "bomb.gltf"), "--out", str(tmp_path / "b"),
                      "--max-memory", "2G", *SMALL[:-1])  # fmt: skip
    assert one.returncode == 2, one.stderr
    assert one.stderr.strip() == f"blendtruth: error: {bomb}"
    for name in ("bad.blend", "noise.blend"):
        one = _blendtruth("render", str(src / name), "--out", str(tmp_path / name), *SMALL[:-1])
        lines = one.stderr.strip().splitlines()
        assert one.returncode == 2 and len(lines) == 1 and str(src / name) in lines[0], lines


def test_render_past_its_memory_limit_is_one_line_and_leaves_no_log(tmp_path):
    # A legitimate render that needs more memory than allowed (2048² with every pass):
    # Blender's allocation failure and its C++ abort become one line naming the limit.
    tmp = tmp_path / "tmp"
    tmp.mkdir()
    size = ["--width", "2048", "--height", "2048"]
    run = subprocess.run(
        [sys.executable, "-m", "blendtruth.cli", "render", "cube", "--out", str(tmp_path / "o"),
         "--max-memory", "500M", "--no-rgb", *size, "--passes", "all"],
        env={**os.environ, "TMPDIR": str(tmp)}, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert run.returncode == 2, run.stderr
    assert run.stderr.strip() == "blendtruth: error: cube: exceeded memory limit 0.5 GiB"
    assert not list(tmp.glob("blendtruth-render-*.log"))
    assert not (tmp_path / "o").exists() or not any((tmp_path / "o").rglob("*.npz"))
