"""SIGINT and SIGTERM as one exception, announced at once.

Schedulers stop jobs with SIGTERM; Python's default for it is to die on the spot, leaving
worker processes running. :func:`stop_on_signals` turns both signals into
:class:`Stopped` (a KeyboardInterrupt, so ``finally`` blocks that kill workers run) and
prints one line the moment the signal arrives, before any worker is stopped.
"""

from __future__ import annotations

import contextlib
import os
import signal
from collections.abc import Iterator


class Stopped(KeyboardInterrupt):
    """The run was stopped by ``signum``; the CLI exits with 128 + signum."""

    def __init__(self, signum: int) -> None:
        super().__init__(signal.Signals(signum).name)
        self.signum = signum

    @property
    def exit_code(self) -> int:
        return 128 + self.signum


@contextlib.contextmanager
def stop_on_signals(what: str = "stopping") -> Iterator[None]:
    """Within the block, SIGINT/SIGTERM print ``blendtruth: <SIG>: <what>`` and raise
    Stopped. Handlers are restored afterwards. A second signal while stopping is ignored
    (the first one's cleanup must finish: it kills the workers)."""
    stopping = False

    def handler(signum: int, frame) -> None:
        nonlocal stopping
        if stopping:
            return
        stopping = True
        name = signal.Signals(signum).name
        os.write(2, f"blendtruth: {name}: {what}\n".encode())
        raise Stopped(signum)

    saved = {s: signal.getsignal(s) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        for s in saved:
            signal.signal(s, handler)
    except ValueError:  # not the main thread: leave signals alone
        yield
        return
    try:
        yield
    finally:
        for s, h in saved.items():
            signal.signal(s, h)
