"""Camera placement around a model: orbit, Fibonacci sphere/hemisphere, random, from file.

Every sampled camera sits at ``center + distance * d`` for a unit direction ``d`` and looks
at ``center`` with world +Z as up (the caller rotates the set for a model whose up axis
differs). Straight above or below the centre, where +Z cannot be the image's up, world +Y
is used instead. Azimuth 0 is the +X axis, counter-clockwise seen from +Z; elevation is
measured from the XY plane towards +Z. See docs/cameras.md.
"""

from __future__ import annotations

import math

import numpy as np

from blendtruth.errors import BlendtruthError
from blendtruth.geometry.camera import Intrinsics
from blendtruth.geometry.frames import look_at
from blendtruth.view import Camera

SAMPLERS = ("orbit", "sphere", "hemisphere", "random", "file")
_GOLDEN_ANGLE = math.pi * (3.0 - math.sqrt(5.0))
# Below this horizontal component a direction counts as a pole: +Z would be (nearly)
# parallel to the viewing direction (look_at refuses below 1e-9), so up is taken from +Y.
_POLE = 1e-6


def check_options(
    sampler: str, n_views: int, radius: float | None, fill: float, elevation_deg: float
) -> None:
    """Raise BlendtruthError naming the option if a sampler option is out of range."""
    if sampler not in SAMPLERS:
        raise BlendtruthError(f"--sampler must be one of {', '.join(SAMPLERS)}; got {sampler!r}")
    if isinstance(n_views, bool) or not isinstance(n_views, int) or n_views < 1:
        raise BlendtruthError(f"--views must be a whole number >= 1, got {n_views!r}")
    if radius is not None and not (math.isfinite(radius) and radius > 0):
        raise BlendtruthError(f"--radius must be a number > 0, got {radius}")
    if not 0 < fill <= 1:
        raise BlendtruthError(f"--fill must be in (0, 1], got {fill}")
    if not -90 <= elevation_deg <= 90:
        raise BlendtruthError(f"--elevation must be in [-90, 90] degrees, got {elevation_deg}")


def auto_distance(intr: Intrinsics, object_radius: float, fill: float = 0.8) -> float:
    """Distance from the look-at point at which a sphere of ``object_radius`` (scene units)
    around it fills ``fill`` of the image's smallest half-extent.

    The half-extents are measured from the principal point to the four image borders
    (cx, W - cx, cy, H - cy, each divided by its focal length). The sphere's silhouette is
    a cone of half-angle asin(object_radius / d) around the optical axis; it is set to
    atan(fill * smallest half-extent), so the whole sphere is in frame from any direction.
    Returns d in scene units.
    """
    if not 0 < fill <= 1:
        raise BlendtruthError(f"--fill must be in (0, 1], got {fill}")
    if not (math.isfinite(object_radius) and object_radius > 0):
        raise BlendtruthError(f"object_radius must be a number > 0, got {object_radius}")
    half_tan = min(
        intr.cx / intr.fx,
        (intr.width - intr.cx) / intr.fx,
        intr.cy / intr.fy,
        (intr.height - intr.cy) / intr.fy,
    )
    if half_tan <= 0:
        raise BlendtruthError(
            f"intrinsics: the principal point ({intr.cx:g}, {intr.cy:g}) is not inside the "
            f"{intr.width}x{intr.height} image, so no distance frames the object; give --radius"
        )
    return object_radius / math.sin(math.atan(fill * half_tan))


def directions(sampler: str, n: int, elevation_deg: float = 30.0, seed: int = 0) -> np.ndarray:
    """n×3 unit directions (world frame) from the centre to the cameras.

    - orbit: azimuths 2πk/n starting at +X, all at ``elevation_deg``;
    - sphere: Fibonacci lattice, z = 1 - (2k + 1)/n (equal-area bands), azimuth k × golden
      angle;
    - hemisphere: the same over z > 0, z = 1 - (k + 1/2)/n;
    - random: uniform on the sphere from ``numpy.random.default_rng(seed)``.
    """
    k = np.arange(n)
    if sampler == "orbit":
        az = 2 * np.pi * k / n
        el = math.radians(elevation_deg)
        return np.column_stack(
            [math.cos(el) * np.cos(az), math.cos(el) * np.sin(az), np.full(n, math.sin(el))]
        )
    if sampler in ("sphere", "hemisphere"):
        z = 1 - (2 * k + 1) / n if sampler == "sphere" else 1 - (k + 0.5) / n
        r = np.sqrt(np.clip(1 - z * z, 0, None))
        phi = _GOLDEN_ANGLE * k
        return np.column_stack([r * np.cos(phi), r * np.sin(phi), z])
    if sampler == "random":
        # Isotropic Gaussian vectors, normalised, are uniform on the sphere.
        v = np.random.default_rng(seed).normal(size=(n, 3))
        return v / np.linalg.norm(v, axis=1, keepdims=True)
    raise BlendtruthError(
        f"--sampler must be one of orbit, sphere, hemisphere, random here; got {sampler!r}"
    )


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
) -> list[Camera]:
    """Cameras with intrinsics ``intr`` looking at ``center`` (3, world frame, scene units).

    ``radius`` is the camera distance from ``center``; by default :func:`auto_distance`
    of ``object_radius`` and ``fill``. ``seed`` only affects "random".

    The "file" sampler's cameras are read from the file by
    :func:`blendtruth.multiview.file_cameras` (I/O does not belong in this pure layer).
    """
    if sampler == "file":
        # Reading a camera file is I/O above this pure layer: multiview.plan_cameras does it.
        raise BlendtruthError("--sampler file: the cameras come from --cameras FILE")
    check_options(sampler, n_views, radius, fill, elevation_deg)
    target = np.asarray(center, dtype=np.float64)
    if target.shape != (3,) or not np.isfinite(target).all():
        raise BlendtruthError(f"center must be 3 finite numbers, got {center!r}")
    distance = radius if radius is not None else auto_distance(intr, object_radius, fill)
    cameras = []
    for d in directions(sampler, n_views, elevation_deg, seed):
        up = (0.0, 0.0, 1.0) if math.hypot(d[0], d[1]) > _POLE else (0.0, 1.0, 0.0)
        cameras.append(Camera(intr, look_at(target + distance * d, target, up)))
    return cameras
