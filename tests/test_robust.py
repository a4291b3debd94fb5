"""Run-time robustness of datasets and `render` (issue 12): memory and time limits, the
manifest under damage, the --out lock, source de-duplication, a full disk, signals,
failure lines. Fault jobs (tests/dataset_helpers.py) stand in for Blender, so these run
without rendering; each memory bomb runs under a low limit and gives up by itself."""

from __future__ import annotations

import contextlib
import errno
import json
import multiprocessing as mp
import os
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest

from blendtruth.dataset.disk import DiskFull
from blendtruth.dataset.job import ModelJob
from blendtruth.dataset.local import LocalExecutor
from blendtruth.dataset.lock import OutLock
from blendtruth.dataset.manifest import Manifest, read_records
from blendtruth.dataset.runner import DatasetOptions, run_dataset
from blendtruth.dataset.sources import expand_sources, model_id
from blendtruth.errors import BlendtruthError, BlendtruthWarning
from blendtruth.multiview import ViewPlan
from blendtruth.runtime import limits
from blendtruth.runtime.child import run_in_child
from blendtruth.scene import SceneSpec
from blendtruth.settings import RenderSettings

HERE = Path(__file__).parent
sys.path.insert(0, str(HERE))
import dataset_helpers  # noqa: E402

GIB = 2**30


def _models(folder: Path, names) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for name in names:
        (folder / name).write_text("v 0 0 0\n")
    return folder


def _dataset(src, out, run, **kw):
    kw = {"workers": 2, "progress": False, "timeout": 60, **kw}
    options = DatasetOptions(run=run, **kw)
    return run_dataset([src], out, SceneSpec(), ViewPlan(views=1), RenderSettings(), options)


def _job(tmp_path, name="m.obj"):
    return ModelJob(model_id(tmp_path / name), tmp_path / name, tmp_path,
                    SceneSpec(models=(tmp_path / name,)), ViewPlan(), RenderSettings())  # fmt: skip


def _marked_env(marker: str) -> dict:
    # Not this process's sys.path: once bpy is imported here it holds Blender's script
    # folders, whose pure-Python "bpy" would shadow the real module in the children.
    path = os.pathsep.join(p for p in (str(HERE), os.environ.get("PYTHONPATH")) if p)
    return {**os.environ, "BLENDTRUTH_TEST_MARK": marker, "PYTHONPATH": path}


