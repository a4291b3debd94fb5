"""Camera files: our cameras.json (OpenCV axes) and NeRF's transforms.json (OpenGL axes).

transforms.json is written so that nerfstudio and instant-ngp load it as it is; both files
are read back by the "file" camera sampler. See docs/cameras.md.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from blendtruth.conventions import conventions
from blendtruth.errors import BlendtruthError
from blendtruth.geometry.camera import Intrinsics
from blendtruth.geometry.camera_models import CannotExpress
from blendtruth.geometry.frames import opencv_to_opengl, opengl_to_opencv, validate_pose
from blendtruth.view import Camera
from blendtruth.writers.atomic import write_bytes

PathLike = str | os.PathLike

# camera_model values (COLMAP's names, as nerfstudio uses them) that are a pinhole camera
# when every distortion coefficient is 0. Fisheye and equirectangular models are not.
_PINHOLE_MODELS = ("OPENCV", "PINHOLE", "SIMPLE_PINHOLE", "SIMPLE_RADIAL", "RADIAL")
_DISTORTION_KEYS = ("k1", "k2", "k3", "k4", "p1", "p2")
_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"

_NOTE = (
    "transform_matrix is camera-to-world with OpenGL camera axes (x right, y up, z back); "
    "fl_x, fl_y, cx, cy are K's entries unchanged (pixel centres at +0.5, as nerfstudio and "
    "instant-ngp cast rays). depth_file_path: .npy float32 planar depth (camera z) in scene "
    "units, 0 = no surface; nerfstudio takes the depth unit from its dataparser option, so "
    "train with 'nerfstudio-data --depth-unit-scale-factor 1.0'."
)


def write_cameras_json(
    path: PathLike,
    cameras: Sequence[Camera],
    names: Sequence[str],
    extra: Sequence[dict] | None = None,
) -> None:
    """Our camera file: ``{"conventions": ..., "frames": [{"name", "K" (3×3, pixels),
    "width", "height", "cam_to_world" (4×4, OpenCV camera axes, world frame)}]}``;
    ``extra``: more fields per entry (over time: ``frame``, ``time``, ``camera_index``)."""
    _check_lengths(cameras, names=names)
    frames = [
        {
            "name": name,
            "K": cam.K.tolist(),
            "K_opencv": cam.intrinsics.K_opencv.tolist(),
            "width": cam.width,
            "height": cam.height,
            "cam_to_world": cam.cam_to_world.tolist(),
            **_model_fields(cam),
        }
        for name, cam in zip(names, cameras, strict=True)
    ]
    for entry, more in zip(frames, extra or [{}] * len(frames), strict=True):
        entry.update(more)
    _write_json(path, {"conventions": conventions(), "frames": frames})


def write_transforms_json(
    path: PathLike,
    cameras: Sequence[Camera],
    rgb_paths: Sequence[PathLike] | None,
    depth_paths: Sequence[PathLike] | None = None,
    mask_paths: Sequence[PathLike] | None = None,
    scale: float | None = None,
    depth_unit_scale_factor: float = 1.0,
    note: str | None = None,
) -> None:
    """A NeRF transforms.json for nerfstudio and instant-ngp.

    Intrinsics go at the top level when every camera has the same ones, else into every
    frame (both readers accept per-frame ``fl_x, fl_y, cx, cy, w, h``). Each frame has
    ``file_path`` and, when given, ``depth_file_path`` (.npy float32 planar depth in scene
    units, hence ``depth_unit_scale_factor`` 1.0) and ``mask_path`` (nerfstudio ignores
    black pixels). Paths are stored relative to the file's folder: absolute ones are made
    relative, relative ones are taken as relative to it already. ``transform_matrix`` is
    cam_to_world with OpenGL camera axes. ``scale``, when given, is written as
    instant-ngp's ``scale`` (world -> its unit cube; it uses 0.33 otherwise); nerfstudio
    ignores it. ``rgb_paths`` None writes no ``file_path`` (a camera/depth/mask file for a
    render without images). ``depth_unit_scale_factor`` is the factor from the depth files'
    values to scene units (nerfstudio's parser ignores the key and multiplies by its own
    default 1e-3: see blendtruth.exports.nerfstudio); ``note`` replaces the default note.
    """
    _check_lengths(cameras, rgb_paths=rgb_paths, depth_paths=depth_paths, mask_paths=mask_paths)
    try:  # the camera model's own nerfstudio fields (CameraModel.nerfstudio)
        fields = [c.projection.nerfstudio() for c in cameras]
    except CannotExpress as exc:
        models = sorted({c.model for c in cameras})
        reason = f"{_cannot(models)} ({exc})"
        _write_json(path, {"frames": [], "blendtruth": {"cannot_express": reason}})
        return
    names = {f["camera_model"] for f in fields}
    if len(names) > 1:
        raise BlendtruthError(
            f"transforms.json holds one camera_model; these views need {sorted(names)}"
        )
    if scale is not None and not (math.isfinite(scale) and scale > 0):
        raise BlendtruthError(f"transforms.json scale must be a number > 0, got {scale}")
    folder = Path(path).parent
    shared = all(c.intrinsics == cameras[0].intrinsics for c in cameras)
    data: dict[str, Any] = {"camera_model": names.pop()}
    if shared:
        data.update(_intrinsics_fields(cameras[0]))
    # The model's distortion keys (OPENCV_FISHEYE: k1..k4 = 0), else OPENCV's, all 0.
    lens = {k: v for k, v in fields[0].items() if k in _DISTORTION_KEYS}
    data.update(lens or dict.fromkeys(("k1", "k2", "p1", "p2"), 0.0))
    if depth_paths is not None:
        data["depth_unit_scale_factor"] = depth_unit_scale_factor
    if scale is not None:
        data["scale"] = float(scale)
    frames = []
    for i, cam in enumerate(cameras):
        frame: dict[str, Any] = {}
        if rgb_paths is not None:
            frame["file_path"] = _relative(rgb_paths[i], folder)
        if not shared:
            frame.update(_intrinsics_fields(cam))
        frame["transform_matrix"] = opencv_to_opengl(cam.cam_to_world).tolist()
        if depth_paths is not None:
            frame["depth_file_path"] = _relative(depth_paths[i], folder)
        if mask_paths is not None:
            frame["mask_path"] = _relative(mask_paths[i], folder)
        frames.append(frame)
    data["frames"] = frames
    data["blendtruth"] = {"conventions": conventions(), "note": note or _NOTE}
    _write_json(path, data)


def read_cameras_json(path: PathLike) -> list[Camera]:
    """The cameras of our cameras.json, in file order."""
    return _read_frames(path, _load(path), _blendtruth_camera)


def read_transforms_json(path: PathLike) -> list[Camera]:
    """The cameras of a NeRF transforms.json, in file order, poses converted to OpenCV axes.

    Intrinsics per frame or at the top level: ``fl_x``/``fl_y`` or else
    ``camera_angle_x``/``camera_angle_y`` (radians, full width/height); a missing one of
    the two focal lengths equals the other; ``cx, cy`` default to the image centre; without
    ``w, h`` the size is read from the frame's PNG (as in the NeRF synthetic scenes). Only
    pinhole cameras: non-zero distortion or a fisheye ``camera_model`` is an error.
    """
    return _transforms_cameras(path, _load(path))


def read_cameras(path: PathLike) -> list[Camera]:
    """The cameras of our cameras.json or of a NeRF transforms.json, told apart by their
    frames' keys (``cam_to_world`` or ``transform_matrix``)."""
    data = _load(path)
    first = data["frames"][0]
    if isinstance(first, dict) and "transform_matrix" in first:
        return _transforms_cameras(path, data)
    if isinstance(first, dict) and "cam_to_world" in first:
        return _read_frames(path, data, _blendtruth_camera)
    raise BlendtruthError(
        f"{path}: not a cameras.json or transforms.json: its first frame has neither "
        "'cam_to_world' nor 'transform_matrix'"
    )


