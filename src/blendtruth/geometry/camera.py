"""Pinhole intrinsics and their exact conversion to and from Blender's camera parameters.

Pixel grid: pixel (u, v) covers [u, u+1) × [v, v+1); its centre is (u + 0.5, v + 0.5);
u is the column (right), v the row (down), origin the top-left corner of the image. A
centred principal point is therefore cx = width / 2, cy = height / 2.
"""

from __future__ import annotations

import math
import numbers
from dataclasses import dataclass

import numpy as np

from blendtruth.errors import BlendtruthError

SENSOR_FITS = ("AUTO", "HORIZONTAL", "VERTICAL")


def _real(owner: str, name: str, value: object) -> float:
    """``value`` as a finite float, or a BlendtruthError naming ``owner.name``."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise BlendtruthError(f"{owner}: {name} must be a number, got {value!r}")
    if not math.isfinite(value):
        raise BlendtruthError(f"{owner}: {name} must be finite, got {value}")
    return float(value)


def _positive(owner: str, name: str, value: object) -> float:
    value = _real(owner, name, value)
    if value <= 0:
        raise BlendtruthError(f"{owner}: {name} must be a positive number, got {value}")
    return value


def _whole(owner: str, name: str, value: object) -> int:
    """A whole number >= 1; integral floats (e.g. 640.0 from JSON) are accepted."""
    ok = not isinstance(value, bool) and (
        isinstance(value, numbers.Integral)
        or (isinstance(value, numbers.Real) and float(value).is_integer())
    )
    if not ok or value < 1:
        raise BlendtruthError(f"{owner}: {name} must be a whole number >= 1, got {value!r}")
    return int(value)


@dataclass(frozen=True)
class Intrinsics:
    """Pinhole intrinsics, zero skew, all in pixels.

    ``fx``, ``fy``: focal lengths (> 0); ``cx``, ``cy``: principal point in the pixel-centre
    convention of this module (a centred one is width / 2, height / 2); ``width``,
    ``height``: image size (>= 1). A camera-frame point (x, y, z), OpenCV axes, projects to
    u = fx·x/z + cx, v = fy·y/z + cy.
    """

    fx: float
    fy: float
    cx: float
    cy: float
    width: int
    height: int

    def __post_init__(self) -> None:
        for name in ("fx", "fy"):
            object.__setattr__(self, name, _positive("intrinsics", name, getattr(self, name)))
        for name in ("cx", "cy"):
            object.__setattr__(self, name, _real("intrinsics", name, getattr(self, name)))
        for name in ("width", "height"):
            object.__setattr__(self, name, _whole("intrinsics", name, getattr(self, name)))

    @property
    def K(self) -> np.ndarray:  # noqa: N802 - K is the standard name
        """3×3 float64 [[fx, 0, cx], [0, fy, cy], [0, 0, 1]], pixels."""
        return np.array([[self.fx, 0.0, self.cx], [0.0, self.fy, self.cy], [0.0, 0.0, 1.0]])

    @property
    def K_opencv(self) -> np.ndarray:  # noqa: N802
        """3×3 float64 K for tools whose pixel centres sit at integer coordinates (OpenCV,
        Open3D): K with cx − 0.5, cy − 0.5. Our pixel (u, v), centre (u + 0.5, v + 0.5),
        is OpenCV's pixel (u, v) with centre (u, v)."""
        K = self.K  # noqa: N806
        K[0, 2] -= 0.5
        K[1, 2] -= 0.5
        return K

    def K_for(self, convention: str, near: float = 0.01, far: float = 1000.0) -> np.ndarray:  # noqa: N802
        """Intrinsics in another tool's pixel convention.

        - "blendtruth", "colmap", "nerfstudio": K (pixel centres at +0.5, 3×3).
        - "opencv", "open3d": :attr:`K_opencv` (pixel centres at integer coordinates, 3×3).
        - "opengl": the 4×4 projection matrix for OpenGL camera axes (x right, y up, z back)
          mapping the image's left/right edges to NDC x = −1/+1, its top/bottom rows to
          NDC y = +1/−1 and camera depth ``near``/``far`` (scene units, > 0) to NDC z = −1/+1.
          OpenGL's fragment centres are at +0.5 like ours, so it is built from K unchanged.
        """
        if convention in ("blendtruth", "colmap", "nerfstudio"):
            return self.K
        if convention in ("opencv", "open3d"):
            return self.K_opencv
        if convention == "opengl":
            if not (0 < near < far and math.isfinite(far)):
                raise BlendtruthError(f"opengl projection needs 0 < near < far, got {near}, {far}")
            w, h = self.width, self.height
            return np.array(
                [
                    [2 * self.fx / w, 0.0, 1 - 2 * self.cx / w, 0.0],
                    [0.0, 2 * self.fy / h, 2 * self.cy / h - 1, 0.0],
                    [0.0, 0.0, -(far + near) / (far - near), -2 * far * near / (far - near)],
                    [0.0, 0.0, -1.0, 0.0],
                ]
            )
        raise BlendtruthError(
            f"unknown intrinsics convention {convention!r}; choose from blendtruth, colmap, "
            "nerfstudio, opencv, open3d, opengl"
        )

    @classmethod
    def from_K(cls, K, width: int, height: int) -> Intrinsics:  # noqa: N802, N803
        """From a 3×3 K in pixels (pixel-centre convention above).

        Skew (K[0, 1] or K[1, 0] nonzero) and a last row other than [0, 0, 1] are rejected:
        Blender cannot render them.
        """
        K = np.asarray(K, dtype=np.float64)  # noqa: N806
        if K.shape != (3, 3) or not np.isfinite(K).all():
            raise BlendtruthError(f"K must be a finite 3x3 matrix, got shape {K.shape}")
        if K[0, 1] != 0 or K[1, 0] != 0:
            raise BlendtruthError(
                f"K has skew (K[0,1] = {K[0, 1]:g}, K[1,0] = {K[1, 0]:g}); "
                "only zero-skew cameras are supported"
            )
        if not np.array_equal(K[2], [0.0, 0.0, 1.0]):
            raise BlendtruthError(
                f"K's last row must be [0, 0, 1], got {K[2].tolist()}; divide K by K[2, 2] "
                "if it is only scaled"
            )
        return cls(K[0, 0], K[1, 1], K[0, 2], K[1, 2], width, height)

    @classmethod
    def from_fov(
        cls, fov_x_deg: float, width: int, height: int, fov_y_deg: float | None = None
    ) -> Intrinsics:
        """Full horizontal (and optionally vertical) field of view in degrees across the
        image edges, principal point at the image centre; square pixels (fy = fx) unless
        ``fov_y_deg`` is given."""
        width = _whole("intrinsics", "width", width)
        height = _whole("intrinsics", "height", height)
        fovs = {"--fov": fov_x_deg, "fov_y_deg": fov_y_deg}
        for name, fov in fovs.items():
            if fov is None:
                continue
            fov = _real("intrinsics", name, fov)
            if not 0 < fov < 180:
                raise BlendtruthError(f"{name} must be in (0, 180) degrees, got {fov}")
        fx = width / (2 * math.tan(math.radians(fov_x_deg) / 2))
        fy = fx if fov_y_deg is None else height / (2 * math.tan(math.radians(fov_y_deg) / 2))
        return cls(fx, fy, width / 2, height / 2, width, height)


