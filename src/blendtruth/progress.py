"""A live views bar for `blendtruth render` (rich, on stderr; only on a terminal)."""

from __future__ import annotations

import contextlib
import sys
import time
from collections.abc import Callable, Iterator


@contextlib.contextmanager
def view_progress(total: int, enabled: bool) -> Iterator[Callable[[int, int], None] | None]:
    """Yield an ``on_view(done, total)`` callback drawing views done, views/s and the time
    left, or None when ``enabled`` is False or stderr is not a terminal."""
    if not enabled or total < 2 or not sys.stderr.isatty():
        yield None
        return
    from rich.console import Console
    from rich.progress import BarColumn, Progress, TextColumn, TimeRemainingColumn

    bar = Progress(TextColumn("views"), BarColumn(), TextColumn("{task.completed}/{task.total}"),
                   TextColumn("{task.fields[rate]}"), TimeRemainingColumn(),
                   console=Console(stderr=True), transient=True)  # fmt: skip
    start = time.perf_counter()
    with bar:
        task = bar.add_task("", total=total, rate="")

        def on_view(done: int, total: int) -> None:
            rate = done / max(time.perf_counter() - start, 1e-9)
            bar.update(task, completed=done, rate=f"{rate:.1f} views/s")

        yield on_view
