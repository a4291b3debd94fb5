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

import numpy as np

from blendtruth.errors import BlendtruthError
from blendtruth.geometry.camera_models import (
    MODELS,
    camera_model,
    equirect_intrinsics,
    fisheye_intrinsics,
)

CAMERA_MODELS = tuple(MODELS)
# Models whose `depth` is the Euclidean ray distance (no image plane to measure from).
RAY_DISTANCE_MODELS = tuple(name for name, m in MODELS.items() if m.depth_is_distance)


def model_intrinsics(model: str, width: int, height: int, fisheye_fov_deg: float | None = None):
    """The intrinsics a panoramic model implies (centred principal point): equirect
    fx = W/2π, fy = H/π (pixels per radian of longitude/latitude); fisheye fx = W/fov,
    fy = H/fov (pixels per radian of θ)."""
    if model == "equirect":
        return equirect_intrinsics(width, height)
    if model == "fisheye":
        return fisheye_intrinsics(width, height, fisheye_fov_deg)
    raise BlendtruthError(f"model_intrinsics: {model!r} is not a panoramic model")


def check_model(model: str, intr, fisheye_fov_deg: float | None) -> None:
    """Raise BlendtruthError for an unknown model or intrinsics it cannot have."""
    camera_model(model, intr, fisheye_fov_deg)


def camera_rays(camera) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(origins H×W×3, unit directions H×W×3, valid H×W bool) in the camera frame for
    every pixel centre of ``camera`` (a :class:`blendtruth.view.Camera`), float64."""
    model = camera.projection
    return model.rays(model.pixel_grid())


def surface_points(camera, distance: np.ndarray) -> np.ndarray:
    """H×W×3 camera-frame points o + d · distance (``distance``: ray length, H×W)."""
    o, d, _ = camera_rays(camera)
    return o + d * np.asarray(distance, dtype=np.float64)[..., None]


def model_meta(camera) -> dict:
    """What a view's meta says about its camera model (nothing extra for pinhole)."""
    return camera.projection.meta()
