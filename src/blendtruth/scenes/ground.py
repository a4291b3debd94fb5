"""Cameras and a ground plane: keep every camera above it (pure numpy).

A scene of ``blendtruth scene`` lies on a plane z = 0 facing +Z (world frame). A camera at
or below it sees only the plane's underside, so samplers and rigs whose cameras fall there
(zero123's negative elevations, the sphere sampler's lower half) have those cameras
mirrored across the plane and aimed at the scene centre again, image up towards +Z.
"""

from __future__ import annotations

import dataclasses

import numpy as np

from blendtruth.geometry.frames import look_at

# A camera must be this fraction of the scene's bounding radius above the plane.
MARGIN = 0.05


def above_ground(cameras: list, center: np.ndarray, radius: float) -> tuple[list, list[int]]:
    """(cameras, the indices of those moved): every camera whose centre is less than
    ``MARGIN`` × ``radius`` above z = 0 is mirrored to (x, y, max(−z, margin)) and aimed at
    ``center`` (world, the scene's bounding-sphere centre); the others are unchanged.
    ``cameras``: :class:`blendtruth.view.Camera` values (any model); intrinsics kept."""
    margin = MARGIN * radius
    center = np.asarray(center, dtype=np.float64)
    out, moved = [], []
    for k, camera in enumerate(cameras):
        eye = np.array(camera.cam_to_world[:3, 3], dtype=np.float64)
        if eye[2] >= margin:
            out.append(camera)
            continue
        eye[2] = max(-eye[2], margin)
        flat = np.hypot(*(eye[:2] - center[:2])) > 1e-9 * max(radius, 1.0)
        pose = look_at(eye, center, (0.0, 0.0, 1.0) if flat else (0.0, 1.0, 0.0))
        out.append(dataclasses.replace(camera, cam_to_world=pose))
        moved.append(k)
    return out, moved
