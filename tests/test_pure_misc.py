"""Pure tests (no Blender) for settings, colour encoding, atomic writes, model checks,
scene specs, the tutorial's nmap encoding and the point fusion."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

from blendtruth.color import linear_to_srgb8
from blendtruth.errors import BlendtruthError
from blendtruth.models import check_model_file, default_up
from blendtruth.scene import SceneSpec
from blendtruth.settings import RenderSettings
from blendtruth.writers.atomic import atomic_open, write_bytes


@pytest.mark.parametrize(
    ("kwargs", "needle"),
    [
        ({"width": 0}, "--width"),
        ({"height": -1}, "--height"),
        ({"samples": 0}, "--samples"),
        ({"width": 1.5}, "--width"),
        ({"width": True}, "--width"),
        ({"engine": "luxcore"}, "--engine"),
        ({"device": "tpu"}, "--device"),
        ({"seed": -1}, "--seed"),
        ({"width": 20000}, "--width"),
    ],
)
def test_settings_reject_bad_values(kwargs, needle):
    with pytest.raises(BlendtruthError, match=needle):
        RenderSettings(**kwargs)


def test_srgb_encoding_matches_the_standard_curve():
    # Reference points of IEC 61966-2-1: 0 -> 0, 1 -> 255, 0.0031308 is the knee,
    # 18% grey -> 118, 0.5 -> 188; values beyond [0, 1] clip.
    lin = np.array([0.0, 0.0031308, 0.18, 0.5, 1.0, 2.0, -1.0])
    assert linear_to_srgb8(lin).tolist() == [0, 10, 118, 188, 255, 255, 0]


def test_atomic_write_leaves_nothing_on_error(tmp_path):
    target = tmp_path / "a.bin"
    with pytest.raises(RuntimeError), atomic_open(target) as f:
        f.write(b"half")
        raise RuntimeError("interrupted")
    assert list(tmp_path.iterdir()) == []
    write_bytes(target, b"whole")
    assert target.read_bytes() == b"whole"
    assert [p.name for p in tmp_path.iterdir()] == ["a.bin"]


def test_atomic_write_replaces_old_file_whole(tmp_path):
    target = tmp_path / "a.bin"
    target.write_bytes(b"old contents")
    with pytest.raises(KeyboardInterrupt), atomic_open(target) as f:
        f.write(b"new")
        raise KeyboardInterrupt
    assert target.read_bytes() == b"old contents"


def test_model_file_checks(tmp_path):
    with pytest.raises(BlendtruthError, match="no such file"):
        check_model_file(tmp_path / "nope.obj")
    (tmp_path / "m.xyz").write_text("x")
    with pytest.raises(BlendtruthError, match="unknown model format '.xyz'"):
        check_model_file(tmp_path / "m.xyz")
    (tmp_path / "e.stl").write_bytes(b"")
    with pytest.raises(BlendtruthError, match="empty"):
        check_model_file(tmp_path / "e.stl")
    bad = tmp_path / "two.obj"
    bad.write_text("v 0 0 0\nv 1 0 0\nv 0 1 0\nf 1 2\n")
    with pytest.raises(BlendtruthError, match="line 4: a face with 2"):
        check_model_file(bad)
    good = tmp_path / "tri.obj"
    good.write_text("v 0 0 0\nv 1 0 0\nv 0 1 0\nf -3 -2 -1\n")
    check_model_file(good)
    assert default_up([Path("a.obj"), Path("b.glb")]) == "+y"
    assert default_up([Path("a.obj"), Path("b.ply")]) == "+z"


def test_scene_spec_parse_and_validation():
    assert SceneSpec.parse("default").is_factory
    assert SceneSpec.parse("uv_sphere").primitive == "uv_sphere"
    assert SceneSpec.parse("a.obj").models == (Path("a.obj"),)
    assert SceneSpec.parse(["a.obj", "b.ply"]).models == (Path("a.obj"), Path("b.ply"))
    with pytest.raises(BlendtruthError, match="--light"):
        SceneSpec(models=(Path("a.obj"),), light="disco")
    with pytest.raises(BlendtruthError, match="--material"):
        SceneSpec(models=(Path("a.obj"),), material="gold")
    with pytest.raises(BlendtruthError, match="primitive"):
        SceneSpec(primitive="torus")


def test_atomic_write_uses_normal_file_permissions(tmp_path):
    old = os.umask(0o022)
    try:
        import importlib

        import blendtruth.writers.atomic as atomic

        importlib.reload(atomic)
        atomic.write_bytes(tmp_path / "f.bin", b"x")
    finally:
        os.umask(old)
        importlib.reload(atomic)
    assert (tmp_path / "f.bin").stat().st_mode & 0o777 == 0o644


def test_srgb_encoding_turns_nan_black():
    assert linear_to_srgb8(np.array([np.nan, 0.5])).tolist() == [0, 188]