def _transforms_cameras(path: PathLike, data: dict) -> list[Camera]:
    model = data.get("camera_model", "OPENCV")
    if model not in _PINHOLE_MODELS:
        raise BlendtruthError(
            f"{path}: camera_model {model!r} is not a pinhole camera "
            f"(one of {', '.join(_PINHOLE_MODELS)} without distortion)"
        )
    folder = Path(path).parent
    return _read_frames(path, data, lambda top, frame: _nerf_camera(top, frame, folder))


def _write_json(path: PathLike, data: dict) -> None:
    write_bytes(path, (json.dumps(data, indent=2) + "\n").encode())


def _check_lengths(cameras: Sequence[Camera], **lists: Sequence | None) -> None:
    if len(cameras) == 0:
        raise BlendtruthError("a camera file needs at least one camera, got none")
    for name, values in lists.items():
        if values is not None and len(values) != len(cameras):
            raise BlendtruthError(f"{name} has {len(values)} entries for {len(cameras)} cameras")


def _relative(p: PathLike, folder: Path) -> str:
    p = Path(p)
    if p.is_absolute():
        p = Path(os.path.relpath(p, folder.resolve()))
    return p.as_posix()


def _intrinsics_fields(cam: Camera) -> dict[str, Any]:
    # nerfstudio (Cameras.generate_rays, pixel_offset=0.5) and instant-ngp (pixel + 0.5,
    # principal point cx / w) both cast the ray of pixel (i, j) through (i + 0.5, j + 0.5)
    # with cx, cy in the same continuous pixel frame as our K, so K's entries go in
    # unchanged; shifting them by half a pixel would be wrong. The values come from the
    # camera model (CameraModel.nerfstudio); the pinhole view angles only for pinhole.
    fields = cam.projection.nerfstudio()
    intr = cam.intrinsics
    out = {k: fields[k] for k in ("fl_x", "fl_y", "cx", "cy")}
    out |= {"w": intr.width, "h": intr.height}
    if fields["camera_model"] == "OPENCV":
        out["camera_angle_x"] = 2 * math.atan(intr.width / (2 * intr.fx))
        out["camera_angle_y"] = 2 * math.atan(intr.height / (2 * intr.fy))
    return out


