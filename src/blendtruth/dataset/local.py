"""Long-lived local worker processes: each imports Blender once and renders model after
model; a crash or a hang fails that model only (the worker is replaced)."""

from __future__ import annotations

import faulthandler
import multiprocessing as mp
import os
import re
import signal
import sys
import time
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from multiprocessing.connection import Connection, wait
from pathlib import Path
from typing import Any

from blendtruth.dataset.job import ModelJob
from blendtruth.runtime.child import kill_group
from blendtruth.runtime.limits import memory_reason, resident_bytes
from blendtruth.runtime.processes import describe_exit

_crash_log = None  # the worker's faulthandler file, kept open

# How often busy workers' memory is checked, and how long an idle worker gets to exit.
_MEMORY_POLL_S = 0.25
_STOP_GRACE_S = 3.0

# (job, outcome): outcome is {"ok": True, **result} or {"ok": False, "reason": str,
# "retryable": bool}.
ResultCallback = Callable[[ModelJob, dict[str, Any]], None]


def _worker_main(
    conn: Connection,
    log_path: str | None,
    run: Callable | None,
    max_memory: int | None = None,
    backend: Callable | None = None,
) -> None:
    """Worker loop: receive a job, send back its outcome; None means stop. ``run``
    replaces :func:`run_job` (tests use it to crash or hang a worker on purpose);
    ``backend`` makes the backend the worker renders with (default Blender's). The
    worker has its own process group, dies with the parent and runs under ``max_memory``."""
    from blendtruth.runtime.child import become_worker

    become_worker(max_memory)
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent handles Ctrl-C
    if log_path:
        # Blender and its importers print to fd 1/2; keep that out of the progress bar.
        fd = os.open(log_path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
        os.dup2(fd, 1)
        os.dup2(fd, 2)
        os.close(fd)
        # A crash in Blender's C code leaves the Python stack (which importer) in the log,
        # through its own descriptor: importers capture fd 1/2 while they run.
        global _crash_log
        _crash_log = open(log_path, "a")  # noqa: SIM115 - open for the worker's lifetime
        faulthandler.enable(file=_crash_log, all_threads=False)
    from blendtruth.dataset.job import run_job
    from blendtruth.dataset.outcome import run_for_outcome

    run = run or run_job
    if backend is not None:
        from blendtruth.api import use_backend

        use_backend(backend)

    while True:
        job = conn.recv()
        if job is None:
            break
        conn.send(run_for_outcome(run, job, max_memory))
    # Every job's files are written and synced; skip Blender's and Python's teardown
    # (~0.3-0.5 s a worker, paid at the end of every run).
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(0)


@dataclass
class _Worker:
    process: Any
    conn: Connection
    job: ModelJob | None = None
    started: float = 0.0
    attempt: int = 0
    done: int = 0
    log: str | None = None


class LocalExecutor:
    """``workers`` processes; a model taking longer than ``timeout`` seconds is killed;
    a worker is replaced after ``recycle_after`` models (a guard against slow leaks).
    With ``gpus`` (CUDA device ids), worker i sees only GPU ``gpus[i % len(gpus)]``."""

    def __init__(
        self,
        workers: int,
        timeout: float | None = None,
        recycle_after: int = 200,
        log_dir: Path | None = None,
        run: Callable | None = None,
        gpus: list[str] | None = None,
        max_memory: int | None = None,
        backend: Callable | None = None,
    ) -> None:
        self.workers = workers
        self.backend = backend
        self.max_memory = max_memory
        self.timeout = timeout
        self.recycle_after = recycle_after
        self.log_dir = log_dir
        self.run_fn = run
        self.gpus = gpus or []
        self._ctx = mp.get_context("spawn")
        self._count = 0

    def _start(self) -> _Worker:
        parent, child = self._ctx.Pipe()
        log = None
        if self.log_dir is not None:
            log = str(self.log_dir / f"worker-{self._count}.log")
        proc = self._ctx.Process(
            target=_worker_main,
            args=(child, log, self.run_fn, self.max_memory, self.backend),
            daemon=True,
        )
        saved = os.environ.get("CUDA_VISIBLE_DEVICES")
        saved_path = sys.path[:]
        if self.gpus:  # one GPU per worker: the spawned process inherits this environment
            os.environ["CUDA_VISIBLE_DEVICES"] = self.gpus[self._count % len(self.gpus)]
        # A spawned child starts with this process's sys.path. Once bpy is imported here,
        # that holds Blender's script folders, whose pure-Python "bpy" package would shadow
        # the real module in the child ("No module named '_bpy'").
        sys.path[:] = [p for p in sys.path if not _is_blender_script_path(p)]
        try:
            proc.start()
        finally:
            sys.path[:] = saved_path
            if saved is None:
                os.environ.pop("CUDA_VISIBLE_DEVICES", None)
            else:
                os.environ["CUDA_VISIBLE_DEVICES"] = saved
        self._count += 1
        child.close()
        return _Worker(proc, parent, log=log)

    def run(self, jobs: Iterable[tuple[ModelJob, int]], on_result: ResultCallback) -> None:
        """Run (job, attempt) pairs; ``on_result`` is called in this process per outcome
        and may return further (job, attempt) pairs to run (retries)."""
        queue = deque(jobs)
        if not queue:
            return
        pool = [self._start() for _ in range(min(self.workers, len(queue)))]
        try:
            while queue or any(w.job is not None for w in pool):
                for w in pool:
                    if w.job is None and queue:
                        w.job, w.attempt = queue.popleft()
                        w.started = time.monotonic()
                        w.conn.send(w.job)
                busy = [w for w in pool if w.job is not None]
                ready = wait([w.conn for w in busy], timeout=self._wait_time(busy))
                for i, w in enumerate(pool):
                    if w.job is None:
                        continue
                    if w.conn in ready:
                        try:
                            outcome = w.conn.recv()
                        except (EOFError, OSError):
                            code = w.process.join(5) or w.process.exitcode
                            log = f"{_crash_site(w.log)}; its output is in {w.log}" if w.log else ""
                            outcome = {
                                "ok": False,
                                "retryable": True,
                                "reason": f"worker crashed ({describe_exit(code)}){log}",
                            }
                            pool[i] = self._replace(w)
                    elif self.timeout and time.monotonic() - w.started > self.timeout:
                        # Not retried: the same file hangs the same way again.
                        outcome = {
                            "ok": False,
                            "retryable": False,
                            "reason": f"timed out after {self.timeout:g} s",
                        }
                        pool[i] = self._replace(w)
                    elif self._over_memory(w):
                        outcome = {
                            "ok": False,
                            "retryable": False,
                            "reason": memory_reason(self.max_memory),
                        }
                        pool[i] = self._replace(w)
                    else:
                        continue
                    job, attempt = w.job, w.attempt
                    w.job = None
                    w.done += 1
                    queue.extend(on_result(job, {**outcome, "attempt": attempt}) or [])
                    if pool[i] is w and w.done >= self.recycle_after:
                        pool[i] = self._replace(w)
        except BaseException:
            # Interrupted (Ctrl-C, SIGTERM, a full disk): stop every worker now, busy or not.
            for w in pool:
                kill_group(w.process)
                w.conn.close()
            raise
        else:
            self._stop(pool)

    def _over_memory(self, w: _Worker) -> bool:
        return self.max_memory is not None and resident_bytes(w.process.pid) > self.max_memory

    def _wait_time(self, busy: list[_Worker]) -> float | None:
        if not busy:
            return 0
        waits = []
        if self.timeout:
            left = min(w.started + self.timeout - time.monotonic() for w in busy)
            waits.append(max(0.0, left) + 0.05)
        if self.max_memory is not None:  # wake up often enough to catch growth past it
            waits.append(_MEMORY_POLL_S)
        return min(waits) if waits else None

    def _replace(self, w: _Worker) -> _Worker:
        self._stop([w], kill=w.job is not None)
        return self._start()

    @staticmethod
    def _stop(workers: list[_Worker], kill: bool = False) -> None:
        """Ask each live worker to exit (unless ``kill``), wait for them together up to
        the grace time, then kill whatever is left of each."""
        asked = [w for w in workers if w.process.is_alive() and not kill]
        for w in asked:
            try:
                w.conn.send(None)
            except (BrokenPipeError, OSError):
                pass
        deadline = time.monotonic() + _STOP_GRACE_S
        for w in workers:
            if w in asked:
                w.process.join(max(0.0, deadline - time.monotonic()))
            kill_group(w.process)  # whatever it left running, or a worker stuck at exit
            w.conn.close()


def _is_blender_script_path(path: str) -> bool:
    parts = Path(path).parts
    return "bpy" in parts and "scripts" in parts[parts.index("bpy") :]


def _crash_site(log: str) -> str:
    """' while in <function> (blendtruth/<file>:<line>)': the innermost blendtruth frame of
    the last Python stack faulthandler wrote to ``log`` (empty when there is none)."""
    try:
        with open(log, "rb") as f:
            f.seek(max(0, os.path.getsize(log) - 16384))
            tail = f.read().decode("utf-8", "replace")
    except OSError:
        return ""
    stack = tail.rpartition("Fatal Python error:")[2]
    for line in stack.splitlines():
        match = re.match(r'\s*File "(.*[/\\]blendtruth[/\\].*)", line (\d+) in (\S+)', line)
        if match and not match[3].startswith("<"):  # a named function, not a lambda
            where = match[1][match[1].rindex("blendtruth") :]
            return f" while in {match[3]} ({where}:{match[2]})"
    return ""
