"""Cameras float32 cannot render, scenes far from the origin, and views that see nothing
(pure: no Blender)."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

from blendtruth.errors import BlendtruthError, BlendtruthWarning
from blendtruth.geometry.camera import Intrinsics
from blendtruth.geometry.frames import look_at
from blendtruth.inputs.renderable import Coverage, check_cameras, check_scene
from blendtruth.scene import SceneInfo, SceneSpec
from blendtruth.scenes.samplers import sample_cameras
from blendtruth.view import Camera

INFO = SceneInfo(center=np.zeros(3), radius=1.0)


def cams(fov=50.0, K=None, radius=None, width=64):  # noqa: N803
    intr = (
        Intrinsics.from_K(K, width, width)
        if K is not None
        else Intrinsics.from_fov(fov, width, width)
    )
    return sample_cameras("sphere", 3, intr, radius=radius)


def test_ordinary_cameras_pass():
    check_cameras(cams(), INFO)
    check_cameras(cams(fov=1.0), INFO)  # 57 radii away: depth rounding 3.4e-6 of the radius
    check_cameras(cams(radius=0.5), INFO)  # inside the bounding sphere


@pytest.mark.parametrize(
    ("kwargs", "needle"),
    [
        ({"fov": 1e-6}, "float32 rounds depth there by up to 8.54 units"),
        ({"K": [[1e30, 0, 32], [0, 1e30, 32], [0, 0, 1]]}, "float32 rounds depth"),
        ({"fov": 1e-6, "radius": 3.0}, "one pixel spans 8.18e-10 units"),
    ],
)
def test_cameras_float32_cannot_render(kwargs, needle):
    with pytest.raises(BlendtruthError, match="camera 0") as info:
        check_cameras(cams(**kwargs), INFO)
    assert needle in str(info.value)


def test_camera_far_from_the_origin_looking_at_a_small_model():
    # A 1-unit model at 1e5 seen from 3 units away: float32 steps of 0.0078 at 1e5 are
    # 0.78 % of the radius, above the 0.1 % limit.
    info = SceneInfo(center=np.array([1e5, 0.0, 0.0]), radius=1.0)
    pose = look_at(np.array([1e5 + 3.0, 0.0, 0.0]), info.center, (0.0, 0.0, 1.0))
    with pytest.raises(BlendtruthError, match="float32 rounds depth"):
        check_cameras([Camera(Intrinsics.from_fov(50, 64, 64), pose)], info)


def test_scene_precision_only_without_normalisation():
    far = SceneInfo(center=np.full(3, 1e12), radius=1e6)
    spec = SceneSpec(models=("m.stl",), normalize=False)
    with pytest.raises(BlendtruthError, match=r"m.stl: .*rounded by up to 3.28e\+04 units"):
        check_scene(spec, far)
    check_scene(SceneSpec(models=("m.stl",)), far)  # normalised: rendered near the origin
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        check_scene(spec, SceneInfo(center=np.full(3, 100.0), radius=1.0))


def test_coverage_warns_per_empty_view_or_fails_when_all_are(tmp_path):
    seen, empty = np.ones((4, 4), bool), np.zeros((4, 4), bool)
    cov = Coverage(3)
    for name, mask in [("0000", seen), ("0001", empty), ("0002", empty)]:
        cov.add(name, mask)
    with pytest.warns(BlendtruthWarning) as record:
        cov.finish([])
    assert [str(w.message)[:14] for w in record] == ["view 0001 sees", "view 0002 sees"]

    files = []
    for sub in ("views", "depth"):
        (tmp_path / sub).mkdir()
        files.append(tmp_path / sub / "0000.x")
        files[-1].write_bytes(b"x")
    cov = Coverage(1)
    cov.add("0000", empty)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with pytest.raises(BlendtruthError, match="no view sees the model: all 1 view"):
            cov.finish(files)
    assert list(tmp_path.iterdir()) == []