def _load(path: PathLike) -> dict:
    from blendtruth.inputs.refs import check_regular

    check_regular(Path(path), "camera file", Path(path))
    try:
        text = Path(path).read_bytes().decode("utf-8-sig")
    except OSError as exc:
        raise BlendtruthError(f"{path}: cannot read camera file ({exc.strerror})") from None
    except UnicodeDecodeError as exc:
        raise BlendtruthError(f"{path}: not a cameras.json or transforms.json (not UTF-8 "
                              f"text: {exc.reason} at byte {exc.start})") from None  # fmt: skip
    try:
        data = json.loads(text)
    except RecursionError:
        raise BlendtruthError(f"{path}: not a cameras.json or transforms.json (JSON nested "
                              "too deeply)") from None  # fmt: skip
    except ValueError as exc:
        raise BlendtruthError(
            f"{path}: not a cameras.json or transforms.json (invalid JSON: {exc})"
        ) from None
    if not isinstance(data, dict) or not isinstance(data.get("frames"), list):
        raise BlendtruthError(f"{path}: not a cameras.json or transforms.json (no 'frames' list)")
    if not data["frames"]:
        raise BlendtruthError(f"{path}: 'frames' is empty; a camera file needs one camera or more")
    return data


def _read_frames(path: PathLike, data: dict, make: Callable[[dict, dict], Camera]) -> list[Camera]:
    cameras = []
    for k, frame in enumerate(data["frames"]):
        try:
            if not isinstance(frame, dict):
                raise BlendtruthError("is not a JSON object")
            cameras.append(make(data, frame))
        except KeyError as exc:
            raise BlendtruthError(f"{path}: frame {k}: missing key {exc}") from None
        except (BlendtruthError, ValueError, TypeError, IndexError, ArithmeticError) as exc:
            raise BlendtruthError(f"{path}: frame {k}: {exc}") from None
    return cameras