@dataclass(frozen=True)
class BlenderCamera:
    """Blender's perspective camera parameters (resolution percentage is always 100).

    ``lens_mm``: focal length in mm; ``sensor_width_mm``/``sensor_height_mm``: sensor size
    in mm; ``sensor_fit``: 'AUTO' | 'HORIZONTAL' | 'VERTICAL'; ``shift_x``/``shift_y``:
    lens shift in units of the fitted image dimension (Blender's y is up);
    ``resolution_x``/``resolution_y``: image size in pixels; ``pixel_aspect_x``/
    ``pixel_aspect_y``: Blender's pixel aspect ratio (Blender requires both >= 1).
    """

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

    def __post_init__(self) -> None:
        owner = "Blender camera"
        for name in ("lens_mm", "sensor_width_mm", "sensor_height_mm"):
            object.__setattr__(self, name, _positive(owner, name, getattr(self, name)))
        for name in ("pixel_aspect_x", "pixel_aspect_y"):
            object.__setattr__(self, name, _positive(owner, name, getattr(self, name)))
        for name in ("shift_x", "shift_y"):
            object.__setattr__(self, name, _real(owner, name, getattr(self, name)))
        for name in ("resolution_x", "resolution_y"):
            object.__setattr__(self, name, _whole(owner, name, getattr(self, name)))
        if self.sensor_fit not in SENSOR_FITS:
            raise BlendtruthError(
                f"{owner}: sensor_fit must be one of {', '.join(SENSOR_FITS)}, "
                f"got {self.sensor_fit!r}"
            )


def _sensor_and_view_fac(cam: BlenderCamera) -> tuple[float, float]:
    """(sensor size used in mm, the pixel extent it spans) as Blender computes them.

    The fit decides the pixel extent; the sensor size follows ``sensor_fit`` literally, so
    'AUTO' uses sensor_width even when the image is fitted vertically (portrait).
    """
    aspect_x = cam.resolution_x * cam.pixel_aspect_x
    aspect_y = cam.resolution_y * cam.pixel_aspect_y
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
    """The pinhole intrinsics Blender renders with for ``cam`` (pixel-centre convention)."""
    sensor, view_fac = _sensor_and_view_fac(cam)
    aspect = cam.pixel_aspect_x / cam.pixel_aspect_y
    fx = cam.lens_mm / sensor * view_fac
    fy = fx * aspect
    cx = cam.resolution_x / 2 - cam.shift_x * view_fac
    # Blender's shift_y points up, our v points down.
    cy = cam.resolution_y / 2 + cam.shift_y * view_fac * aspect
    return Intrinsics(fx, fy, cx, cy, cam.resolution_x, cam.resolution_y)


def intrinsics_to_blender(intr: Intrinsics, sensor_width_mm: float = 36.0) -> BlenderCamera:
    """Blender parameters that render exactly ``intr``.

    Horizontal sensor fit with the given sensor width (mm); sensor_height_mm =
    sensor_width_mm · height / width is informational (unused by a horizontal fit). fx ≠ fy
    becomes a pixel aspect ratio, with the smaller aspect set to 1 as Blender requires.
    """
    sensor_width_mm = _positive("Blender camera", "sensor_width_mm", sensor_width_mm)
    if intr.fx >= intr.fy:
        aspect_x, aspect_y = 1.0, intr.fx / intr.fy
    else:
        aspect_x, aspect_y = intr.fy / intr.fx, 1.0
    view_fac = float(intr.width)  # horizontal fit
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
