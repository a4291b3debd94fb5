"""Run one untrusted import+render in a child process under a memory and a time limit.

The child starts with ``spawn`` (no state shared with the parent), in its own process
group (so killing the group also ends anything Blender started), dies with its parent
(``PR_SET_PDEATHSIG``), and runs under :func:`blendtruth.runtime.limits.apply_memory_limit`. The
parent only waits: it kills the group when the time runs out, the resident set passes the
limit, or the parent itself is interrupted (Ctrl-C, SIGTERM), so a stop is immediate even
while Blender is busy in C code. Results, warnings and exceptions come back by pipe.
"""

from __future__ import annotations

import contextlib
import ctypes
import importlib
import multiprocessing as mp
import os
import signal
import sys
import tempfile
import time
import traceback
import warnings
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

from blendtruth.errors import BlendtruthError
from blendtruth.runtime import limits
from blendtruth.runtime.processes import describe_exit

_POLL_S = 0.1
_PR_SET_PDEATHSIG = 1


def become_worker(max_memory: int | None) -> None:
    """In a fresh child: own process group, die with the parent, memory limit applied."""
    with contextlib.suppress(OSError):
        os.setpgid(0, 0)
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)
    parent = mp.parent_process()
    if parent is not None and os.getppid() != parent.pid:  # it died before prctl above
        os._exit(1)
    limits.apply_memory_limit(max_memory)


def kill_group(process: Any) -> None:
    """SIGKILL ``process`` (an mp.Process) and its process group, then reap it."""
    pid = process.pid
    if pid is not None:
        # A live group keeps its id from being reused, so this cannot hit a stranger.
        with contextlib.suppress(OSError):
            os.killpg(pid, signal.SIGKILL)
        if process.exitcode is None:  # not yet reaped: the pid is still ours
            with contextlib.suppress(OSError):
                os.kill(pid, signal.SIGKILL)
    process.join(5)


def clean_sys_path() -> list[str]:
    """sys.path without Blender's script folders: a spawned child inheriting them would find
    Blender's pure-Python "bpy" package before the real module ("No module named '_bpy'")."""
    parts = [Path(p).parts for p in sys.path]
    return [
        p
        for p, ps in zip(sys.path, parts, strict=True)
        if not ("bpy" in ps and "scripts" in ps[ps.index("bpy") :])
    ]


def _child_main(
    conn: Connection, target: str, args: tuple, max_memory: int | None, label: str, log: str
) -> None:
    become_worker(max_memory)
    # Blender's own C-level messages (fds 1 and 2) go to a log, so the user sees one line,
    # not its noise; Python-level output (progress) keeps the terminal, and our warnings and
    # errors come back by pipe.
    sys.stdout.flush()
    sys.stderr.flush()
    kept = os.dup(1), os.dup(2)
    fd = os.open(log, os.O_WRONLY | os.O_APPEND)
    for target_fd in (1, 2):
        os.dup2(fd, target_fd)
    os.close(fd)
    sys.stdout = os.fdopen(kept[0], "w", buffering=1)
    sys.stderr = os.fdopen(kept[1], "w", buffering=1)
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent handles Ctrl-C
    module, name = target.rsplit(":", 1)
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            result = getattr(importlib.import_module(module), name)(*args)
        sent_warnings = [(w.category.__module__, w.category.__qualname__, str(w.message))
                         for w in caught]  # fmt: skip
        conn.send(("ok", result, sent_warnings))
    except BaseException as exc:  # noqa: BLE001 - everything goes back to the parent
        if limits.is_memory_failure(exc) and max_memory is not None:
            exc = BlendtruthError(f"{label}: {limits.memory_reason(max_memory)}")
        try:
            conn.send(("error", exc, traceback.format_exc()))
        except Exception:  # noqa: BLE001 - an exception that does not pickle
            conn.send(("error", RuntimeError(f"{type(exc).__name__}: {exc}"), ""))


def run_in_child(
    target: str,
    args: tuple,
    *,
    label: str,
    timeout: float | None,
    max_memory: int | None,
) -> Any:
    """Call ``module:function`` with ``args`` in a child and return its result. Warnings the
    child raised are re-issued here; its exceptions are raised here. Past ``timeout``
    seconds or ``max_memory`` resident bytes the child is killed and BlendtruthError names
    ``label`` (the model) and the limit."""
    ctx = mp.get_context("spawn")
    parent, child = ctx.Pipe(duplex=False)
    log_fd, log = tempfile.mkstemp(prefix="blendtruth-render-", suffix=".log")
    os.close(log_fd)
    process = ctx.Process(target=_child_main, args=(child, target, args, max_memory, label, log))
    saved = sys.path[:]
    sys.path[:] = clean_sys_path()
    try:
        process.start()
    finally:
        sys.path[:] = saved
    child.close()
    start = time.monotonic()
    try:
        while not parent.poll(_POLL_S):
            if not process.is_alive() and not parent.poll(0):
                raise _crashed(label, process.exitcode, log, max_memory)
            if timeout is not None and time.monotonic() - start > timeout:
                raise BlendtruthError(f"{label}: timed out after {timeout:g} s")
            if max_memory is not None and limits.resident_bytes(process.pid) > max_memory:
                raise BlendtruthError(f"{label}: {limits.memory_reason(max_memory)}")
        try:
            kind, value, extra = parent.recv()
        except (EOFError, OSError):
            process.join(5)
            raise _crashed(label, process.exitcode, log, max_memory) from None
    except BlendtruthError as exc:
        if "Blender crashed" not in str(exc):
            Path(log).unlink(missing_ok=True)
        raise
    else:
        Path(log).unlink(missing_ok=True)
    finally:
        kill_group(process)
        parent.close()
    if kind == "error":
        if extra and not isinstance(value, BlendtruthError | OSError):
            value.add_note(f"in the render process:\n{extra}")  # a bug: keep its stack
        raise value
    for module, qualname, message in extra:
        warnings.warn(message, _category(module, qualname), stacklevel=2)
    return value


def _category(module: str, qualname: str) -> type[Warning]:
    try:
        category = getattr(importlib.import_module(module), qualname)
    except (ImportError, AttributeError):
        return UserWarning
    return category if isinstance(category, type) and issubclass(category, Warning) else UserWarning


# What Blender prints when an allocation is refused under the memory limit.
_OUT_OF_MEMORY = (b"std::bad_alloc", b"Malloc returns null", b"MemoryError", b"out of memory")


def _crashed(label: str, code: int | None, log: str, max_memory: int | None) -> BlendtruthError:
    """The one line for a child that died: a refused allocation under the limit says so;
    any other crash names the log that holds Blender's last words (kept for the user)."""
    try:
        with open(log, "rb") as f:
            f.seek(max(0, os.path.getsize(log) - 65536))
            tail = f.read()
    except OSError:
        tail = b""
    if max_memory is not None and any(sign in tail for sign in _OUT_OF_MEMORY):
        Path(log).unlink(missing_ok=True)
        return BlendtruthError(f"{label}: {limits.memory_reason(max_memory)}")
    if not tail.strip():
        Path(log).unlink(missing_ok=True)
        return BlendtruthError(f"{label}: Blender crashed ({describe_exit(code)})")
    return BlendtruthError(f"{label}: Blender crashed ({describe_exit(code)}; its log: {log})")
