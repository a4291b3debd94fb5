"""Datasets: resume after kill -9, failure isolation, timeouts, shards, determinism."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from blendtruth.dataset.job import ModelJob
from blendtruth.dataset.local import LocalExecutor
from blendtruth.dataset.manifest import read_records
from blendtruth.dataset.runner import plan_jobs
from blendtruth.dataset.sources import expand_sources, in_shard, model_id, parse_shard
from blendtruth.errors import BlendtruthError
from blendtruth.multiview import ViewPlan
from blendtruth.scene import SceneSpec
from blendtruth.settings import RenderSettings

GOOD = ["cow.obj", "suzanne.obj", "teapot.stl", "sphere.ply", "monkey.glb", "fandisk.obj"]
SMALL = ["--views", "2", "--width", "32", "--height", "32", "--no-rgb", "--no-progress"]


def _cli(*args: str, timeout: float = 600) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "blendtruth.cli", "dataset", *args],
                          capture_output=True, text=True, timeout=timeout)  # fmt: skip


@pytest.fixture
def sources(meshes, tmp_path) -> Path:
    src = tmp_path / "src"
    (src / "sub").mkdir(parents=True)
    for i, name in enumerate(GOOD):
        shutil.copy(meshes / name, (src / "sub" if i % 2 else src) / name)
    return src


def _check_complete(out: Path, n_models: int, size: int = 32) -> None:
    """Every model done exactly once, every listed file present and readable, no temps."""
    index = json.loads((out / "index.json").read_text())
    assert len(index["models"]) == n_models
    done_lines: dict[str, int] = {}
    for path in out.glob("manifest*.jsonl"):
        for line in path.read_text().splitlines():
            try:
                rec = json.loads(line)
            except json.JSONDecodeError:
                continue
            if rec.get("status") == "done":
                done_lines[rec["id"]] = done_lines.get(rec["id"], 0) + 1
    assert sorted(done_lines) == sorted(m["id"] for m in index["models"])
    assert set(done_lines.values()) == {1}, "a model recorded done twice"
    records = read_records(out)
    for model in index["models"]:
        folder = out / model["folder"]
        files = sorted(str(p.relative_to(folder)) for p in folder.rglob("*") if p.is_file())
        assert files == records[model["id"]]["files"]
        for view in model["views"]:
            with np.load(out / view) as v:
                assert v["depth"].shape == (size, size) and v["mask"].any()
    assert not list((out / "models").glob(".*")), "temporary folders left behind"
    assert sorted(p.name for p in (out / "models").iterdir()) == sorted(done_lines)


def test_sources_shards_and_ids(sources, tmp_path):
    listed = tmp_path / "list.txt"
    listed.write_text("# models\nsrc/cow.obj\n\n" + str(sources / "sub" / "suzanne.obj") + "\n")
    found = expand_sources([sources])
    assert len(found) == len(GOOD) and found == sorted(found)
    assert expand_sources([listed]) == [sources / "cow.obj", sources / "sub" / "suzanne.obj"]
    assert len(expand_sources([str(sources / "**" / "*.obj")])) == 3
    assert expand_sources([sources, sources / "cow.obj"]) == found  # no duplicates
    ids = [model_id(p) for p in found]
    assert len(set(ids)) == len(ids)
    for n in (2, 3):
        parts = [{m for m in ids if in_shard(m, (i, n))} for i in range(n)]
        assert set().union(*parts) == set(ids) and sum(map(len, parts)) == len(ids)
    with pytest.raises(BlendtruthError, match="no such file"):
        expand_sources([tmp_path / "nope"])
    with pytest.raises(BlendtruthError, match="--shard"):
        parse_shard("2/2")


@pytest.mark.render
def test_bad_file_among_good_ones_and_resume(meshes, sources, tmp_path):
    shutil.copy(meshes / "bad" / "points_bin.ply", sources / "points_bin.ply")
    out = tmp_path / "out"
    first = _cli(str(sources), "--out", str(out), "--workers", "2", *SMALL)
    assert first.returncode == 1, first.stderr
    assert "points_bin.ply: nothing to render" in first.stderr
    summary = json.loads((out / "summary.json").read_text())
    assert summary["models_done"] == len(GOOD) and summary["models_failed"] == 1
    _check_complete(out, len(GOOD))
    (sources / "points_bin.ply").unlink()
    again = _cli(str(sources), "--out", str(out), "--workers", "2", *SMALL)
    assert again.returncode == 0, again.stderr
    assert json.loads((out / "summary.json").read_text())["skipped_already_done"] == len(GOOD)


@pytest.mark.render
@pytest.mark.parametrize("after_records", [0, 2])
def test_kill_9_then_rerun_completes(sources, tmp_path, after_records):
    """kill -9 the runner and its workers once ``after_records`` models are recorded (0:
    while the first are still rendering), re-run: complete, valid, nothing twice."""
    out = tmp_path / "out"
    args = [str(sources), "--out", str(out), "--workers", "2", "--views", "4", "--width",
            "64", "--height", "64", "--samples", "16", "--no-progress"]  # fmt: skip
    proc = subprocess.Popen([sys.executable, "-m", "blendtruth.cli", "dataset", *args],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            start_new_session=True)  # fmt: skip
    manifest = out / "manifest.jsonl"
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        lines = manifest.read_text().count("\n") if manifest.exists() else 0
        started = (out / "models").is_dir() and any((out / "models").iterdir())
        if lines >= after_records and (after_records or started):
            break
        time.sleep(0.02)
    os.killpg(proc.pid, signal.SIGKILL)  # the runner and its workers, mid-flight
    proc.wait()
    recorded = manifest.read_text().count("\n") if manifest.exists() else 0
    assert recorded < len(GOOD), "the kill must land before the run finished"
    rerun = _cli(*args)
    assert rerun.returncode == 0, rerun.stderr
    _check_complete(out, len(GOOD), size=64)


def _jobs(meshes, tmp_path, names):
    settings = RenderSettings(width=32, height=32, rgb=False)
    return [(j, 0) for j in plan_jobs([meshes / n for n in names], tmp_path, SceneSpec(
        models=(Path("x.obj"),)), ViewPlan(views=1), settings, (0, 1))]  # fmt: skip


@pytest.mark.render
def test_crashed_worker_fails_only_its_model_and_is_retried(meshes, tmp_path):
    sys.path.insert(0, str(Path(__file__).parent))
    from dataset_helpers import crash_on_cow_first_time

    (tmp_path / "models").mkdir()
    outcomes: dict[str, list] = {}

    def on_result(job: ModelJob, outcome):
        outcomes.setdefault(job.source.name, []).append(outcome)
        retry = not outcome["ok"] and outcome["attempt"] < 2
        return [(job, outcome["attempt"] + 1)] if retry else []

    LocalExecutor(2, timeout=120, run=crash_on_cow_first_time).run(
        _jobs(meshes, tmp_path, ["cow.obj", "suzanne.obj", "teapot.stl"]), on_result
    )
    assert outcomes["cow.obj"][0]["ok"] is False
    assert "worker crashed (killed by SIGKILL)" in outcomes["cow.obj"][0]["reason"]
    assert outcomes["cow.obj"][1]["ok"] is True, outcomes["cow.obj"]
    assert all(o[-1]["ok"] for o in outcomes.values()), outcomes


@pytest.mark.render
def test_per_model_timeout(meshes, tmp_path):
    sys.path.insert(0, str(Path(__file__).parent))
    from dataset_helpers import hang_on_cow

    (tmp_path / "models").mkdir()
    outcomes = {}
    start = time.monotonic()
    LocalExecutor(2, timeout=8, run=hang_on_cow).run(
        _jobs(meshes, tmp_path, ["cow.obj", "suzanne.obj", "teapot.stl"]),
        lambda job, o: outcomes.setdefault(job.source.name, o) and [],
    )
    assert time.monotonic() - start < 60
    assert outcomes["cow.obj"] == {"ok": False, "retryable": False,  # hangs again if retried
                                   "reason": "timed out after 8 s", "attempt": 0}  # fmt: skip
    assert outcomes["suzanne.obj"]["ok"] and outcomes["teapot.stl"]["ok"]


@pytest.mark.render
def test_shards_merge_without_overlap_and_results_do_not_depend_on_workers(sources, tmp_path):
    merged, single = tmp_path / "merged", tmp_path / "single"
    for i in range(2):
        run = _cli(str(sources), "--out", str(merged), "--shard", f"{i}/2", "--workers", "1",
                   *SMALL)  # fmt: skip
        assert run.returncode == 0, run.stderr
    run = _cli(str(sources), "--out", str(single), "--workers", "2", *SMALL)
    assert run.returncode == 0, run.stderr
    _check_complete(merged, len(GOOD))
    assert len(list(merged.glob("manifest.shard-*-of-2.jsonl"))) == 2
    for model in json.loads((single / "index.json").read_text())["models"]:
        for view in model["views"]:
            a, b = np.load(single / view), np.load(merged / view)
            assert np.array_equal(a["cam_to_world"], b["cam_to_world"])
            assert np.array_equal(a["depth"], b["depth"]) and np.array_equal(
                a["normal"], b["normal"]
            )


@pytest.mark.slow
def test_ray_executor_on_a_local_instance(meshes, sources, tmp_path):
    pytest.importorskip("ray")
    shutil.copy(meshes / "bad" / "points_bin.ply", sources / "points_bin.ply")
    out = tmp_path / "out"
    run = _cli(str(sources), "--out", str(out), "--executor", "ray", *SMALL, timeout=900)
    assert run.returncode == 1, run.stderr
    assert "points_bin.ply: nothing to render" in run.stderr
    _check_complete(out, len(GOOD))
    rerun = _cli(str(sources), "--out", str(out), "--executor", "ray", *SMALL, timeout=900)
    assert json.loads((out / "summary.json").read_text())["skipped_already_done"] == len(GOOD)
    assert rerun.returncode == 1  # the bad file fails again


def test_one_gpu_per_worker(tmp_path):
    sys.path.insert(0, str(Path(__file__).parent))
    from dataset_helpers import report_gpu

    jobs = [(ModelJob(f"m{i}", Path(f"m{i}.obj"), tmp_path, SceneSpec(models=(Path("m.obj"),)),
                      ViewPlan(), RenderSettings()), 0) for i in range(6)]  # fmt: skip
    seen = []
    LocalExecutor(2, timeout=60, run=report_gpu, gpus=["3", "5"]).run(
        jobs, lambda job, o: seen.append(o["gpu"]) or []
    )
    assert sorted(set(seen)) == ["3", "5"] and len(seen) == 6
    assert "CUDA_VISIBLE_DEVICES" not in os.environ or os.environ["CUDA_VISIBLE_DEVICES"] != "3"


@pytest.mark.render
def test_workers_start_cleanly_from_a_process_that_imported_bpy(meshes, tmp_path):
    # Importing bpy puts Blender's script folders on sys.path; a spawned worker inheriting
    # them would find Blender's pure-Python "bpy" first and fail ("No module named _bpy").
    import bpy  # noqa: F401

    (tmp_path / "models").mkdir()
    outcomes = []
    LocalExecutor(1, timeout=120).run(_jobs(meshes, tmp_path, ["cow.obj"]),
                                      lambda job, o: outcomes.append(o) or [])  # fmt: skip
    assert outcomes[0]["ok"], outcomes


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (["--shard", "3/2"], "--shard"),
        (["--shard", "x"], "--shard"),
        (["--workers", "0"], "--workers"),
        (["--timeout", "0"], "--timeout"),
        (["--fill", "0"], "--fill"),
        (["--executor", "slurm"], "--executor"),
    ],
)
def test_bad_dataset_options_one_line_exit_2(sources, tmp_path, capsys, args, needle):
    from blendtruth.cli import main

    out = tmp_path / "out"
    code = main(["dataset", str(sources), "--out", str(out), "--no-progress", *args])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1 and needle in err[0], err
    assert not out.exists()


def test_unwritable_out_one_line_exit_2(sources, tmp_path, capsys):
    from blendtruth.cli import main

    blocker = tmp_path / "file"
    blocker.write_text("")
    code = main(["dataset", str(sources), "--out", str(blocker / "sub"), "--no-progress"])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1 and "--out" in err[0], err


def test_missing_source_one_line_exit_2(tmp_path, capsys):
    from blendtruth.cli import main

    code = main(["dataset", str(tmp_path / "nothing-here"), "--out", str(tmp_path / "o")])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1 and "nothing-here: no such file" in err[0]
    assert not (tmp_path / "o").exists()


@pytest.mark.render
def test_a_shard_without_models_finishes_cleanly(meshes, tmp_path):
    # One model, three shards: two of them get nothing and must still finish and record.
    src = tmp_path / "one"
    src.mkdir()
    shutil.copy(meshes / "cow.obj", src / "cow.obj")
    out = tmp_path / "out"
    for i in range(3):
        run = _cli(str(src), "--out", str(out), "--shard", f"{i}/3", *SMALL)
        assert run.returncode == 0, run.stderr
    assert len(list(out.glob("manifest.shard-*-of-3.jsonl"))) == 3
    _check_complete(out, 1)
