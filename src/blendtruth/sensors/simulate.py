"""Simulated depth-sensor output from the exact passes (pure numpy; docs/sensors.md).

Reads ``depth`` (H×W planar depth, scene units, 0 = no surface), ``normal`` (H×W×3 unit
vectors, camera frame, OpenCV axes) and optionally ``transparent`` (H×W bool) of a pinhole
view and returns ``depth_sensor`` (H×W float32, scene units, 0 where the sensor reports
nothing), ``depth_sensor_valid`` (H×W bool) and ``depth_sensor_cause`` (H×W uint8, one of
:data:`CAUSES`). The exact passes are never changed. Seeded: the same inputs and seed give
the same bits.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from blendtruth.errors import BlendtruthError
from blendtruth.sensors.models import DepthSensor

# Why a pixel has no sensor depth; the first cause that applies wins, in this order.
CAUSES = {
    0: "valid",
    1: "no_surface",
    2: "range",
    3: "transparent",
    4: "shadow",
    5: "grazing",
    6: "edge",
}
VALID, NO_SURFACE, RANGE, TRANSPARENT, SHADOW, GRAZING, EDGE = range(7)


@dataclass(frozen=True)
class SensorDepth:
    """``depth_sensor`` H×W float32 (scene units), ``valid`` H×W bool, ``cause`` H×W uint8."""

    depth_sensor: np.ndarray
    valid: np.ndarray
    cause: np.ndarray
    meta: dict


def _pixel_rays(K: np.ndarray, height: int, width: int) -> np.ndarray:  # noqa: N803
    u, v = np.meshgrid(np.arange(width) + 0.5, np.arange(height) + 0.5)
    d = np.stack([(u - K[0, 2]) / K[0, 0], (v - K[1, 2]) / K[1, 1], np.ones_like(u)], axis=-1)
    return d / np.linalg.norm(d, axis=-1, keepdims=True)


def second_view_shadow(depth: np.ndarray, fx: float, baseline: float) -> np.ndarray:
    """H×W bool: surface pixels that a second imager (or projector) ``baseline`` scene units
    along the camera's +x axis cannot see, because a nearer surface of the same row covers
    them there (rectified geometry: row v stays row v).

    A pixel at u (centre, pixels) with disparity d = fx·B/z lands at u − d in the second
    view. Pixel p is hidden iff some surface pixel q right of it lands at or left of p's
    spot: u_q > u_p and u_q − d_q <= u_p − d_p (then d_q > d_p: q is nearer)."""
    height, width = depth.shape
    surface = depth > 0
    u = np.arange(width) + 0.5
    with np.errstate(divide="ignore"):
        landing = np.where(surface, u - fx * baseline / np.where(surface, depth, 1.0), np.inf)
    # Smallest landing spot strictly right of each pixel (suffix minimum, shifted by one).
    suffix = np.minimum.accumulate(landing[:, ::-1], axis=1)[:, ::-1]
    right = np.concatenate([suffix[:, 1:], np.full((height, 1), np.inf)], axis=1)
    return surface & (right <= landing)


def _mixed_pixels(depth: np.ndarray, relative: float) -> np.ndarray:
    """H×W bool: surface pixels whose 3×3 neighbourhood (background counting as infinitely
    far) spans more than ``relative`` × their depth."""
    far = np.where(depth > 0, depth, np.inf)
    padded = np.pad(far, 1, mode="edge")
    windows = np.lib.stride_tricks.sliding_window_view(padded, (3, 3))
    lo = windows.min(axis=(-2, -1))
    hi = windows.max(axis=(-2, -1))
    with np.errstate(invalid="ignore"):
        return (depth > 0) & ((hi - lo) > relative * depth)


def simulate(
    model: DepthSensor,
    depth: np.ndarray,
    normal: np.ndarray,
    K: np.ndarray,  # noqa: N803
    *,
    seed: int = 0,
    metres_per_unit: float = 1.0,
    transparent: np.ndarray | None = None,
) -> SensorDepth:
    """What ``model`` would report for this pinhole view (``K`` 3×3, pixel centres at +0.5).

    ``metres_per_unit``: the scene unit in metres (the presets' numbers are metric; a scene
    normalised into the unit sphere is not). See the module docstring for the arrays."""
    depth = np.asarray(depth, dtype=np.float64)
    if depth.ndim != 2:
        raise BlendtruthError(f"depth_sensor: depth must be H×W, got shape {depth.shape}")
    height, width = depth.shape
    normal = np.asarray(normal, dtype=np.float64)
    if normal.shape != (height, width, 3):
        raise BlendtruthError(
            f"depth_sensor: normal must be {height}×{width}×3, got {normal.shape}"
        )
    if not (np.isfinite(metres_per_unit) and metres_per_unit > 0):
        raise BlendtruthError(f"depth_sensor: metres per unit must be > 0, got {metres_per_unit}")
    K = np.asarray(K, dtype=np.float64)  # noqa: N806
    z = depth * metres_per_unit
    cause = np.zeros((height, width), dtype=np.uint8)

    def drop(where: np.ndarray, why: int) -> None:
        cause[(cause == VALID) & where] = why

    drop(~(depth > 0), NO_SURFACE)
    drop((z < model.min_depth) | (z > model.max_depth), RANGE)
    if transparent is not None:
        drop(np.asarray(transparent, dtype=bool), TRANSPARENT)
    if model.baseline_m > 0:
        drop(second_view_shadow(depth, K[0, 0], model.baseline_m / metres_per_unit), SHADOW)
    rays = _pixel_rays(K, height, width)
    cos = np.abs(np.einsum("hwc,hwc->hw", normal, rays))
    drop(cos < np.cos(np.radians(model.grazing_deg)), GRAZING)
    if model.edge_relative > 0:
        drop(_mixed_pixels(depth, model.edge_relative), EDGE)

    noise = np.random.default_rng(seed).standard_normal((height, width))
    ok = cause == VALID
    z_ok = np.where(ok, z, 1.0)
    if model.kind == "tof":
        # σ along the ray is tof_sigma_per_m × the ray length; the planar depth scales with
        # the ray length, so its σ is tof_sigma_per_m × z.
        z_noisy = z_ok * (1.0 + model.tof_sigma_per_m * noise)
    else:
        fb = model.focal_px * model.baseline_m
        disparity = fb / z_ok + model.disparity_sigma_px * noise
        if model.disparity_step_px > 0:
            step = model.disparity_step_px
            disparity = np.floor(disparity / step + 0.5) * step
        with np.errstate(divide="ignore"):
            z_noisy = np.where(disparity > 0, fb / np.where(disparity > 0, disparity, 1.0), np.inf)
    drop(ok & ((z_noisy < model.min_depth) | (z_noisy > model.max_depth)), RANGE)
    valid = cause == VALID
    out = np.where(valid, z_noisy / metres_per_unit, 0.0).astype(np.float32)
    meta = {
        "sensor": model.meta(),
        "seed": int(seed),
        "metres_per_unit": float(metres_per_unit),
        "causes": {str(k): v for k, v in CAUSES.items()},
        "depth_sensor": "planar depth in scene units as the sensor reports it, 0 = no reading",
    }
    return SensorDepth(out, valid, cause, meta)
