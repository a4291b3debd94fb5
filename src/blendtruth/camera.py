"""Pinhole intrinsics and their exact conversion to and from Blender's camera parameters."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from blendtruth.errors import BlendtruthError


@dataclass(frozen=True)
class Intrinsics:
    """Pinhole intrinsics in pixels. Pixel (u, v) covers [u, u+1) × [v, v+1), centre at
    (u + 0.5, v + 0.5); u is the column (right), v the row (down)."""

    fx: float
    fy: float
    cx: float
    cy: float
    width: int
    height: int

    def __post_init__(self) -> None:
        for name in ("fx", "fy"):
            value = getattr(self, name)
            if not (math.isfinite(value) and value > 0):
                raise BlendtruthError(f"intrinsics: {name} must be a positive number, got {value}")
        for name in ("cx", "cy"):
            if not math.isfinite(getattr(self, name)):
                raise BlendtruthError(f"intrinsics: {name} must be finite")
        for name in ("width", "height"):
            value = getattr(self, name)
            if isinstance(value, bool) or int(value) != value or value < 1:
                raise BlendtruthError(
                    f"intrinsics: {name} must be a whole number >= 1, got {value}"
                )
            object.__setattr__(self, name, int(value))
        for name in ("fx", "fy", "cx", "cy"):
            object.__setattr__(self, name, float(getattr(self, name)))

    @property
    def K(self) -> np.ndarray:  # noqa: N802
        """3×3 float64 intrinsic matrix."""
        return np.array([[self.fx, 0.0, self.cx], [0.0, self.fy, self.cy], [0.0, 0.0, 1.0]])

    @classmethod
    def from_K(cls, K, width: int, height: int) -> Intrinsics:  # noqa: N802, N803
        """From a 3×3 K; skew and a last row other than [0, 0, 1] are rejected."""
        K = np.asarray(K, dtype=np.float64)  # noqa: N806
        if K.shape != (3, 3) or not np.isfinite(K).all():
            raise BlendtruthError(f"K must be a finite 3x3 matrix, got shape {K.shape}")
        if K[0, 1] != 0 or K[1, 0] != 0:
            raise BlendtruthError(f"K has skew ({K[0, 1]:g}); only zero-skew cameras are supported")
        if not np.array_equal(K[2], [0.0, 0.0, 1.0]):
            raise BlendtruthError(f"K's last row must be [0, 0, 1], got {K[2].tolist()}")
        return cls(K[0, 0], K[1, 1], K[0, 2], K[1, 2], width, height)

    @classmethod
    def from_fov(
        cls, fov_x_deg: float, width: int, height: int, fov_y_deg: float | None = None
    ) -> Intrinsics:
        """Horizontal (and optionally vertical) field of view in degrees, centred principal
        point; square pixels unless ``fov_y_deg`` is given."""
        if not 0 < fov_x_deg < 180:
            raise BlendtruthError(f"--fov must be in (0, 180) degrees, got {fov_x_deg}")
        fx = width / (2 * math.tan(math.radians(fov_x_deg) / 2))
        fy = fx if fov_y_deg is None else height / (2 * math.tan(math.radians(fov_y_deg) / 2))
        return cls(fx, fy, width / 2, height / 2, width, height)


@dataclass(frozen=True)
class BlenderCamera:
    """Blender's camera parameters (lens and sensor in mm; shift in units of the fitted
    sensor dimension; resolution percentage is always 100)."""

    lens_mm: float
    sensor_width_mm: float
    sensor_height_mm: float
    sensor_fit: str
    shift_x: float
    shift_y: float
    resolution_x: int
    resolution_y: int
    pixel_aspect_x: float = 1.0
    pixel_aspect_y: float = 1.0


def _fit_and_view_fac(cam: BlenderCamera) -> tuple[float, float]:
    """(sensor size used in mm, size in pixels it maps to) as Blender computes them."""
    aspect_x = cam.resolution_x * cam.pixel_aspect_x
    aspect_y = cam.resolution_y * cam.pixel_aspect_y
    if cam.sensor_fit not in ("AUTO", "HORIZONTAL", "VERTICAL"):
        raise BlendtruthError(f"unknown sensor_fit {cam.sensor_fit!r}")
    horizontal = cam.sensor_fit == "HORIZONTAL" or (
        cam.sensor_fit == "AUTO" and aspect_x >= aspect_y
    )
    sensor = cam.sensor_height_mm if cam.sensor_fit == "VERTICAL" else cam.sensor_width_mm
    if horizontal:
        view_fac = float(cam.resolution_x)
    else:
        view_fac = cam.resolution_y * cam.pixel_aspect_y / cam.pixel_aspect_x
    return sensor, view_fac


def intrinsics_from_blender(cam: BlenderCamera) -> Intrinsics:
    """The pinhole K that Blender renders with for these parameters."""
    sensor, view_fac = _fit_and_view_fac(cam)
    fx = cam.lens_mm / sensor * view_fac
    fy = fx * cam.pixel_aspect_x / cam.pixel_aspect_y
    cx = cam.resolution_x / 2 - cam.shift_x * view_fac
    cy = cam.resolution_y / 2 + cam.shift_y * view_fac * cam.pixel_aspect_x / cam.pixel_aspect_y
    return Intrinsics(fx, fy, cx, cy, cam.resolution_x, cam.resolution_y)


def intrinsics_to_blender(intr: Intrinsics, sensor_width_mm: float = 36.0) -> BlenderCamera:
    """Blender parameters that render exactly ``intr`` (horizontal sensor fit)."""
    if intr.fx >= intr.fy:
        aspect_x, aspect_y = 1.0, intr.fx / intr.fy
    else:
        aspect_x, aspect_y = intr.fy / intr.fx, 1.0
    view_fac = float(intr.width)
    return BlenderCamera(
        lens_mm=intr.fx * sensor_width_mm / view_fac,
        sensor_width_mm=sensor_width_mm,
        sensor_height_mm=sensor_width_mm * intr.height / intr.width,
        sensor_fit="HORIZONTAL",
        shift_x=(intr.width / 2 - intr.cx) / view_fac,
        shift_y=(intr.cy - intr.height / 2) / (view_fac * aspect_x / aspect_y),
        resolution_x=intr.width,
        resolution_y=intr.height,
        pixel_aspect_x=aspect_x,
        pixel_aspect_y=aspect_y,
    )
