"""Atomic file writes: a reader never sees a half-written file under the final name."""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO

from blendtruth.errors import BlendtruthError


def _current_umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


_UMASK = _current_umask()


@contextlib.contextmanager
def atomic_open(path: str | os.PathLike, durable: bool = True) -> Iterator[BinaryIO]:
    """Open a temporary file beside ``path`` for binary writing; on success fsync and
    rename it to ``path``, on any error remove it. The temporary name starts with '.'
    and ends in '.tmp', so globbing for outputs never matches it. ``durable`` = False
    skips the fsync (the rename stays atomic: an interrupted process never leaves a
    partial file under ``path``; a caller writing many files flushes them afterwards with
    :func:`sync_files`)."""
    path = Path(path)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        os.fchmod(fd, 0o666 & ~_UMASK)  # mkstemp's 0600 would hide outputs from other users
        with os.fdopen(fd, "wb") as f:
            yield f
            f.flush()
            if durable:
                os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def write_bytes(path: str | os.PathLike, data: bytes, durable: bool = True) -> None:
    """Write ``data`` to ``path`` atomically (see :func:`atomic_open` for ``durable``)."""
    with atomic_open(path, durable) as f:
        f.write(data)


def sync_files(paths, folders: bool = True) -> None:
    """Flush ``paths`` (written with ``durable=False``) and, with ``folders``, their
    folders to disk: one fsync each, after the fact, so that a render's many files cost
    no fsync on its hot path (a file-system-wide ``syncfs`` would also wait for other
    processes' writes). A render flushes each view's files on its writer thread, while
    the next view is cast, and the folders once at the end."""
    dirs = set()
    for path in paths:
        fd = os.open(path, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
        dirs.add(os.path.dirname(os.path.abspath(path)))
    if folders:
        sync_folders(dirs)


def sync_folders(folders) -> None:
    """fsync each folder (the renames into it are then on disk)."""
    for folder in sorted(set(folders)):
        fd = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def prepare_out_dir(out: Path, option: str = "--out") -> bool:
    """Check that ``out`` can be a writable folder before any work; create it. The one
    check every writing command makes first (``option`` names it in the error line).
    Returns True when it was created here (so a failed run can remove it again)."""
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise BlendtruthError(f"{option} {out}: exists and is not a folder")
    blocker = next((p for p in out.parents if p.exists() and not p.is_dir()), None)
    if blocker is not None:
        raise BlendtruthError(f"{option} {out}: {blocker} is a file, not a folder")
    created = not out.exists()
    try:
        out.mkdir(parents=True, exist_ok=True)
        probe = out / ".blendtruth-write-test"
        probe.write_bytes(b"")
        probe.unlink()
    except OSError as exc:
        raise BlendtruthError(f"{option} {out}: not writable ({exc.strerror or exc})") from None
    return created


def remove_if_empty(out: Path) -> None:
    with contextlib.suppress(OSError):
        os.rmdir(out)
