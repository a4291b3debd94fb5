"""Rectified stereo pairs and their exact disparity (pure numpy; docs/sensors.md#stereo).

A pair is a pinhole camera (the left, reference view) and the same camera moved by
``baseline`` scene units along its own +x axis (the right view): same K, parallel optical
axes, image rows aligned, so a surface point at planar depth z appears at
u_right = u_left − d with disparity d = fx · baseline / z in both views' pixels (the
SceneFlow / Middlebury / KITTI convention: positive, the left view's disparity maps left
to right by subtraction, the right view's maps right to left by addition).
"""

from __future__ import annotations

import dataclasses
import math

import numpy as np

from blendtruth.errors import BlendtruthError


def stereo_pair(camera, baseline: float) -> tuple:
    """(left, right) cameras (:class:`blendtruth.view.Camera`) for ``camera`` as the left
    view and a right view ``baseline`` scene units along its +x axis. Only pinhole cameras
    can be rectified this way; other models are refused in one line."""
    if isinstance(baseline, bool) or not (
        isinstance(baseline, int | float) and math.isfinite(baseline) and baseline > 0
    ):
        raise BlendtruthError(f"--stereo: the baseline must be a number > 0, got {baseline!r}")
    if camera.model != "pinhole":
        raise BlendtruthError(
            f"--stereo: a {camera.model} camera cannot be rectified into a stereo pair "
            "(its image rows are not epipolar lines); use a pinhole camera"
        )
    pose = np.array(camera.cam_to_world, dtype=np.float64)
    pose[:3, 3] += baseline * pose[:3, 0]
    return camera, dataclasses.replace(camera, cam_to_world=pose)


def disparity_from_depth(depth: np.ndarray, fx: float, baseline: float) -> np.ndarray:
    """H×W float32 disparity in pixels, fx · baseline / depth where depth > 0, else 0
    (``depth``: planar, scene units; ``fx``: pixels; ``baseline``: scene units)."""
    depth = np.asarray(depth, dtype=np.float64)
    with np.errstate(divide="ignore"):
        d = np.where(depth > 0, fx * baseline / np.where(depth > 0, depth, 1.0), 0.0)
    return d.astype(np.float32)
