"""cameras.json / transforms.json: written, read back by an independent reader written
from the nerfstudio format description, reproducing our rays; our readers (pure)."""

from __future__ import annotations

import copy
import json
import math
import struct
import zlib

import numpy as np
import pytest

from blendtruth.conventions import conventions
from blendtruth.errors import BlendtruthError
from blendtruth.geometry.camera import Intrinsics
from blendtruth.geometry.frames import look_at
from blendtruth.view import Camera
from blendtruth.writers.nerf import (
    read_cameras,
    read_cameras_json,
    read_transforms_json,
    write_cameras_json,
    write_transforms_json,
)

INTRINSIC_KEYS = ("fl_x", "fl_y", "cx", "cy", "w", "h")


def _our_rays(cam: Camera) -> tuple[np.ndarray, np.ndarray]:
    """Canonical rays: K⁻¹ (u + 0.5, v + 0.5, 1) rotated by cam_to_world, normalised;
    written out here rather than taken from blendtruth.geometry.rays."""
    u, v = np.meshgrid(np.arange(cam.width) + 0.5, np.arange(cam.height) + 0.5)
    pix = np.dstack([u, v, np.ones_like(u)])
    d = pix @ np.linalg.inv(cam.K).T @ cam.cam_to_world[:3, :3].T
    return cam.cam_to_world[:3, 3], d / np.linalg.norm(d, axis=-1, keepdims=True)


def _nerfstudio_rays(data: dict, frame: dict) -> tuple[np.ndarray, np.ndarray]:
    """Independent reader, from nerfstudio's data-format description: intrinsics at the
    top level or in every frame; transform_matrix is camera-to-world with OpenGL camera
    axes (x right, y up, z back); the ray of pixel (i, j) passes through (i + 0.5, j + 0.5)
    with camera-frame direction ((i + 0.5 - cx) / fl_x, -(j + 0.5 - cy) / fl_y, -1)."""

    def get(key):
        return frame[key] if key in frame else data[key]

    i, j = np.meshgrid(np.arange(get("w")) + 0.5, np.arange(get("h")) + 0.5)
    d = np.dstack([(i - get("cx")) / get("fl_x"), -(j - get("cy")) / get("fl_y"), -np.ones_like(i)])
    c2w = np.array(frame["transform_matrix"])
    d = d @ c2w[:3, :3].T
    return c2w[:3, 3], d / np.linalg.norm(d, axis=-1, keepdims=True)


def _cameras(shared: bool) -> list[Camera]:
    cams = []
    eyes = [(3, 0, 1), (0, -4, 2), (-2, 2, -1)]
    for k, eye in enumerate(eyes):
        intr = Intrinsics(300.0, 280.0, 70.3, 41.9, 128, 96)
        if not shared:
            # Different focal lengths, principal points and sizes per frame.
            intr = Intrinsics(300.0 + 10 * k, 280.0 - 5 * k, 70.3 - k, 41.9 + k, 128 - 16 * k, 96)
        cams.append(Camera(intr, look_at(eye, (0.1, 0.0, 0.2))))
    return cams


def _write(tmp_path, cams, **kwargs) -> dict:
    path = tmp_path / "transforms.json"
    write_transforms_json(path, cams, [f"rgb/{k:04d}.png" for k in range(len(cams))], **kwargs)
    return json.loads(path.read_text())


@pytest.mark.parametrize("shared", [True, False])
def test_transforms_json_reproduces_our_rays(tmp_path, shared):
    cams = _cameras(shared)
    data = _write(tmp_path, cams)
    # nerfstudio's layout rules: a field is either top-level or in every frame.
    for key in INTRINSIC_KEYS:
        assert (key in data) == shared
        assert all((key in f) != shared for f in data["frames"])
    assert data["camera_model"] == "OPENCV"
    assert all(data[k] == 0.0 for k in ("k1", "k2", "p1", "p2"))
    for cam, frame in zip(cams, data["frames"], strict=True):
        o1, d1 = _our_rays(cam)
        o2, d2 = _nerfstudio_rays(data, frame)
        np.testing.assert_allclose(o2, o1, atol=1e-6)
        np.testing.assert_allclose(d2, d1, atol=1e-6)
        src = data if shared else frame
        assert src["camera_angle_x"] == pytest.approx(2 * math.atan(src["w"] / (2 * src["fl_x"])))
        assert src["camera_angle_y"] == pytest.approx(2 * math.atan(src["h"] / (2 * src["fl_y"])))
        # K goes in unchanged: the same pixel-centre convention on both sides.
        assert (src["cx"], src["cy"]) == (cam.intrinsics.cx, cam.intrinsics.cy)


