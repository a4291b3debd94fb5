"""One model's outcome as the executors report it, whatever went wrong in the worker.

``{"ok": True, **result}`` or ``{"ok": False, "reason": str, "retryable": bool}``, plus
``"disk_full": True`` when the disk filled up (the run stops; the model is not failed).
A refused allocation under the memory limit, a bad input file and a full disk are not
retried: the same file fails the same way again.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from blendtruth.dataset.disk import DiskFull, disk_full, is_disk_full
from blendtruth.errors import BlendtruthError
from blendtruth.runtime import limits


def run_for_outcome(run: Callable, job: Any, max_memory: int | None) -> dict[str, Any]:
    try:
        return {"ok": True, **run(job)}
    except DiskFull as exc:
        return {"ok": False, "reason": str(exc), "retryable": False, "disk_full": True}
    except Exception as exc:  # noqa: BLE001 - reported per model, the run goes on
        if is_disk_full(exc):
            full = disk_full(exc, job.out)
            return {"ok": False, "reason": str(full), "retryable": False, "disk_full": True}
        if max_memory is not None and limits.is_memory_failure(exc):
            return {"ok": False, "reason": limits.memory_reason(max_memory), "retryable": False}
        if isinstance(exc, BlendtruthError):
            return {"ok": False, "reason": str(exc), "retryable": False}
        return {"ok": False, "reason": f"{type(exc).__name__}: {exc}", "retryable": True}