def _processes_with(marker: str) -> list[int]:
    """Live processes started with BLENDTRUTH_TEST_MARK=marker (the run and its children)."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            environ = (entry / "environ").read_bytes()
            state = (entry / "stat").read_text().rsplit(")", 1)[1].split()[0]
        except OSError:
            continue
        if f"BLENDTRUTH_TEST_MARK={marker}".encode() in environ and state != "Z":
            found.append(int(entry.name))
    return found


_MARKERS: list[str] = []


@pytest.fixture(autouse=True)
def _no_leftover_processes():
    """Whatever a test started is killed afterwards, even when the test failed."""
    yield
    while _MARKERS:
        for pid in _processes_with(_MARKERS.pop()):
            with contextlib.suppress(OSError):
                os.kill(pid, signal.SIGKILL)


def _fake_cli(run: str, *args: str, marker: str = "", **popen):
    marker = marker or uuid.uuid4().hex
    _MARKERS.append(marker)
    cmd = [sys.executable, str(HERE / "dataset_helpers.py"), run, "dataset", *args]
    return subprocess.Popen(cmd, env=_marked_env(marker), text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, **popen)  # fmt: skip


def _done_lines(out: Path) -> dict[str, int]:
    counts: dict[str, int] = {}
    for rec in read_records(out).values():
        assert rec["status"] == "done", rec
    for line in (out / "manifest.jsonl").read_text().splitlines():
        try:
            rec = json.loads(line)
        except json.JSONDecodeError:
            continue
        if isinstance(rec, dict) and rec.get("status") == "done":
            counts[rec["id"]] = counts.get(rec["id"], 0) + 1
    return counts


# 1. Limits -------------------------------------------------------------------------


def test_limit_options_are_validated():
    assert limits.parse_memory("4G") == 4 * GIB == limits.parse_memory("4GiB")
    assert limits.parse_memory("512M") == 512 * 2**20 and limits.parse_memory("1.5") == 1.5 * GIB
    assert limits.parse_memory("none") is None
    for bad in ("0", "nan", "inf", "-1G", "4X", "10M", ""):
        with pytest.raises(BlendtruthError, match="--max-memory"):
            limits.parse_memory(bad)
    for bad in (float("nan"), float("inf"), 0.0, -5.0):
        with pytest.raises(BlendtruthError, match="--timeout must be a finite number"):
            limits.check_seconds(bad)
    total = limits.machine_memory()
    assert limits.default_max_memory(2) == max(GIB, int(total * 0.8 / 2))


@pytest.mark.parametrize("value", ["nan", "inf", "-inf", "0", "-1"])
@pytest.mark.parametrize("command", ["render", "dataset"])
def test_bad_timeout_one_line_exit_2(tmp_path, capsys, command, value):
    from blendtruth.cli import main

    src = _models(tmp_path / "src", ["a.obj"])
    args = [command] + ([str(src)] if command == "dataset" else []) + ["--out", str(tmp_path / "o")]
    code = main([*args, "--timeout", value, "--no-rgb"])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1 and "--timeout" in err[0], err
    assert not (tmp_path / "o").exists()


@pytest.mark.parametrize("command", ["render", "dataset"])
def test_bad_max_memory_one_line_exit_2(tmp_path, capsys, command):
    from blendtruth.cli import main

    src = _models(tmp_path / "src", ["a.obj"])
    args = [command] + ([str(src)] if command == "dataset" else []) + ["--out", str(tmp_path / "o")]
    code = main([*args, "--max-memory", "lots", "--no-rgb"])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1 and "--max-memory must be a size" in err[0], err
    assert not (tmp_path / "o").exists()


def test_memory_bomb_in_a_worker_fails_under_the_limit_and_is_not_retried(tmp_path):
    (tmp_path / "models").mkdir()
    outcomes = []
    start = time.monotonic()
    LocalExecutor(1, timeout=60, run=dataset_helpers.allocate_until_stopped, max_memory=GIB).run(
        [(_job(tmp_path), 0)], lambda job, o: outcomes.append(o) or []
    )
    assert outcomes == [{"ok": False, "reason": "exceeded memory limit 1.0 GiB",
                         "retryable": False, "attempt": 0}]  # fmt: skip
    assert time.monotonic() - start < 30


def test_memory_the_data_limit_misses_is_caught_by_the_watchdog(tmp_path):
    (tmp_path / "models").mkdir()
    outcomes = []
    LocalExecutor(1, timeout=60, run=dataset_helpers.allocate_shared_until_stopped,
                  max_memory=GIB // 2).run(
        [(_job(tmp_path), 0)], lambda job, o: outcomes.append(o) or [])  # fmt: skip
    assert outcomes[0]["reason"] == "exceeded memory limit 0.5 GiB", outcomes
    assert outcomes[0]["retryable"] is False


def test_child_process_limits_time_memory_and_passes_warnings_back():
    start = time.monotonic()
    with pytest.raises(BlendtruthError, match=r"^x\.obj: timed out after 1 s$"):
        run_in_child("dataset_helpers:sleep_forever", (), label="x.obj", timeout=1,
                     max_memory=None)  # fmt: skip
    assert time.monotonic() - start < 10
    with pytest.raises(BlendtruthError, match=r"^y\.glb: exceeded memory limit 1\.0 GiB$"):
        run_in_child("dataset_helpers:allocate_in_child", (), label="y.glb", timeout=60,
                     max_memory=GIB)  # fmt: skip
    with pytest.warns(BlendtruthWarning, match="a texture is missing"):
        assert run_in_child("dataset_helpers:answer_with_warning", (21,), label="z",
                            timeout=60, max_memory=GIB) == 42  # fmt: skip


# 2. Manifest -----------------------------------------------------------------------


def test_manifest_survives_cut_lines_garbage_and_non_records(tmp_path):
    path = tmp_path / "manifest.jsonl"
    good = {"id": "a", "status": "failed", "reason": "x", "source": "a.obj"}
    path.write_bytes(
        json.dumps(good).encode() + b"\n"
        + b"\xff\xfe\x00garbage\n"  # not UTF-8
        + b"[1, 2, 3]\n"  # JSON, not a record
        + b'{"id": 5, "status": "done"}\n'  # a record we never write
        + b'{"id": "d", "status": "done", "files": "views/0000.npz", "source": "d"}\n'
        + b"[" * 100000 + b"\n"  # nesting past the parser's recursion limit
        + b'{"id": "b", "status": "done", "fi'  # cut short by a crash
    )  # fmt: skip
    Manifest(path).append({"id": "c", "status": "failed", "reason": "y", "source": "c"})
    with pytest.warns(BlendtruthWarning, match=r"ignored 6 line\(s\).*first: line 2"):
        records = read_records(tmp_path, warn=True)
    assert sorted(records) == ["a", "c"]  # the new record was not glued onto the cut line
    assert path.read_bytes().endswith(b'"fi\n{"id": "c", "reason": "y", "source": "c", '
                                      b'"status": "failed"}\n')  # fmt: skip


def _append_many(path: str, writer: int) -> None:
    manifest = Manifest(Path(path))
    for i in range(300):
        manifest.append({"id": f"w{writer}-{i}", "status": "failed", "reason": "r" * 3000,
                         "source": "s"})  # fmt: skip


def test_concurrent_manifest_writers_never_interleave(tmp_path):
    ctx = mp.get_context("fork")
    procs = [ctx.Process(target=_append_many, args=(str(tmp_path / "manifest.jsonl"), w))
             for w in range(4)]  # fmt: skip
    for p in procs:
        p.start()
    for p in procs:
        p.join(60)
    lines = (tmp_path / "manifest.jsonl").read_bytes().split(b"\n")
    assert lines[-1] == b"" and len(lines) == 1201
    assert len(read_records(tmp_path)) == 1200


def test_resume_after_a_cut_last_line_redoes_that_model(tmp_path):
    src = _models(tmp_path / "src", [f"m{i}.obj" for i in range(4)])
    out = tmp_path / "out"
    assert _dataset(src, out, dataset_helpers.fake_job)["models_done"] == 4
    manifest = out / "manifest.jsonl"
    data = manifest.read_bytes()
    manifest.write_bytes(data[: len(data) - 40])  # the last record loses its end
    with pytest.warns(BlendtruthWarning, match="cut short"):
        again = _dataset(src, out, dataset_helpers.fake_job)
    assert again["models_done"] == 1 and again["skipped_already_done"] == 3
    index = json.loads((out / "index.json").read_text())
    assert len(index["models"]) == 4
    assert sorted(_done_lines(out).values()) == [1, 1, 1, 1]  # the cut record no longer counts


# 3. Lock on --out ------------------------------------------------------------------


def _hold_lock_then_die(out: str, ready) -> None:
    lock = OutLock(Path(out)).__enter__()  # noqa: F841 - held until this process dies
    ready.set()
    time.sleep(3600)


def test_second_run_on_the_same_out_is_refused_and_a_dead_runs_lock_is_taken_over(tmp_path):
    src = _models(tmp_path / "src", ["m0.obj", "m1.obj"])
    out = tmp_path / "out"
    (out / "models").mkdir(parents=True)
    in_progress = out / "models" / f".{model_id(src / 'm0.obj')}.tmp-4242"
    in_progress.mkdir()  # the first run's work
    ctx = mp.get_context("fork")
    ready = ctx.Event()
    holder = ctx.Process(target=_hold_lock_then_die, args=(str(out), ready))
    holder.start()
    assert ready.wait(20)
    second = _fake_cli("fake_job", str(src), "--out", str(out), "--no-progress")
    _, err = second.communicate(timeout=60)
    lines = err.strip().splitlines()
    assert second.returncode == 2 and len(lines) == 1, err
    assert f"pid {holder.pid}" in lines[0] and "another blendtruth dataset run" in lines[0]
    assert in_progress.is_dir() and not (out / "manifest.jsonl").exists()
    os.kill(holder.pid, signal.SIGKILL)  # the first run dies; its lock file stays behind
    holder.join()
    assert (out / ".lock").read_text().strip() == str(holder.pid)
    third = _fake_cli("fake_job", str(src), "--out", str(out), "--no-progress")
    assert third.wait(60) == 0, third.stderr.read()
    assert sorted(_done_lines(out).values()) == [1, 1] and not in_progress.exists()


def test_a_file_system_without_locks_is_a_warning(tmp_path, monkeypatch):
    def no_locks(fd, op):
        raise OSError(errno.ENOLCK, "No locks available")

    monkeypatch.setattr("fcntl.flock", no_locks)
    with pytest.warns(BlendtruthWarning, match="does not support locks"), OutLock(tmp_path):
        Manifest(tmp_path / "manifest.jsonl").append({"id": "a", "status": "failed"})
    assert (tmp_path / "manifest.jsonl").read_text().count("\n") == 1


def test_two_concurrent_runs_the_second_exits_the_first_completes(tmp_path):
    src = _models(tmp_path / "src", [f"m{i}.obj" for i in range(4)])
    out = tmp_path / "out"
    first = _fake_cli("slow_fake_job", str(src), "--out", str(out), "--no-progress",
                      "--workers", "1")  # fmt: skip
    deadline = time.monotonic() + 30
    while not (out / ".lock").exists() or not (out / ".lock").read_text().strip():
        assert time.monotonic() < deadline
        time.sleep(0.05)
    second = _fake_cli("fake_job", str(src), "--out", str(out), "--no-progress")
    _, err = second.communicate(timeout=30)
    assert second.returncode == 2 and "another blendtruth dataset run" in err, err
    assert first.wait(60) == 0, first.stderr.read()
    assert sorted(_done_lines(out).values()) == [1, 1, 1, 1]


# 4. Sources ------------------------------------------------------------------------


def test_sources_count_each_file_once_and_skip_our_own_output(tmp_path, monkeypatch):
    src = _models(tmp_path / "src", ["a.obj", "b.obj"])
    (src / "sub").mkdir()
    (src / "link.obj").symlink_to(src / "a.obj")
    os.link(src / "b.obj", src / "sub" / "hard.obj")
    listed = src / "list.txt"
    listed.write_text("a.obj\nsub/../a.obj\n" + str(src / "a.obj") + "\nlink.obj\n")
    monkeypatch.chdir(tmp_path)
    found = expand_sources([src, "src/a.obj", listed, str(src / "*.obj")])
    assert found == [src / "a.obj", src / "b.obj"]
    out = src / "out"  # the dataset's --out inside its sources, holding earlier outputs
    _models(out / "models" / "a.obj-0123456789", ["points.ply", "mesh.obj"])
    assert expand_sources([src], exclude=out / "models") == [src / "a.obj", src / "b.obj"]


def test_out_inside_sources_and_temp_like_model_names_across_runs(tmp_path):
    src = _models(tmp_path / "src", ["cow.obj"])
    cow = model_id(src / "cow.obj")
    # Named like a temp folder of cow: before, every other run deleted its finished folder.
    _models(src, [f".{cow}.tmp-7.obj"])
    out = src / "out"
    for run in range(3):
        summary = _dataset(src, out, dataset_helpers.fake_job)
        assert summary["models_total"] == 2, summary  # not its own outputs
        assert summary["skipped_already_done"] == (2 if run else 0)
        assert all((out / "models" / mid).is_dir() for mid in _done_lines(out))
    assert not any(m.startswith(".") for m in _done_lines(out))
    # --out may even be the source folder itself: its models are still found.
    same = _dataset(src, src, dataset_helpers.fake_job)
    assert same["models_total"] == 2


def test_unreadable_list_file_one_line_and_empty_glob_warns(tmp_path, capsys):
    from blendtruth.cli import main

    listed = tmp_path / "list.txt"
    listed.write_text("a.obj\n", encoding="utf-16")
    code = main(["dataset", str(listed), "--out", str(tmp_path / "o"), "--no-progress"])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1 and "list.txt: not a UTF-8 list of paths" in err[0]
    listed.write_bytes(b"a.obj\n\xe9t\xe9.obj\n")
    with pytest.raises(BlendtruthError, match="list.txt: line 2: not UTF-8"):
        expand_sources([listed])
    src = _models(tmp_path / "src", ["a.obj"])
    with pytest.warns(BlendtruthWarning, match=r"\*\.glb: the pattern matches no model"):
        assert expand_sources([src, str(tmp_path / "*.glb")]) == [src / "a.obj"]


# 5. Disk full ----------------------------------------------------------------------


def test_disk_full_stops_cleanly_without_failing_models_and_the_rerun_completes(tmp_path):
    src = _models(tmp_path / "src", [f"m{i}.obj" for i in range(6)])
    out = tmp_path / "out"
    with pytest.raises(DiskFull) as info:
        _dataset(src, out, dataset_helpers.disk_full_on_third, workers=1)
    message = str(info.value)
    assert ".m2.obj-" in message and "No space left on device" in message and "\n" not in message
    assert "nothing was marked failed" in message
    records = read_records(out)
    assert all(r["status"] == "done" for r in records.values())
    assert not [p for p in (out / "models").iterdir() if p.name.startswith(".")]
    summary = json.loads((out / "summary.json").read_text())
    assert summary["models_failed"] == 0 and summary["stopped"].startswith(str(out))
    assert len(json.loads((out / "index.json").read_text())["models"]) == len(records)
    rerun = _dataset(src, out, dataset_helpers.fake_job)
    assert rerun["models_done"] + rerun["skipped_already_done"] == 6
    assert sorted(_done_lines(out).values()) == [1] * 6


def test_a_full_disk_under_the_manifest_names_it(tmp_path, monkeypatch):
    def full(fd, data):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr("blendtruth.dataset.manifest._write_all", full)
    with pytest.raises(DiskFull, match=r"manifest\.jsonl: No space left on device"):
        Manifest(tmp_path / "manifest.jsonl").append({"id": "a"})


def test_summary_and_index_are_written_whatever_stops_the_run(tmp_path, monkeypatch):
    src = _models(tmp_path / "src", ["m0.obj", "m1.obj"])

    def broken(fd, data):
        raise OSError(errno.EIO, "Input/output error")

    monkeypatch.setattr("blendtruth.dataset.manifest._write_all", broken)
    with pytest.raises(OSError, match="Input/output error"):
        _dataset(src, tmp_path / "out", dataset_helpers.fake_job)
    summary = json.loads((tmp_path / "out" / "summary.json").read_text())
    assert summary["stopped"] == "OSError: [Errno 5] Input/output error"
    assert json.loads((tmp_path / "out" / "index.json").read_text()) == {"models": []}
    assert not [p for p in (tmp_path / "out" / "models").iterdir() if p.name.startswith(".")]


# 6. Signals ------------------------------------------------------------------------


def _wait_for_records(out: Path, n: int, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        path = out / "manifest.jsonl"
        if path.exists() and path.read_text().count("\n") >= n:
            return
        time.sleep(0.05)
    raise AssertionError(f"fewer than {n} records after {timeout} s")


@pytest.mark.parametrize(("signum", "code"), [(signal.SIGTERM, 143), (signal.SIGINT, 130)])
def test_signal_stops_every_worker_at_once_and_leaves_a_resumable_folder(tmp_path, signum, code):
    names = [f"m{i}.obj" for i in range(3)] + ["zhang0.obj", "zhang1.obj"]  # sorted last
    src = _models(tmp_path / "src", names)
    out = tmp_path / "out"
    marker = uuid.uuid4().hex
    run = _fake_cli("hang_fake_job", str(src), "--out", str(out), "--no-progress",
                    "--workers", "2", marker=marker)  # fmt: skip
    _wait_for_records(out, 3)  # both workers now hang, forever
    time.sleep(0.5)
    assert len(_processes_with(marker)) >= 3  # the run and its two workers
    sent = time.monotonic()
    run.send_signal(signum)
    _, err = run.communicate(timeout=30)
    assert time.monotonic() - sent < 5, "workers were not stopped within a few seconds"
    assert run.returncode == code, err
    name = signal.Signals(signum).name
    assert f"blendtruth: {name}: stopping 2 workers now" in err
    assert "stopped: 3 models done in this run, 0 before, 0 failed" in err
    time.sleep(0.5)
    assert _processes_with(marker) == [], "a worker outlived the run"
    summary = json.loads((out / "summary.json").read_text())
    assert summary["stopped"] == name and summary["models_done"] == 3
    assert not [p for p in (out / "models").iterdir() if p.name.startswith(".")]
    for n in ("zhang0.obj", "zhang1.obj"):
        (src / n).rename(src / n.replace("hang", "easy"))
    rerun = _fake_cli("fake_job", str(src), "--out", str(out), "--no-progress")
    assert rerun.wait(60) == 0, rerun.stderr.read()
    assert json.loads((out / "summary.json").read_text())["skipped_already_done"] == 3


def test_workers_die_with_a_kill_9ed_parent(tmp_path):
    src = _models(tmp_path / "src", ["hang0.obj", "hang1.obj"])
    marker = uuid.uuid4().hex
    run = _fake_cli("hang_fake_job", str(src), "--out", str(tmp_path / "o"), "--no-progress",
                    "--workers", "2", marker=marker)  # fmt: skip
    deadline = time.monotonic() + 60
    while len(list((tmp_path / "o" / "logs").glob("worker-*.log"))) < 2:  # both started
        assert time.monotonic() < deadline
        time.sleep(0.1)
    assert len(_processes_with(marker)) >= 3
    run.kill()  # the main process only, as the OOM killer would
    run.wait()
    deadline = time.monotonic() + 5
    while _processes_with(marker) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert _processes_with(marker) == []


# 7. Failure lines ------------------------------------------------------------------


def test_timeouts_and_crashes_name_the_model_and_timeouts_are_not_retried(tmp_path):
    src = _models(tmp_path / "src", ["ok.obj", "hang.obj", "crash.obj", "abort.obj"])
    out = tmp_path / "out"
    args = ["--no-progress", "--workers", "2", "--timeout", "60", "--retries", "1"]
    run = _fake_cli("crash_always", str(src), "--out", str(out), *args)
    _, err = run.communicate(timeout=120)
    assert run.returncode == 1
    crash = f"blendtruth: failed: {src / 'crash.obj'}: worker crashed (killed by SIGKILL); "
    assert [line for line in err.splitlines() if line.startswith(crash)], err
    assert f"its output is in {out / 'logs' / 'worker-'}" in err
    # An abort in native code: the failure line says where Python was (faulthandler's stack).
    abort = f"blendtruth: failed: {src / 'abort.obj'}: worker crashed (killed by SIGABRT) "
    assert any(line.startswith(abort + "while in run_for_outcome (blendtruth/dataset/outcome.py:")
               for line in err.splitlines()), err  # fmt: skip
    records = read_records(out)
    assert records[model_id(src / "crash.obj")]["attempts"] == 2  # a crash is retried
    run = _fake_cli("hang_fake_job", str(src), "--out", str(tmp_path / "o2"), "--no-progress",
                    "--workers", "2", "--timeout", "1", "--retries", "1")  # fmt: skip
    _, err = run.communicate(timeout=120)
    assert f"blendtruth: failed: {src / 'hang.obj'}: timed out after 1 s" in err.splitlines()
    assert read_records(tmp_path / "o2")[model_id(src / "hang.obj")]["attempts"] == 1


def test_runtime_warnings_in_workers_do_not_reach_stderr(tmp_path):
    src = _models(tmp_path / "src", ["m0.obj", "m1.obj"])
    run = _fake_cli("warn_numerically", str(src), "--out", str(tmp_path / "o"), "--no-progress")
    out, err = run.communicate(timeout=60)
    assert run.returncode == 0 and err == "", err
    assert "RuntimeWarning" in "".join(p.read_text() for p in (tmp_path / "o" / "logs").iterdir())