def test_half_a_pixel_would_be_caught(tmp_path):
    # The tolerance above is tight enough to see a principal point off by half a pixel.
    cam = _cameras(shared=True)[0]
    data = _write(tmp_path, [cam])
    shifted = copy.deepcopy(data)
    shifted["cx"] += 0.5
    _, d1 = _our_rays(cam)
    _, d2 = _nerfstudio_rays(shifted, shifted["frames"][0])
    assert np.abs(d2 - d1).max() > 1e-4


def test_transform_matrix_axes(tmp_path):
    # A camera at +5 Z looking down at the origin with image-up +Y: in OpenGL axes its
    # z axis points back (up, +Z) and its y axis up in the image (+Y).
    cam = Camera(Intrinsics.from_fov(60, 32, 32), look_at((0, 0, 5), (0, 0, 0), up=(0, 1, 0)))
    m = np.array(_write(tmp_path, [cam])["frames"][0]["transform_matrix"])
    np.testing.assert_allclose(m[:3, 3], [0, 0, 5])
    np.testing.assert_allclose(m[:3, :3], np.eye(3), atol=1e-12)
    np.testing.assert_array_equal(m[3], [0, 0, 0, 1])


def test_depth_mask_paths_scale_and_provenance(tmp_path):
    cams = _cameras(shared=True)
    data = _write(
        tmp_path,
        cams,
        depth_paths=[f"depth/{k:04d}.npy" for k in range(3)],
        mask_paths=[tmp_path / "mask" / f"{k:04d}.png" for k in range(3)],  # absolute
        scale=0.25,
    )
    assert data["depth_unit_scale_factor"] == 1.0
    assert data["scale"] == 0.25
    for k, frame in enumerate(data["frames"]):
        assert frame["file_path"] == f"rgb/{k:04d}.png"
        assert frame["depth_file_path"] == f"depth/{k:04d}.npy"
        assert frame["mask_path"] == f"mask/{k:04d}.png"  # made relative to the json
    assert data["blendtruth"]["conventions"] == conventions()
    assert "OpenGL" in data["blendtruth"]["note"]
    plain = _write(tmp_path, cams)
    for key in ("depth_unit_scale_factor", "scale"):
        assert key not in plain
    assert all("depth_file_path" not in f and "mask_path" not in f for f in plain["frames"])


@pytest.mark.parametrize("shared", [True, False])
def test_our_readers_round_trip_exactly(tmp_path, shared):
    cams = _cameras(shared)
    write_cameras_json(tmp_path / "cameras.json", cams, ["a", "b", "c"])
    write_transforms_json(tmp_path / "transforms.json", cams, ["a.png", "b.png", "c.png"])
    data = json.loads((tmp_path / "cameras.json").read_text())
    assert data["conventions"] == conventions()
    assert [f["name"] for f in data["frames"]] == ["a", "b", "c"]
    assert data["frames"][0]["K"] == cams[0].K.tolist()
    reads = [
        read_cameras_json(tmp_path / "cameras.json"),
        read_transforms_json(tmp_path / "transforms.json"),
        read_cameras(tmp_path / "cameras.json"),
        read_cameras(tmp_path / "transforms.json"),
    ]
    for got in reads:
        for a, b in zip(got, cams, strict=True):
            assert a.intrinsics == b.intrinsics
            assert np.array_equal(a.cam_to_world, b.cam_to_world)


def _png(path, width: int, height: int) -> None:
    """A valid grey PNG, written by hand so the test needs no image library."""

    def chunk(tag: bytes, body: bytes) -> bytes:
        crc = struct.pack(">I", zlib.crc32(tag + body))
        return struct.pack(">I", len(body)) + tag + body + crc

    rows = b"".join(b"\x00" + bytes(width) for _ in range(height))
    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(
        b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(rows))
        + chunk(b"IEND", b"")
    )  # fmt: skip


