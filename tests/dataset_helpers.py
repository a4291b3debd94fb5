"""Job runners that misbehave on purpose, importable by spawned worker processes."""

from __future__ import annotations

import os
import signal
import time

from blendtruth.dataset.job import run_job


def crash_on_cow_first_time(job):
    """Kill the worker (as a segfaulting Blender would) the first time it sees cow.obj."""
    marker = job.out / f".crashed-{job.mid}"
    if "cow" in job.mid and not marker.exists():
        marker.write_text("")
        os.kill(os.getpid(), signal.SIGKILL)
    return run_job(job)


def hang_on_cow(job):
    """Never return for cow.obj (as a stuck import would)."""
    if "cow" in job.mid:
        time.sleep(3600)
    return run_job(job)


def report_gpu(job):
    """Return which GPU the worker was given, instead of rendering."""
    return {"views": 0, "files": [], "seconds": 0.0, "warnings": [],
            "gpu": os.environ.get("CUDA_VISIBLE_DEVICES")}  # fmt: skip


def _fake_result(job, seconds: float = 0.0):
    """Write a small model folder the way run_job does (temp folder renamed into place)."""
    import shutil

    tmp = job.tmp_dir(str(os.getpid()))
    shutil.rmtree(tmp, ignore_errors=True)
    (tmp / "views").mkdir(parents=True)
    (tmp / "views" / "0000.npz").write_bytes(b"x" * 1000)
    time.sleep(seconds)
    if job.final_dir.exists():
        shutil.rmtree(job.final_dir)
    os.rename(tmp, job.final_dir)
    return {"views": 1, "files": ["views/0000.npz"], "seconds": seconds, "warnings": []}


def fake_job(job):
    """No Blender: a one-view model folder."""
    return _fake_result(job)


def slow_fake_job(job):
    """No Blender, 1 s per model (time for a signal to land mid-run)."""
    return _fake_result(job, 1.0)


def hang_fake_job(job):
    """No Blender; hangs forever on models whose name contains 'hang'."""
    if "hang" in job.mid:
        time.sleep(3600)
    return _fake_result(job)


def allocate_until_stopped(job):
    """A memory bomb: private allocations (counted by RLIMIT_DATA) until refused; gives up
    at 4 GiB so that a broken limit fails the test instead of taking the machine."""
    blocks = []
    for _ in range(64):
        blocks.append(bytearray(64 * 2**20))  # zero-filled: every page is touched
    return {"views": 0, "files": [], "seconds": 0.0, "warnings": [], "allocated": len(blocks)}


def allocate_shared_until_stopped(job):
    """A memory bomb the data limit does not see (shared anonymous pages): only the parent's
    resident-set watchdog can stop it. Gives up at 4 GiB."""
    import mmap

    maps = []
    for _ in range(64):
        m = mmap.mmap(-1, 64 * 2**20, flags=mmap.MAP_SHARED)
        m.write(b"\1" * (64 * 2**20))
        maps.append(m)
        time.sleep(0.01)
    return {"views": 0, "files": [], "seconds": 0.0, "warnings": [], "allocated": len(maps)}


def disk_full_on_third(job):
    """Writes normally, except that the third model's write (by name) fails with ENOSPC."""
    import errno

    if "m2" in job.mid:
        tmp = job.tmp_dir(str(os.getpid()))
        (tmp / "views").mkdir(parents=True, exist_ok=True)
        raise OSError(errno.ENOSPC, "No space left on device", str(tmp / "views" / "0000.npz"))
    return _fake_result(job)


def warn_numerically(job):
    """A model whose rendering raises numpy RuntimeWarnings (and prints to stderr)."""
    import numpy as np

    with np.errstate(all="warn"):
        np.array([1.0]) / np.array([0.0])
    import warnings

    warnings.warn("overflow somewhere", RuntimeWarning, stacklevel=1)
    return _fake_result(job)


def crash_always(job):
    """A worker that dies (as a segfaulting Blender would) on every model named 'crash'."""
    if "crash" in job.mid:
        os.kill(os.getpid(), signal.SIGKILL)
    if "abort" in job.mid:  # as C++ code calling std::terminate does
        os.abort()
    return _fake_result(job)


def sleep_forever(*args):
    """A child-process target that never returns (a hung import)."""
    time.sleep(3600)


def allocate_in_child(*args):
    """A child-process target that allocates until refused (at most 4 GiB)."""
    return allocate_until_stopped(None)["allocated"]


def answer_with_warning(x):
    """A child-process target that warns and returns."""
    import warnings

    from blendtruth.errors import BlendtruthWarning

    warnings.warn("a texture is missing", BlendtruthWarning, stacklevel=1)
    return x * 2


def cli_with_fake_jobs(run_name: str, argv: list[str]) -> int:
    """`blendtruth dataset ...` whose local workers run ``dataset_helpers.<run_name>``."""
    import blendtruth.dataset.runner as runner
    from blendtruth.cli import main

    original = runner._executor
    import dataset_helpers

    fake = getattr(dataset_helpers, run_name)

    def executor(options, settings, log_dir):
        import dataclasses

        return original(dataclasses.replace(options, run=fake), settings, log_dir)

    runner._executor = executor
    return main(argv)


if __name__ == "__main__":
    import sys

    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    sys.exit(cli_with_fake_jobs(sys.argv[1], sys.argv[2:]))
