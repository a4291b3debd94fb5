"""Bounded cost for untrusted models: a memory limit and a time limit per import+render.

Memory is capped with ``RLIMIT_DATA`` (soft limit) set in the process that imports and
renders: Linux counts private writable mappings (heap, anonymous ``mmap``, numpy arrays)
against it, so an allocation past the limit fails inside that process (``MemoryError`` in
Python importers, a refused ``malloc`` in Blender's C code) instead of growing until the
kernel's OOM killer fires. ``RLIMIT_AS`` would not do: Blender reserves about 1.6 GB of
address space before it renders anything (measured: bpy 4.5 segfaults on start under
``RLIMIT_AS`` = 1 GiB, while it starts and renders under ``RLIMIT_DATA`` = 0.5 GiB).
Parents also poll the resident set (``VmRSS``) of the process and kill it past the limit,
for memory the data limit does not see.
"""

from __future__ import annotations

import math
import os
import re
import resource

from blendtruth.errors import BlendtruthError

GIB = 2**30
_UNITS = {"": GIB, "K": 2**10, "M": 2**20, "G": GIB, "T": 2**40}
# Of the machine's (or cgroup's) memory, what all workers together may use.
MEMORY_SHARE = 0.8
MIN_DEFAULT_MEMORY = GIB


def check_seconds(value: float | None, option: str = "--timeout") -> float | None:
    """``value`` if it is a finite number of seconds > 0 (or None); else BlendtruthError."""
    if value is None:
        return None
    if not math.isfinite(value) or value <= 0:
        raise BlendtruthError(f"{option} must be a finite number of seconds > 0, got {value:g}")
    return float(value)


def parse_memory(text: str | None, option: str = "--max-memory") -> int | None:
    """'4G', '4GiB', '512M', '1.5' (GiB without a unit) -> bytes; 'none' -> None (no
    limit). Units are powers of 1024."""
    if text is None:
        return None
    if text.strip().lower() in ("none", "off", "unlimited"):
        return None
    match = re.fullmatch(r"\s*([0-9]*\.?[0-9]+(?:e[0-9]+)?)\s*([kmgt]?)(?:i?b)?\s*", text, re.I)
    if match:
        value = float(match[1]) * _UNITS[match[2].upper()]
        if math.isfinite(value) and value >= 64 * 2**20:
            return int(value)
    raise BlendtruthError(
        f"{option} must be a size of at least 64M such as 4G, 512M or 'none', got {text!r}"
    )


def machine_memory() -> int:
    """Bytes of memory this process may use: physical RAM, or the cgroup's limit if lower."""
    total = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    for path in ("/sys/fs/cgroup/memory.max", "/sys/fs/cgroup/memory/memory.limit_in_bytes"):
        try:
            with open(path) as f:
                text = f.read().strip()
        except OSError:
            continue
        if text.isdigit():
            total = min(total, int(text))
    return total


def default_max_memory(workers: int) -> int:
    """80 % of the machine's memory split evenly between ``workers``, at least 1 GiB."""
    return max(MIN_DEFAULT_MEMORY, int(machine_memory() * MEMORY_SHARE / max(1, workers)))


def format_memory(limit: int) -> str:
    return f"{limit / GIB:.1f} GiB"


def memory_reason(limit: int) -> str:
    return f"exceeded memory limit {format_memory(limit)}"


def apply_memory_limit(limit: int | None) -> None:
    """Cap this process's data segment at ``limit`` bytes (soft limit; None: leave it)."""
    if limit is None:
        return
    _, hard = resource.getrlimit(resource.RLIMIT_DATA)
    if hard != resource.RLIM_INFINITY:
        limit = min(limit, hard)
    resource.setrlimit(resource.RLIMIT_DATA, (limit, hard))


def resident_bytes(pid: int) -> int:
    """The resident set of process ``pid`` in bytes (0 when it is gone)."""
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    return 0


def is_memory_failure(exc: BaseException) -> bool:
    """True for an error that a refused allocation caused: directly, or anywhere in its
    chain (an importer's MemoryError reaches us as Blender's RuntimeError, which we turn
    into a BlendtruthError naming the file)."""
    seen: set[int] = set()
    while exc is not None and id(exc) not in seen:
        seen.add(id(exc))
        if isinstance(exc, MemoryError):
            return True
        text = str(exc)
        if any(s in text for s in ("MemoryError", "bad_alloc", "Unable to allocate")):
            return True
        exc = exc.__cause__ or exc.__context__
    return False
