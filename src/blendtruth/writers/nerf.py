"""Camera files: our cameras.json (OpenCV axes) and NeRF's transforms.json (OpenGL axes),
written so nerfstudio and instant-ngp load them as they are, and read back."""

from __future__ import annotations

import json
import math
import os
from pathlib import Path

import numpy as np

from blendtruth.camera import Intrinsics
from blendtruth.conventions import conventions
from blendtruth.errors import BlendtruthError
from blendtruth.frames import opencv_to_opengl, opengl_to_opencv
from blendtruth.view import Camera
from blendtruth.writers.atomic import write_bytes


def _write_json(path: str | os.PathLike, data: dict) -> None:
    write_bytes(path, (json.dumps(data, indent=2) + "\n").encode())


def write_cameras_json(path: str | os.PathLike, cameras: list[Camera], names: list[str]) -> None:
    """One entry per view: name, K, width, height, cam_to_world (OpenCV axes)."""
    frames = [
        {
            "name": name,
            "K": cam.K.tolist(),
            "width": cam.width,
            "height": cam.height,
            "cam_to_world": cam.cam_to_world.tolist(),
        }
        for name, cam in zip(names, cameras, strict=True)
    ]
    _write_json(path, {"conventions": conventions(), "frames": frames})


def _intrinsics_fields(intr: Intrinsics) -> dict:
    # nerfstudio and instant-ngp cast rays through pixel (i + 0.5, j + 0.5) with cx, cy in
    # the same pixel frame as ours, so K's entries go in unchanged.
    return {
        "fl_x": intr.fx,
        "fl_y": intr.fy,
        "cx": intr.cx,
        "cy": intr.cy,
        "w": intr.width,
        "h": intr.height,
        "camera_angle_x": 2 * math.atan(intr.width / (2 * intr.fx)),
        "camera_angle_y": 2 * math.atan(intr.height / (2 * intr.fy)),
    }


def write_transforms_json(
    path: str | os.PathLike,
    cameras: list[Camera],
    rgb_paths: list[str],
    depth_paths: list[str] | None = None,
    mask_paths: list[str] | None = None,
) -> None:
    """A NeRF transforms.json: shared intrinsics at the top level when all cameras share
    them (else per frame), ``transform_matrix`` = cam_to_world in OpenGL camera axes,
    paths relative to the file's folder. Depth files are .npy planar depth in scene units
    (``depth_unit_scale_factor`` 1.0)."""
    shared = all(c.intrinsics == cameras[0].intrinsics for c in cameras)
    data: dict = {"camera_model": "OPENCV", "k1": 0.0, "k2": 0.0, "p1": 0.0, "p2": 0.0}
    if shared:
        data.update(_intrinsics_fields(cameras[0].intrinsics))
    if depth_paths is not None:
        data["depth_unit_scale_factor"] = 1.0
    frames = []
    for i, cam in enumerate(cameras):
        frame = {
            "file_path": rgb_paths[i],
            "transform_matrix": opencv_to_opengl(cam.cam_to_world).tolist(),
        }
        if not shared:
            frame.update(_intrinsics_fields(cam.intrinsics))
        if depth_paths is not None:
            frame["depth_file_path"] = depth_paths[i]
        if mask_paths is not None:
            frame["mask_path"] = mask_paths[i]
        frames.append(frame)
    data["frames"] = frames
    data["blendtruth"] = {
        "note": "transform_matrix is camera-to-world with OpenGL camera axes (x right, y up, "
        "z back); depth files hold planar depth (camera z) in scene units, 0 = no surface",
        "conventions": conventions(),
    }
    _write_json(path, data)


def read_cameras(path: Path) -> list[Camera]:
    """Cameras from our cameras.json or a NeRF transforms.json."""
    try:
        data = json.loads(Path(path).read_text())
        frames = data["frames"]
        if frames and "transform_matrix" in frames[0]:
            return [_nerf_camera(data, f) for f in frames]
        return [
            Camera(
                Intrinsics.from_K(f["K"], f["width"], f["height"]),
                np.array(f["cam_to_world"], dtype=np.float64),
            )
            for f in frames
        ]
    except OSError as exc:
        raise BlendtruthError(f"{path}: cannot read camera file ({exc.strerror})") from None
    except (ValueError, KeyError, TypeError, IndexError) as exc:
        raise BlendtruthError(
            f"{path}: not a cameras.json or transforms.json ({type(exc).__name__}: {exc})"
        ) from None


def _nerf_camera(data: dict, frame: dict) -> Camera:
    get = lambda key: frame.get(key, data.get(key))  # noqa: E731 - per-frame overrides
    w, h = int(get("w")), int(get("h"))
    fx = get("fl_x")
    if fx is None:
        fx = w / (2 * math.tan(get("camera_angle_x") / 2))
    fy = get("fl_y") or fx
    cx = get("cx") if get("cx") is not None else w / 2
    cy = get("cy") if get("cy") is not None else h / 2
    pose = opengl_to_opencv(np.array(frame["transform_matrix"], dtype=np.float64))
    return Camera(Intrinsics(fx, fy, cx, cy, w, h), pose)
