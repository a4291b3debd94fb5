"""Camera models and their exact pixel rays (pure numpy; docs/conventions.md#camera-models).

Every model casts one ray per pixel centre (u + 0.5, v + 0.5) from an origin o (camera
frame, OpenCV axes: x right, y down, z forward) along a unit direction d:

- ``pinhole``: o = 0, d = K⁻¹(u + ½, v + ½, 1) normalised;
- ``ortho``: o = ((u + ½ − cx)/fx, (v + ½ − cy)/fy, 0), d = (0, 0, 1); fx = fy are pixels
  per scene unit (the pixel size is 1/fx scene units); ``depth`` = the distance along d
  from the image plane z = 0 (= camera-frame z), ``distance`` = ``depth``;
- ``equirect``: longitude λ = 2π((u + ½)/W − ½) (0 straight ahead, +π/2 towards +x),
  latitude φ = π(½ − (v + ½)/H) (+π/2 straight up, −y); d = (cos φ sin λ, −sin φ,
  cos φ cos λ); the image covers 360° × 180°; ``depth`` holds the ray distance;
- ``fisheye``: equidistant, as Cycles renders it: a = (u + ½ − cx)/fx, b = (v + ½ − cy)/fy,
  θ = √(a² + b²) (the angle from the optical axis), d = (sin θ · a/θ, sin θ · b/θ, cos θ),
  with fx = W/fov, fy = H/fov (radians; the image circle, an ellipse unless W = H,
  touches the frame's edges) and a centred principal point; pixels with θ > fov/2 see
  nothing; ``depth`` holds the ray distance. For fov <= 180° this is exactly OpenCV's
  fisheye model (u = fx · θ_d · X/r + cx with θ_d = θ(1 + k1θ² + …), r = √(X² + Y²)) with
  k1..k4 = 0; beyond 180° OpenCV cannot express it (its θ = atan(r/Z) stays below 90°).
"""

from __future__ import annotations

import math

import numpy as np

from blendtruth.errors import BlendtruthError

CAMERA_MODELS = ("pinhole", "ortho", "equirect", "fisheye")
# Models whose `depth` is the Euclidean ray distance (no image plane to measure from).
RAY_DISTANCE_MODELS = ("equirect", "fisheye")


def model_intrinsics(model: str, width: int, height: int, fov_deg: float | None = None):
    """The intrinsics a panoramic model implies (centred principal point): equirect
    fx = W/2π, fy = H/π (pixels per radian of longitude/latitude); fisheye fx = W/fov,
    fy = H/fov (pixels per radian of θ)."""
    from blendtruth.geometry.camera import Intrinsics

    if model == "equirect":
        return Intrinsics(
            width / (2 * math.pi), height / math.pi, width / 2, height / 2, width, height
        )
    if model == "fisheye":
        _check_fov(fov_deg)
        fov = math.radians(fov_deg)
        return Intrinsics(width / fov, height / fov, width / 2, height / 2, width, height)
    raise BlendtruthError(f"model_intrinsics: {model!r} is not a panoramic model")


def _check_fov(fov_deg: float | None) -> None:
    if not (fov_deg is not None and math.isfinite(fov_deg) and 0 < fov_deg <= 360):
        raise BlendtruthError(f"--fisheye-fov must be in (0, 360] degrees, got {fov_deg}")


def check_model(model: str, intr, fov_deg: float | None) -> None:
    """Raise BlendtruthError for an unknown model or intrinsics it cannot have."""
    if model not in CAMERA_MODELS:
        raise BlendtruthError(f"--camera must be one of {', '.join(CAMERA_MODELS)}; got {model!r}")
    if model == "ortho" and not math.isclose(intr.fx, intr.fy, rel_tol=1e-12):
        raise BlendtruthError(
            f"--camera ortho needs square pixels (fx = fy), got {intr.fx}, {intr.fy}"
        )
    if model in ("equirect", "fisheye"):
        want = model_intrinsics(model, intr.width, intr.height, fov_deg)
        got = (intr.fx, intr.fy, intr.cx, intr.cy)
        if not np.allclose(got, (want.fx, want.fy, want.cx, want.cy), rtol=1e-9, atol=1e-9):
            raise BlendtruthError(
                f"--camera {model}: intrinsics must be {want.fx:g}, {want.fy:g}, {want.cx:g}, "
                f"{want.cy:g} at {intr.width}x{intr.height} (Cycles renders no other)"
            )


def camera_rays(camera) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(origins H×W×3, unit directions H×W×3, valid H×W bool) in the camera frame for
    every pixel centre of ``camera`` (a :class:`blendtruth.view.Camera`), float64."""
    intr = camera.intrinsics
    u, v = np.meshgrid(np.arange(intr.width) + 0.5, np.arange(intr.height) + 0.5)
    zeros, ones = np.zeros_like(u), np.ones_like(u)
    model = camera.model
    valid = np.ones(u.shape, dtype=bool)
    if model == "pinhole":
        d = np.stack([(u - intr.cx) / intr.fx, (v - intr.cy) / intr.fy, ones], axis=-1)
        return np.zeros_like(d), d / np.linalg.norm(d, axis=-1, keepdims=True), valid
    if model == "ortho":
        o = np.stack([(u - intr.cx) / intr.fx, (v - intr.cy) / intr.fy, zeros], axis=-1)
        return o, np.stack([zeros, zeros, ones], axis=-1), valid
    if model == "equirect":
        lon = 2 * np.pi * (u / intr.width - 0.5)
        lat = np.pi * (0.5 - v / intr.height)
        d = np.stack([np.cos(lat) * np.sin(lon), -np.sin(lat), np.cos(lat) * np.cos(lon)], -1)
        return np.zeros_like(d), d, valid
    if model == "fisheye":
        a, b = (u - intr.cx) / intr.fx, (v - intr.cy) / intr.fy
        theta = np.hypot(a, b)
        safe = np.where(theta > 0, theta, 1.0)
        s = np.sin(theta) / safe
        d = np.stack([s * a, s * b, np.cos(theta)], -1)
        valid = theta <= math.radians(camera.fov_deg) / 2
        return np.zeros_like(d), d, valid
    raise BlendtruthError(f"unknown camera model {model!r}")


def surface_points(camera, distance: np.ndarray) -> np.ndarray:
    """H×W×3 camera-frame points o + d · distance (``distance``: ray length, H×W)."""
    o, d, _ = camera_rays(camera)
    return o + d * np.asarray(distance, dtype=np.float64)[..., None]


def model_meta(camera) -> dict:
    """What a view's meta says about its camera model (nothing extra for pinhole)."""
    if camera.model == "pinhole":
        return {}
    out: dict = {"camera_model": camera.model}
    if camera.model == "ortho":
        size = 1.0 / camera.intrinsics.fx
        out["pixel_size"] = size
        out["ortho_scale"] = camera.intrinsics.width * size
        out["depth_kind"] = "distance from the image plane along the parallel rays"
    else:
        out["depth_kind"] = "ray distance (depth = distance for panoramic cameras)"
        if camera.model == "fisheye":
            out["fisheye_fov_deg"] = camera.fov_deg
            out["fisheye"] = "equidistant; = OpenCV fisheye with k1..k4 = 0 for fov <= 180"
    return out
