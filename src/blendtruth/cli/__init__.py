"""The ``blendtruth`` command line (``main``: render and dataset; ``scene``; ``tools``:
export, show, check)."""

from blendtruth.cli.main import cli, main

__all__ = ["cli", "main"]
