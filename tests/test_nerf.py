"""cameras.json / transforms.json: written, read back by an independent reader written
from the nerfstudio format description, and reproducing our rays (pure)."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from blendtruth.camera import Intrinsics
from blendtruth.errors import BlendtruthError
from blendtruth.frames import look_at
from blendtruth.geometry import ray_directions
from blendtruth.view import Camera
from blendtruth.writers.nerf import read_cameras, write_cameras_json, write_transforms_json


def _our_rays(cam: Camera) -> tuple[np.ndarray, np.ndarray]:
    d = ray_directions(cam.intrinsics) @ cam.cam_to_world[:3, :3].T
    return cam.cam_to_world[:3, 3], d / np.linalg.norm(d, axis=-1, keepdims=True)


def _nerfstudio_rays(data: dict, frame: dict) -> tuple[np.ndarray, np.ndarray]:
    """Independent reader: nerfstudio's convention, per its data-format docs: intrinsics
    at the top level or per frame; transform_matrix is camera-to-world in OpenGL axes;
    the ray of pixel (i, j) goes through (i + 0.5, j + 0.5) with camera-frame direction
    ((i + 0.5 - cx) / fl_x, -(j + 0.5 - cy) / fl_y, -1)."""
    get = lambda k: frame[k] if k in frame else data[k]  # noqa: E731
    w, h = get("w"), get("h")
    i, j = np.meshgrid(np.arange(w) + 0.5, np.arange(h) + 0.5)
    d = np.dstack([(i - get("cx")) / get("fl_x"), -(j - get("cy")) / get("fl_y"), -np.ones_like(i)])
    c2w = np.array(frame["transform_matrix"])
    d = d @ c2w[:3, :3].T
    return c2w[:3, 3], d / np.linalg.norm(d, axis=-1, keepdims=True)


def _cameras(shared: bool) -> list[Camera]:
    cams = []
    for k, eye in enumerate([(3, 0, 1), (0, -4, 2), (-2, 2, -1)]):
        intr = Intrinsics(300.0, 280.0, 70.3, 41.9, 128, 96)
        if not shared:
            intr = Intrinsics(300.0 + 10 * k, 280.0, 70.3 - k, 41.9, 128, 96)
        cams.append(Camera(intr, look_at(eye, (0.1, 0.0, 0.2))))
    return cams


@pytest.mark.parametrize("shared", [True, False])
def test_transforms_json_reproduces_our_rays(tmp_path, shared):
    cams = _cameras(shared)
    path = tmp_path / "transforms.json"
    write_transforms_json(
        path,
        cams,
        [f"rgb/{k}.png" for k in range(3)],
        depth_paths=[f"depth/{k}.npy" for k in range(3)],
    )
    data = json.loads(path.read_text())
    assert ("fl_x" in data) == shared
    for cam, frame in zip(cams, data["frames"], strict=True):
        o1, d1 = _our_rays(cam)
        o2, d2 = _nerfstudio_rays(data, frame)
        np.testing.assert_allclose(o2, o1, atol=1e-6)
        np.testing.assert_allclose(d2, d1, atol=1e-6)
        fl_x = frame.get("fl_x", data.get("fl_x"))
        angle = frame.get("camera_angle_x", data.get("camera_angle_x"))
        assert angle == pytest.approx(2 * math.atan(cam.width / (2 * fl_x)))
        assert frame["depth_file_path"].startswith("depth/")
    assert data["depth_unit_scale_factor"] == 1.0
    # Our own reader gets the same cameras back.
    for a, b in zip(read_cameras(path), cams, strict=True):
        np.testing.assert_allclose(a.K, b.K, atol=1e-9)
        np.testing.assert_allclose(a.cam_to_world, b.cam_to_world, atol=1e-12)


def test_cameras_json_round_trip(tmp_path):
    cams = _cameras(shared=False)
    write_cameras_json(tmp_path / "cameras.json", cams, ["a", "b", "c"])
    data = json.loads((tmp_path / "cameras.json").read_text())
    assert data["conventions"]["camera_axes"].startswith("OpenCV")
    assert [f["name"] for f in data["frames"]] == ["a", "b", "c"]
    for a, b in zip(read_cameras(tmp_path / "cameras.json"), cams, strict=True):
        assert np.array_equal(a.K, b.K) and np.array_equal(a.cam_to_world, b.cam_to_world)


def test_bad_camera_files(tmp_path):
    with pytest.raises(BlendtruthError, match="cannot read"):
        read_cameras(tmp_path / "missing.json")
    (tmp_path / "bad.json").write_text("{not json")
    with pytest.raises(BlendtruthError, match="bad.json: not a cameras.json"):
        read_cameras(tmp_path / "bad.json")
    (tmp_path / "nokeys.json").write_text('{"frames": [{"K": [[1]]}]}')
    with pytest.raises(BlendtruthError, match="nokeys.json"):
        read_cameras(tmp_path / "nokeys.json")
