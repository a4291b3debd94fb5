"""Malformed camera files are one-line errors naming the file, never a traceback or a hang
(pure: no Blender)."""

from __future__ import annotations

import json
import os
import time

import pytest

from blendtruth.errors import BlendtruthError
from blendtruth.multiview import file_cameras

POSE = [[1, 0, 0, 0], [0, 1, 0, 0], [0, 0, 1, 5], [0, 0, 0, 1]]
K = [[10, 0, 8], [0, 10, 8], [0, 0, 1]]


def frame(**kw):
    return {"K": K, "width": 16, "height": 16, "cam_to_world": POSE, **kw}


@pytest.mark.parametrize(
    ("data", "needle"),
    [
        ("{}".encode("utf-16"), "not UTF-8 text"),
        (b"[" * 100000, "nested too deeply"),
        (json.dumps({"frames": []}).encode(), "'frames' is empty"),
        (json.dumps({"frames": [frame(K="x")]}).encode(), "frame 0"),
        (json.dumps({"frames": [frame(width=2)]}).encode(), "frame 0: 2x16 px"),
        (json.dumps({"frames": [frame(), frame(height=10**30)]}).encode(), "frame 1: 16x1000"),
        (json.dumps({"camera_angle_x": 0, "w": 16, "h": 16,
                     "frames": [{"transform_matrix": POSE}]}).encode(), "camera_angle_x"),
    ],
)  # fmt: skip
def test_bad_camera_file_is_one_line(tmp_path, data, needle):
    path = tmp_path / "cams.json"
    path.write_bytes(data)
    with pytest.raises(BlendtruthError) as info:
        file_cameras(path)
    message = str(info.value)
    assert message.startswith(str(path)) and needle in message and "\n" not in message


def test_fifo_camera_file_or_frame_image_does_not_block(tmp_path):
    os.mkfifo(tmp_path / "cams.json")
    os.mkfifo(tmp_path / "0000.png")
    (tmp_path / "t.json").write_text(
        json.dumps({"fl_x": 10, "frames": [{"transform_matrix": POSE, "file_path": "0000"}]})
    )
    start = time.perf_counter()
    for name, needle in [("cams.json", "camera file"), ("t.json", "image")]:
        with pytest.raises(BlendtruthError, match=f"{needle} .* is a FIFO"):
            file_cameras(tmp_path / name)
    assert time.perf_counter() - start < 1.0
