"""The pass table and the ``--passes`` option, without bpy: the docs hold the table the code
declares, and bad options stop with one line before Blender is imported."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from blendtruth.passes import markdown_table


def test_conventions_page_holds_the_pass_table():
    page = (Path(__file__).resolve().parents[1] / "docs" / "conventions.md").read_text()
    assert markdown_table() in page


def test_passes_option_and_semantic_map_errors_are_one_line(tmp_path):
    def run(*args):
        return subprocess.run([sys.executable, "-m", "blendtruth.cli", "render", *args],
                              capture_output=True, text=True, timeout=120)  # fmt: skip

    bad = run("cube", "--passes", "depth,flow", "--out", str(tmp_path / "a"))
    assert bad.returncode == 2 and "unknown pass 'flow'" in bad.stderr
    assert len(bad.stderr.strip().splitlines()) == 1
    (tmp_path / "map.json").write_text('{"*.obj": 0}')
    bad = run("cube", "--semantic-map", str(tmp_path / "map.json"), "--out", str(tmp_path / "b"))
    assert bad.returncode == 2 and "semantic-map" in bad.stderr and "class id >= 1" in bad.stderr
    bad = run("cube", "--alpha-threshold", "nan", "--out", str(tmp_path / "c"))
    assert bad.returncode == 2 and "--alpha-threshold" in bad.stderr
    assert not (tmp_path / "a").exists() and not (tmp_path / "b").exists()
