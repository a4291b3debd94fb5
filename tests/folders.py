"""Comparing two output folders (helpers for tests)."""

from __future__ import annotations

from pathlib import Path

import numpy as np


def assert_same_outputs(a: Path, b: Path) -> None:
    """Every file of two output folders equal: .npz by their arrays (the zip container
    stamps the write time), everything else byte for byte."""
    names = sorted(p.relative_to(a) for p in a.rglob("*") if p.is_file())
    assert names and names == sorted(p.relative_to(b) for p in b.rglob("*") if p.is_file())
    for name in names:
        if name.suffix == ".npz":
            with np.load(a / name) as x, np.load(b / name) as y:
                assert x.files == y.files
                assert all(np.array_equal(x[k], y[k]) for k in x.files), name
        else:
            assert (a / name).read_bytes() == (b / name).read_bytes(), name
