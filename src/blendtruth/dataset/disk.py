"""A full disk (or quota) stops a dataset run: it is no fault of the model being rendered."""

from __future__ import annotations

import errno
from pathlib import Path

from blendtruth.errors import BlendtruthError

_FULL = (errno.ENOSPC, errno.EDQUOT)


class DiskFull(BlendtruthError):
    """Writing ``path`` failed for lack of space; the run stops, the model is not failed."""


def is_disk_full(exc: BaseException) -> bool:
    return isinstance(exc, OSError) and exc.errno in _FULL


def disk_full(exc: OSError, where: Path) -> DiskFull:
    """DiskFull naming the file that could not be written (or ``where`` when the OS error
    does not say, as for a failed ``write()``)."""
    path = exc.filename or where
    return DiskFull(f"{path}: {exc.strerror or 'no space left on device'}")
