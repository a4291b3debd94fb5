"""Models over a Ray cluster (``pip install blendtruth[ray]``): same jobs, same outcomes.

Ray reuses its worker processes, so each imports Blender once. With GPUs in the cluster,
each model reserves one GPU (Ray sets CUDA_VISIBLE_DEVICES for the task).
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Iterable
from typing import Any

from blendtruth.dataset.job import ModelJob, run_job
from blendtruth.dataset.local import ResultCallback
from blendtruth.errors import BlendtruthError


def _remote_job(job: ModelJob) -> dict[str, Any]:
    from blendtruth.errors import BlendtruthError as _Error

    try:
        return {"ok": True, **run_job(job)}
    except _Error as exc:
        return {"ok": False, "reason": str(exc), "retryable": False}


class RayExecutor:
    """Submits one Ray task per model; at most as many in flight as the cluster can run,
    so a task's wall time from submission is its run time (for the timeout)."""

    def __init__(
        self, address: str | None = None, timeout: float | None = None, cpus_per_model: float = 1.0
    ) -> None:
        try:
            import ray
        except ImportError:
            raise BlendtruthError(
                "--executor ray needs Ray: pip install 'blendtruth[ray]'"
            ) from None
        self.ray = ray
        self.timeout = timeout
        if not ray.is_initialized():
            ray.init(
                address=address,
                include_dashboard=False,
                log_to_driver=False,
                configure_logging=False,
            )
        resources = ray.cluster_resources()
        self.gpus = int(resources.get("GPU", 0))
        cpus = int(resources.get("CPU", 1))
        if self.gpus:
            self.slots = self.gpus
            self.remote = ray.remote(num_gpus=1, num_cpus=0.5, max_retries=0)(_remote_job)
        else:
            self.slots = max(1, int(cpus // cpus_per_model))
            self.remote = ray.remote(num_cpus=cpus_per_model, max_retries=0)(_remote_job)

    def run(self, jobs: Iterable[tuple[ModelJob, int]], on_result: ResultCallback) -> None:
        ray = self.ray
        queue = deque(jobs)
        running: dict[Any, tuple[ModelJob, int, float]] = {}
        while queue or running:
            while queue and len(running) < self.slots:
                job, attempt = queue.popleft()
                running[self.remote.remote(job)] = (job, attempt, time.monotonic())
            wait_s = None
            if self.timeout:
                oldest = min(start for _, _, start in running.values())
                wait_s = max(0.0, oldest + self.timeout - time.monotonic()) + 0.05
            done, _ = ray.wait(list(running), num_returns=1, timeout=wait_s)
            for ref in list(running):
                job, attempt, start = running[ref]
                if ref in done:
                    try:
                        outcome = ray.get(ref)
                    except Exception as exc:  # noqa: BLE001 - a crashed task fails its model
                        outcome = {
                            "ok": False,
                            "retryable": True,
                            "reason": f"Ray task failed: {type(exc).__name__}: {exc}",
                        }
                elif self.timeout and time.monotonic() - start > self.timeout:
                    ray.cancel(ref, force=True)
                    outcome = {
                        "ok": False,
                        "retryable": True,
                        "reason": f"timed out after {self.timeout:g} s",
                    }
                else:
                    continue
                del running[ref]
                queue.extend(on_result(job, {**outcome, "attempt": attempt}) or [])
