"""One run per output folder and shard: an exclusive ``flock`` on a lock file in ``--out``.

The kernel drops a ``flock`` when its holder dies (also after ``kill -9``), so the lock of
a dead run is taken over without any staleness guess; the pid written into the file only
serves the message. Shards lock separately (``.lock`` / ``.lock.shard-i-of-N``) because
they may run into the same folder at the same time. On network file systems ``flock``
is as good as their lock support (NFSv4: yes).
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import os
import warnings
from pathlib import Path

from blendtruth.errors import BlendtruthError, BlendtruthWarning

_UNSUPPORTED = (errno.ENOLCK, errno.EOPNOTSUPP, errno.ENOSYS)


class OutLock:
    """``with OutLock(out, shard):`` holds the folder for this run, or raises
    BlendtruthError (one line naming the folder and the running process) at once."""

    def __init__(self, out: Path, shard: tuple[int, int] = (0, 1)) -> None:
        index, count = shard
        name = ".lock" if count == 1 else f".lock.shard-{index}-of-{count}"
        self.path = Path(out) / name
        self.shard = shard
        self._fd: int | None = None

    def __enter__(self) -> OutLock:
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(fd, 64, 0).decode("ascii", "replace").strip() or "unknown"
            os.close(fd)
            shard = "" if self.shard[1] == 1 else f" (shard {self.shard[0]}/{self.shard[1]})"
            raise BlendtruthError(
                f"--out {self.path.parent}: another blendtruth dataset run (pid {holder}) "
                f"is using this folder{shard}; wait for it to finish or use another --out"
            ) from None
        except OSError as exc:
            if exc.errno not in _UNSUPPORTED:
                os.close(fd)
                raise
            warnings.warn(
                f"--out {self.path.parent}: this file system does not support locks; "
                "nothing stops a second run on the same folder",
                BlendtruthWarning,
                stacklevel=2,
            )
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        self._fd = fd
        return self

    def __exit__(self, *exc) -> None:
        if self._fd is not None:
            with contextlib.suppress(OSError):
                os.ftruncate(self._fd, 0)
            os.close(self._fd)  # releases the lock
            self._fd = None
