"""Camera placement around a model: orbit, Fibonacci sphere/hemisphere, random, from file.

Every sampled camera looks at ``center`` with world +Z as up (the caller rotates the set
for a model whose up axis differs). Directions are unit vectors from the centre to the
camera; azimuth 0 is the +X axis, counter-clockwise seen from +Z.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np

from blendtruth.camera import Intrinsics
from blendtruth.errors import BlendtruthError
from blendtruth.frames import look_at
from blendtruth.view import Camera

SAMPLERS = ("orbit", "sphere", "hemisphere", "random", "file")
_GOLDEN_ANGLE = math.pi * (3.0 - math.sqrt(5.0))


def check_options(
    sampler: str, n_views: int, radius: float | None, fill: float, elevation_deg: float
) -> None:
    """Raise BlendtruthError naming the option if a sampler option is out of range."""
    if sampler not in SAMPLERS:
        raise BlendtruthError(f"--sampler must be one of {', '.join(SAMPLERS)}; got {sampler!r}")
    if isinstance(n_views, bool) or not isinstance(n_views, int) or n_views < 1:
        raise BlendtruthError(f"--views must be a whole number >= 1, got {n_views!r}")
    if radius is not None and not radius > 0:
        raise BlendtruthError(f"--radius must be > 0, got {radius}")
    if not 0 < fill <= 1:
        raise BlendtruthError(f"--fill must be in (0, 1], got {fill}")
    if not -90 <= elevation_deg <= 90:
        raise BlendtruthError(f"--elevation must be in [-90, 90] degrees, got {elevation_deg}")


def auto_distance(intr: Intrinsics, object_radius: float, fill: float = 0.8) -> float:
    """Camera distance at which a sphere of ``object_radius`` around the look-at point fills
    ``fill`` of the smallest half-extent of the image (measured from the principal point),
    so the whole sphere is in frame from any direction."""
    if not 0 < fill <= 1:
        raise BlendtruthError(f"--fill must be in (0, 1], got {fill}")
    if not object_radius > 0:
        raise BlendtruthError(f"object radius must be > 0, got {object_radius}")
    half_tan = min(
        intr.cx / intr.fx,
        (intr.width - intr.cx) / intr.fx,
        intr.cy / intr.fy,
        (intr.height - intr.cy) / intr.fy,
    )
    if half_tan <= 0:
        raise BlendtruthError("the principal point lies outside the image")
    angular_radius = math.atan(fill * half_tan)
    return object_radius / math.sin(angular_radius)


def directions(sampler: str, n: int, elevation_deg: float = 30.0, seed: int = 0) -> np.ndarray:
    """n×3 unit directions from the centre to the cameras."""
    i = np.arange(n) + 0.5
    if sampler == "orbit":
        az = 2 * np.pi * np.arange(n) / n
        el = math.radians(elevation_deg)
        return np.column_stack(
            [math.cos(el) * np.cos(az), math.cos(el) * np.sin(az), np.full(n, math.sin(el))]
        )
    if sampler in ("sphere", "hemisphere"):
        z = 1 - 2 * i / n if sampler == "sphere" else 1 - i / n
        r = np.sqrt(np.clip(1 - z * z, 0, None))
        phi = _GOLDEN_ANGLE * np.arange(n)
        return np.column_stack([r * np.cos(phi), r * np.sin(phi), z])
    if sampler == "random":
        v = np.random.default_rng(seed).normal(size=(n, 3))
        return v / np.linalg.norm(v, axis=1, keepdims=True)
    raise BlendtruthError(f"--sampler must be one of {', '.join(SAMPLERS)}; got {sampler!r}")


def sample_cameras(
    sampler: str,
    n_views: int,
    intr: Intrinsics,
    center=(0.0, 0.0, 0.0),
    radius: float | None = None,
    object_radius: float = 1.0,
    fill: float = 0.8,
    elevation_deg: float = 30.0,
    seed: int = 0,
    path: str | Path | None = None,
) -> list[Camera]:
    """Cameras for ``sampler``; ``radius`` is the camera distance from ``center``
    (default: :func:`auto_distance`). The "file" sampler reads every camera of ``path``
    (our cameras.json or a NeRF transforms.json) and ignores the other options."""
    if sampler == "file":
        if path is None:
            raise BlendtruthError("--sampler file needs --cameras FILE")
        from blendtruth.writers.nerf import read_cameras

        return read_cameras(Path(path))
    check_options(sampler, n_views, radius, fill, elevation_deg)
    distance = radius if radius is not None else auto_distance(intr, object_radius, fill)
    center = np.asarray(center, dtype=np.float64)
    cameras = []
    for d in directions(sampler, n_views, elevation_deg, seed):
        # Straight above or below, world Z cannot be "up" in the image: use +Y instead.
        up = (0.0, 0.0, 1.0) if abs(d[2]) < 1 - 1e-9 else (0.0, 1.0, 0.0)
        cameras.append(Camera(intr, look_at(center + distance * d, center, up)))
    return cameras
