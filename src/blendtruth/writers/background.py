"""Write views on a background thread while the next one is rendered.

File writing (npz, PNG encoding, fsync) and point fusion release the GIL for most of their
time, so they overlap the next view's ray cast or render. The queue is short, so memory
stays bounded at a few views; the first error a job raises is re-raised to the caller.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable
from typing import Any

_STOP = object()


class BackgroundWriter:
    """Run submitted jobs in order on one thread; ``close`` waits for all of them."""

    def __init__(self, depth: int = 2) -> None:
        self._queue: queue.Queue = queue.Queue(maxsize=depth)
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name="blendtruth-writer", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while True:
            job = self._queue.get()
            if job is _STOP:
                return
            if self._error is None:
                try:
                    job()
                except BaseException as exc:  # re-raised in the caller's thread
                    self._error = exc

    def submit(self, job: Callable[[], Any]) -> None:
        """Queue ``job`` (blocks while the queue is full); raises an earlier job's error."""
        self._raise()
        self._queue.put(job)

    def close(self) -> None:
        """Wait for every queued job; raise the first error any of them raised."""
        if self._thread.is_alive():
            self._queue.put(_STOP)
            self._thread.join()
        self._raise()

    def _raise(self) -> None:
        if self._error is not None:
            error, self._error = self._error, None
            raise error

    def __enter__(self) -> BackgroundWriter:
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is None:
            self.close()
            return
        # The caller failed or was interrupted: finish what is queued (each write is
        # atomic), but report the caller's exception, not a writer error.
        if self._thread.is_alive():
            self._queue.put(_STOP)
            self._thread.join()
