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
