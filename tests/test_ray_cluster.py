"""A real two-node Ray cluster on this machine (issue 12): `ray start --head` on loopback
plus a second `ray start --address` (its own raylet, object store and workers, at node IP
127.0.0.2), a dataset over it, and the second node killed (SIGKILL to every process of
that node) while it renders a model. The run must complete on the head node with every
model done exactly once and every file valid."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import uuid
from pathlib import Path

import numpy as np
import pytest

from blendtruth.dataset.manifest import read_records

sys.path.insert(0, str(Path(__file__).parent))
from test_robust import _marked_env, _processes_with  # noqa: E402

pytestmark = pytest.mark.slow
GOOD = ["cow.obj", "suzanne.obj", "teapot.stl", "sphere.ply", "monkey.glb", "fandisk.obj"]


def _env(marker: str) -> dict:
    # Loopback only: no token (Ray enables token auth when ~/.ray/auth_token exists, which
    # a second `ray start` does not pick up).
    return {**_marked_env(marker), "RAY_AUTH_MODE": "disabled"}


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _node_processes(marker: str, temp: Path) -> list[int]:
    """Processes of one Ray node: started with its marker in the environment, or using its
    temp folder (Ray's agents overwrite their environment with their process title)."""
    found = set(_processes_with(marker))
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) in found:
            continue
        try:
            links = [os.readlink(fd) for fd in (entry / "fd").iterdir()]
            state = (entry / "stat").read_text().rsplit(")", 1)[1].split()[0]
        except OSError:
            continue
        if state != "Z" and any(link.startswith(str(temp)) for link in links):
            found.add(int(entry.name))
    return sorted(found)


def _kill(marker: str, temp: Path) -> list[int]:
    pids = _node_processes(marker, temp)
    for pid in pids:
        with contextlib.suppress(OSError):
            os.kill(pid, signal.SIGKILL)
    return pids


def _task_running_on(marker: str, temp: Path) -> bool:
    for pid in _node_processes(marker, temp):
        try:
            title = Path(f"/proc/{pid}/cmdline").read_bytes()
        except OSError:
            continue
        if title.startswith(b"ray::_remote_job"):
            return True
    return False


@pytest.fixture
def two_nodes(tmp_path):
    pytest.importorskip("ray")
    ray_bin = str(Path(sys.executable).with_name("ray"))
    head, second = uuid.uuid4().hex, uuid.uuid4().hex
    port = _free_port()
    # Short: Ray's socket paths must fit in 107 bytes. One folder per node.
    temp, temp2 = Path("/tmp") / f"bt-ray-{head[:8]}", Path("/tmp") / f"bt-ray-{second[:8]}"
    common = ["--num-cpus", "1", "--disable-usage-stats"]
    try:
        subprocess.run([ray_bin, "start", "--head", "--port", str(port), "--node-ip-address",
                        "127.0.0.1", "--include-dashboard", "false", "--temp-dir", str(temp),
                        *common], env=_env(head), check=True, capture_output=True,
                       timeout=180, text=True)  # fmt: skip
        subprocess.run([ray_bin, "start", "--address", f"127.0.0.1:{port}", "--node-ip-address",
                        "127.0.0.2", "--temp-dir", str(temp2), *common], env=_env(second),
                       check=True, capture_output=True, timeout=180)  # fmt: skip
        yield f"127.0.0.1:{port}", (second, temp2)
    finally:
        _kill(second, temp2)
        _kill(head, temp)
        time.sleep(0.5)
        leftovers = _node_processes(second, temp2) + _node_processes(head, temp)
        shutil.rmtree(temp, ignore_errors=True)
        shutil.rmtree(temp2, ignore_errors=True)
    assert leftovers == [], "Ray processes outlived the test"


def test_dataset_survives_losing_a_node(meshes, tmp_path, two_nodes):
    address, node2 = two_nodes
    src = tmp_path / "src"
    src.mkdir()
    for name in GOOD:
        shutil.copy(meshes / name, src / name)
    out = tmp_path / "out"
    small = ["--views", "6", "--width", "64", "--height", "64", "--no-rgb", "--no-progress"]
    cmd = [sys.executable, "-m", "blendtruth.cli", "dataset", str(src), "--out", str(out),
           "--executor", "ray", "--address", address, "--threads", "1", "--retries", "2",
           *small]  # fmt: skip
    run = subprocess.Popen(cmd, env=_env(uuid.uuid4().hex), text=True,
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE)  # fmt: skip
    deadline = time.monotonic() + 300
    while not _task_running_on(*node2):
        assert run.poll() is None, run.communicate()
        assert time.monotonic() < deadline, "the second node never got a model"
        time.sleep(0.05)
    killed = _kill(*node2)  # the whole node: raylet, object store, agents, workers
    try:
        stdout, stderr = run.communicate(timeout=600)
    finally:
        if run.poll() is None:
            run.kill()
    assert run.returncode == 0, stderr
    assert len(killed) >= 3 and _node_processes(*node2) == []
    records = read_records(out)
    assert sorted(r["status"] for r in records.values()) == ["done"] * len(GOOD)
    assert max(r["attempts"] for r in records.values()) >= 2, "the kill landed between models"
    done_lines = [json.loads(line) for line in (out / "manifest.jsonl").read_text().splitlines()]
    assert sorted(r["id"] for r in done_lines if r["status"] == "done") == sorted(records)
    index = json.loads((out / "index.json").read_text())
    assert len(index["models"]) == len(GOOD)
    for model in index["models"]:
        folder = out / model["folder"]
        files = sorted(str(p.relative_to(folder)) for p in folder.rglob("*") if p.is_file())
        assert files == records[model["id"]]["files"]
        assert len(model["views"]) == 6
        for view in model["views"]:
            with np.load(out / view) as v:
                assert v["depth"].shape == (64, 64) and v["mask"].any()
                assert np.isfinite(v["depth"]).all() and (v["depth"][v["mask"]] > 0).all()
    assert not [p for p in (out / "models").iterdir() if p.name.startswith(".")]
