"""What a command prints when it is done: the files it wrote and a run's summary."""

from __future__ import annotations

from pathlib import Path

import rich_click as click


def written_summary(out: Path, paths: list[Path]) -> str:
    """One line for the files a command wrote: their count and where, grouped by the first
    part of their path under ``out`` (``views/ (12)``), instead of a line per file."""
    groups: dict[str, int] = {}
    for path in paths:
        try:
            parts = Path(path).relative_to(out).parts
        except ValueError:
            parts = (str(path),)
        key = parts[0] + ("/" if len(parts) > 1 else "")
        groups[key] = groups.get(key, 0) + 1
    listed = ", ".join(f"{k} ({n})" if k.endswith("/") else k for k, n in groups.items())
    return f"wrote {len(paths)} files into {out}: {listed}"


def report_summary(summary: dict) -> bool:
    """Print a dataset run's summary line and its failures; True if anything failed."""
    kind = summary.get("kind", "models")
    click.echo(
        f"{summary['models_done']} {kind} done, {summary['models_failed']} failed, "
        f"{summary['skipped_already_done']} already done; {summary['views']} views in "
        f"{summary['seconds']:.1f} s"
    )
    for failure in summary["failures"]:
        click.echo(f"blendtruth: failed: {failure['reason']}", err=True)
    return bool(summary["models_failed"])