def test_reads_a_nerf_synthetic_style_file(tmp_path):
    # The original NeRF scenes: camera_angle_x only, no w/h, file_path without suffix.
    angle = 0.6911112070083618
    c2w_gl = [[-1, 0, 0, 0], [0, -0.8, 0.6, 2.4], [0, 0.6, 0.8, 3.2], [0, 0, 0, 1]]
    _png(tmp_path / "train" / "r_0.png", 40, 30)
    frame = {"file_path": "./train/r_0", "transform_matrix": c2w_gl}
    data = {"camera_angle_x": angle, "frames": [frame]}
    (tmp_path / "transforms_train.json").write_text(json.dumps(data))
    (cam,) = read_cameras(tmp_path / "transforms_train.json")
    f = 40 / (2 * math.tan(angle / 2))
    assert cam.intrinsics == Intrinsics(f, f, 20.0, 15.0, 40, 30)
    np.testing.assert_allclose(cam.cam_to_world, np.array(c2w_gl) @ np.diag([1, -1, -1, 1]))
    # Looking along -Z of the OpenGL matrix = +Z of ours: towards the origin here.
    np.testing.assert_allclose(cam.cam_to_world[:3, 2], [0, -0.6, -0.8])


def _bad(tmp_path, name: str, content) -> str:
    path = tmp_path / name
    path.write_text(content if isinstance(content, str) else json.dumps(content))
    return str(path)


GL = np.eye(4).tolist()
SCALED = np.diag([2.0, 2.0, 2.0, 1.0]).tolist()


@pytest.mark.parametrize(
    ("content", "needle"),
    [
        ("{not json", "not a cameras.json or transforms.json"),
        ({"frames": []}, "'frames' is empty"),
        ({"cameras": []}, "no 'frames' list"),
        ({"frames": [{"K": [[1]]}]}, "neither"),
        ({"frames": [{"cam_to_world": GL, "K": [[1]], "width": 4, "height": 4}]}, "frame 0: K"),
        ({"frames": [{"cam_to_world": GL}]}, "frame 0: missing key 'K'"),
        ({"w": 8, "h": 8, "frames": [{"transform_matrix": GL}]}, "frame 0: no focal length"),
        (
            {"fl_x": 9, "w": 8, "h": 8, "k1": 0.1, "frames": [{"transform_matrix": GL}]},
            "distortion",
        ),
        (
            {
                "fl_x": 9,
                "w": 8,
                "h": 8,
                "camera_model": "OPENCV_FISHEYE",
                "frames": [{"transform_matrix": GL}],
            },
            "camera_model 'OPENCV_FISHEYE'",
        ),
        (
            {"fl_x": 9, "w": 8, "h": 8, "frames": [{"transform_matrix": SCALED}]},
            "frame 0: transform_matrix: rotation is not orthonormal",
        ),
        ({"fl_x": 9, "frames": [{"file_path": "x.jpg", "transform_matrix": GL}]}, "x.jpg"),
    ],
)
def test_bad_camera_files_name_the_file(tmp_path, content, needle):
    path = _bad(tmp_path, "cams.json", content)
    with pytest.raises(BlendtruthError, match="cams.json: .*" + needle):
        read_cameras(path)


def test_missing_file_and_wrong_reader(tmp_path):
    with pytest.raises(BlendtruthError, match="missing.json: cannot read"):
        read_cameras(tmp_path / "missing.json")
    write_transforms_json(tmp_path / "t.json", _cameras(True), ["a", "b", "c"])
    with pytest.raises(BlendtruthError, match="t.json: frame 0: missing key 'K'"):
        read_cameras_json(tmp_path / "t.json")


def test_writer_checks_its_lists(tmp_path):
    cams = _cameras(shared=True)
    with pytest.raises(BlendtruthError, match="rgb_paths has 2 entries for 3 cameras"):
        write_transforms_json(tmp_path / "t.json", cams, ["a", "b"])
    with pytest.raises(BlendtruthError, match="depth_paths has 1 entries"):
        write_transforms_json(tmp_path / "t.json", cams, ["a", "b", "c"], depth_paths=["d"])
    with pytest.raises(BlendtruthError, match="names has 2 entries"):
        write_cameras_json(tmp_path / "c.json", cams, ["a", "b"])
    with pytest.raises(BlendtruthError, match="at least one camera"):
        write_transforms_json(tmp_path / "t.json", [], [])
    with pytest.raises(BlendtruthError, match="scale"):
        write_transforms_json(tmp_path / "t.json", cams, ["a", "b", "c"], scale=-1.0)
    assert not list(tmp_path.iterdir())  # nothing half-written
