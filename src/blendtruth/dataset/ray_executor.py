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


def _remote_job(job: ModelJob, max_memory: int | None, cpus_per_model: float) -> dict[str, Any]:
    """In a Ray worker: apply the memory limit (default: this node's share per task, as
    for local workers), then render."""
    import os

    from blendtruth.dataset.outcome import run_for_outcome
    from blendtruth.runtime import limits

    if max_memory is None:
        max_memory = limits.default_max_memory(int((os.cpu_count() or 1) // cpus_per_model))
    limits.apply_memory_limit(max_memory)
    return run_for_outcome(run_job, job, max_memory)


class RayExecutor:
    """Submits one Ray task per model; at most as many in flight as the cluster can run,
    so a task's wall time from submission is its run time (for the timeout)."""

    def __init__(
        self,
        address: str | None = None,
        timeout: float | None = None,
        cpus_per_model: float = 1.0,
        max_memory: int | None = None,
    ) -> None:
        try:
            import ray
        except ImportError:
            raise BlendtruthError(
                "--executor ray needs Ray: pip install 'blendtruth[ray]'"
            ) from None
        self.ray = ray
        self.timeout = timeout
        self.max_memory = max_memory
        self.cpus_per_model = cpus_per_model
        if not ray.is_initialized():
            ray.init(
                address=address,
                include_dashboard=False,
                log_to_driver=False,
                configure_logging=False,
            )
        self.gpus = int(ray.cluster_resources().get("GPU", 0))
        self._count_slots()
        if self.gpus:
            self.remote = ray.remote(num_gpus=1, num_cpus=0.5, max_retries=0)(_remote_job)
        else:
            self.remote = ray.remote(num_cpus=cpus_per_model, max_retries=0)(_remote_job)

    def _count_slots(self) -> None:
        """Tasks the live nodes can run at once (counted again after a task fails: a node
        may have gone, and a task queued behind others would run into its timeout)."""
        resources = self.ray.cluster_resources()
        if self.gpus:
            self.slots = max(1, int(resources.get("GPU", 0)))
        else:
            self.slots = max(1, int(resources.get("CPU", 1) // self.cpus_per_model))

    def run(self, jobs: Iterable[tuple[ModelJob, int]], on_result: ResultCallback) -> None:
        running: dict[Any, tuple[ModelJob, int, float]] = {}
        try:
            self._run(deque(jobs), running, on_result)
        except BaseException:
            for ref in running:  # interrupted: stop every task now
                self.ray.cancel(ref, force=True)
            raise

    def _run(self, queue: deque, running: dict, on_result: ResultCallback) -> None:
        ray = self.ray
        while queue or running:
            while queue and len(running) < self.slots:
                job, attempt = queue.popleft()
                ref = self.remote.remote(job, self.max_memory, self.cpus_per_model)
                running[ref] = (job, attempt, time.monotonic())
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
                            "reason": f"Ray task failed: {type(exc).__name__}: "
                            + (str(exc).strip().splitlines() or [""])[0],
                        }
                        self._count_slots()
                elif self.timeout and time.monotonic() - start > self.timeout:
                    ray.cancel(ref, force=True)
                    outcome = {
                        "ok": False,
                        "retryable": False,
                        "reason": f"timed out after {self.timeout:g} s",
                    }
                else:
                    continue
                del running[ref]
                queue.extend(on_result(job, {**outcome, "attempt": attempt}) or [])
