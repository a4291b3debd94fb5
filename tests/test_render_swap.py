"""`blendtruth render` into a folder that holds an earlier render: the new render replaces
the old one's files only when it is complete, and never mixes the two."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

pytest.importorskip("bpy")
pytestmark = pytest.mark.render


def _render(out, *args, timeout=300):
    cmd = [sys.executable, "-m", "blendtruth.cli", "render", "cube", "--out", str(out),
           "--no-rgb", *args]  # fmt: skip
    return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)


def test_a_second_render_replaces_the_first_and_an_interrupted_one_keeps_it(tmp_path):
    out = tmp_path / "out"
    (tmp_path / "out").mkdir()
    (out / "notes.txt").write_text("mine")  # not ours: never touched
    first = _render(out, "--views", "5", "--width", "32", "--height", "32")
    assert first.returncode == 0, first.stderr
    assert "rendered 5 views" in first.stdout
    old = {p.name: np.load(p)["depth"] for p in sorted((out / "views").glob("*.npz"))}

    # Killed by its time limit halfway: the earlier render stays whole and unmixed.
    cut = _render(out, "--views", "300", "--width", "512", "--height", "512", "--timeout", "3")
    assert cut.returncode == 2 and "timed out after 3 s" in cut.stderr, cut.stderr
    now = {p.name: np.load(p)["depth"] for p in sorted((out / "views").glob("*.npz"))}
    assert now.keys() == old.keys()
    for name in old:
        np.testing.assert_array_equal(now[name], old[name])

    second = _render(out, "--views", "2", "--width", "24", "--height", "24")
    assert second.returncode == 0, second.stderr
    assert "replacing the earlier render" in second.stderr
    assert "rendered 2 views" in second.stdout
    assert sorted(p.name for p in (out / "views").iterdir()) == ["0000.npz", "0001.npz"]
    assert sorted(p.name for p in (out / "depth").iterdir()) == ["0000.npy", "0001.npy"]
    assert np.load(out / "views" / "0000.npz")["depth"].shape == (24, 24)
    assert (out / "notes.txt").read_text() == "mine"
    assert not list(out.glob(".render-tmp-*"))  # the killed run's staging is gone too
    (listed,) = [line for line in second.stdout.splitlines() if line.startswith("wrote ")]
    assert f"into {out}: " in listed and "views/ (2)" in listed