def _blendtruth_camera(data: dict, frame: dict) -> Camera:
    intr = Intrinsics.from_K(frame["K"], frame["width"], frame["height"])
    model = frame.get("camera_model", "pinhole")
    fov = frame.get("fisheye_fov_deg")
    return Camera(intr, np.array(frame["cam_to_world"], dtype=np.float64), model, fov)


def _model_fields(cam: Camera) -> dict[str, Any]:
    """cameras.json fields of a non-pinhole camera (none for pinhole: older readers
    keep working). Ortho: K's fx = fy are pixels per scene unit."""
    if cam.model == "pinhole":
        return {}
    out: dict[str, Any] = {"camera_model": cam.model}
    if cam.model == "ortho":
        out["pixel_size"] = 1.0 / cam.intrinsics.fx
        out["ortho_scale"] = max(cam.width, cam.height) / cam.intrinsics.fx
    if cam.model == "fisheye":
        out["fisheye_fov_deg"] = cam.fisheye_fov_deg
    return out


def _cannot(models: list[str]) -> str:
    return (
        f"these views use camera model(s) {', '.join(models)}; nerfstudio/instant-ngp "
        "transforms.json holds pinhole (OPENCV) and fisheye (OPENCV_FISHEYE, fov <= 180 deg) "
        "cameras only, so no frames are written rather than wrong ones: read cameras.json "
        "(docs/conventions.md#camera-models)"
    )


def _nerf_camera(data: dict, frame: dict, folder: Path) -> Camera:
    def get(key: str) -> Any:
        # Per-frame values override the top level, as in nerfstudio and instant-ngp.
        return frame[key] if key in frame else data.get(key)

    distortion = {k: get(k) for k in _DISTORTION_KEYS if get(k)}
    if distortion:
        raise BlendtruthError(f"lens distortion {distortion} is not supported (pinhole only)")
    w, h = get("w"), get("h")
    if w is None or h is None:
        w, h = _png_size(folder / frame["file_path"])
    fx = _focal(get, "x", w)
    fy = _focal(get, "y", h)
    if fx is None and fy is None:
        raise BlendtruthError("no focal length: give fl_x or camera_angle_x")
    fx, fy = fx or fy, fy or fx
    cx = w / 2 if get("cx") is None else get("cx")
    cy = h / 2 if get("cy") is None else get("cy")
    pose = np.array(frame["transform_matrix"], dtype=np.float64)
    if pose.shape == (3, 4):
        pose = np.vstack([pose, [0.0, 0.0, 0.0, 1.0]])
    validate_pose(pose, "transform_matrix")
    return Camera(Intrinsics(fx, fy, cx, cy, w, h), opengl_to_opencv(pose))


def _focal(get: Callable[[str], Any], axis: str, size: float) -> float | None:
    """fl_<axis> in pixels, else from camera_angle_<axis> (radians, full image)."""
    if get(f"fl_{axis}") is not None:
        return float(get(f"fl_{axis}"))
    if get(f"camera_angle_{axis}") is not None:
        angle = float(get(f"camera_angle_{axis}"))
        if not 0 < angle < math.pi:
            raise BlendtruthError(f"camera_angle_{axis} must be in (0, pi) radians, got {angle}")
        return size / (2 * math.tan(angle / 2))
    return None


def _png_size(image: Path) -> tuple[int, int]:
    """(width, height) from a PNG's header; a path without a suffix gets ".png", as
    instant-ngp and the NeRF synthetic scenes have it."""
    if not image.suffix:
        image = image.with_suffix(".png")
    from blendtruth.inputs.refs import check_regular

    check_regular(image, "image", image)
    try:
        with open(image, "rb") as f:
            head = f.read(24)
    except OSError as exc:
        raise BlendtruthError(f"no w, h given and cannot read {image} ({exc.strerror})") from None
    if head[:8] != _PNG_SIGNATURE or head[12:16] != b"IHDR":
        raise BlendtruthError(f"no w, h given and {image} is not a PNG to take them from")
    return int.from_bytes(head[16:20], "big"), int.from_bytes(head[20:24], "big")
