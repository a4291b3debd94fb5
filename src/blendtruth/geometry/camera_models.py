"""Camera models as values: each one's exact rays, projection, validity and names in other
tools (pure numpy; docs/conventions.md#camera-models).

A :class:`CameraModel` is bound to its :class:`~blendtruth.geometry.camera.Intrinsics`
(and a model's own parameters, e.g. the fisheye's field of view). Every consumer - the ray
caster, Blender's camera placement, ``check``, correspondence, point fusion and the
exports - asks the model instead of testing its name, so a new model (a distorted lens,
say) is one new class here plus its Blender counterpart.

Frames and units: camera frame with OpenCV axes (x right, y down, z forward); pixel
coordinates (u, v) continuous with pixel (c, r)'s centre at (c + 0.5, r + 0.5); ``depth``
is what the model's ``depth`` pass holds (planar camera z for pinhole and ortho, the ray
distance for panoramic models), scene units.
"""

from __future__ import annotations

import math
from dataclasses import KW_ONLY, dataclass
from typing import ClassVar

import numpy as np

from blendtruth.errors import BlendtruthError
from blendtruth.geometry.camera import Intrinsics


class CannotExpress(BlendtruthError):
    """Another tool has no camera model equal to this one (the message says which, why)."""


def _uv(uv: np.ndarray) -> np.ndarray:
    uv = np.asarray(uv, dtype=np.float64)
    if uv.ndim < 1 or uv.shape[-1] != 2:
        raise BlendtruthError(f"pixel coordinates must have shape (..., 2), got {uv.shape}")
    return uv


def _points(points: np.ndarray) -> np.ndarray:
    points = np.asarray(points, dtype=np.float64)
    if points.ndim < 1 or points.shape[-1] != 3:
        raise BlendtruthError(f"points must have shape (..., 3), got {points.shape}")
    return points


@dataclass(frozen=True)
class CameraModel:
    """Base of every model; ``intrinsics`` as documented per model.

    ``rays(uv)``: (origins ...×3, unit directions ...×3, valid ...) in the camera frame for
    pixel coordinates ``uv`` (...×2). ``project(points)``: (uv ...×2, depth ...,
    valid ...) for camera-frame points (...×3); where not valid, uv and depth are
    meaningless (the model cannot see the point). ``project(o + t·d)`` gives back uv for
    every valid ray and t > 0, to float64 rounding.
    """

    intrinsics: Intrinsics
    _: KW_ONLY
    #: Lens distortion coefficients in the model's own order; every model so far has none
    #: (a distorted model, e.g. OpenCV's, is a new class that reads them).
    distortion: tuple[float, ...] = ()
    #: When the camera saw the scene (seconds; None for a still), for frames over time.
    time: float | None = None
    name: ClassVar[str] = ""
    #: True where the ``depth`` pass holds the ray distance (no image plane to measure from).
    depth_is_distance: ClassVar[bool] = False

    def __post_init__(self) -> None:
        if self.distortion:
            raise BlendtruthError(
                f"camera model {self.name!r} takes no distortion coefficients, got "
                f"{list(self.distortion)}"
            )
        if self.time is not None and not math.isfinite(self.time):
            raise BlendtruthError(f"camera time must be finite seconds, got {self.time}")

    def rays(self, uv: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        raise NotImplementedError

    def project(self, points: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        raise NotImplementedError

    def pixel_grid(self) -> np.ndarray:
        """H×W×2 pixel-centre coordinates (u = column + 0.5, v = row + 0.5)."""
        intr = self.intrinsics
        u, v = np.meshgrid(np.arange(intr.width) + 0.5, np.arange(intr.height) + 0.5)
        return np.stack([u, v], axis=-1)

    def depth_of(self, origins: np.ndarray, dirs: np.ndarray, t: np.ndarray) -> np.ndarray:
        """The ``depth`` pass value of the hit at ray parameter ``t`` (unit ``dirs``)."""
        if self.depth_is_distance:
            return t
        return origins[..., 2] + t * dirs[..., 2]

    def meta(self) -> dict:
        """What a view's meta says about this model (nothing extra for pinhole)."""
        return {}

    def colmap(self) -> tuple[str, list[float]]:
        """COLMAP's camera model name and parameters (COLMAP puts pixel centres at +0.5,
        as we do), or :class:`CannotExpress`."""
        raise CannotExpress(f"COLMAP has no camera model equal to blendtruth's {self.name!r}")

    def nerfstudio(self) -> dict:
        """The nerfstudio transforms.json camera fields, or :class:`CannotExpress`."""
        raise CannotExpress(f"nerfstudio has no camera model equal to blendtruth's {self.name!r}")


@dataclass(frozen=True)
class Pinhole(CameraModel):
    """o = 0, d = K⁻¹(u, v, 1) normalised; depth = camera z."""

    name: ClassVar[str] = "pinhole"

    def rays(self, uv):
        uv, k = _uv(uv), self.intrinsics
        d = np.stack(
            [(uv[..., 0] - k.cx) / k.fx, (uv[..., 1] - k.cy) / k.fy, np.ones(uv.shape[:-1])], -1
        )
        d /= np.linalg.norm(d, axis=-1, keepdims=True)
        return np.zeros_like(d), d, np.ones(uv.shape[:-1], dtype=bool)

    def project(self, points):
        p, k = _points(points), self.intrinsics
        z = p[..., 2]
        valid = z > 0
        safe = np.where(valid, z, 1.0)
        uv = np.stack([k.fx * p[..., 0] / safe + k.cx, k.fy * p[..., 1] / safe + k.cy], -1)
        return uv, z, valid

    def colmap(self):
        k = self.intrinsics
        return "PINHOLE", [k.fx, k.fy, k.cx, k.cy]

    def nerfstudio(self):
        k = self.intrinsics
        return {"camera_model": "OPENCV", "fl_x": k.fx, "fl_y": k.fy, "cx": k.cx, "cy": k.cy}


@dataclass(frozen=True)
class Ortho(CameraModel):
    """o = ((u − cx)/fx, (v − cy)/fy, 0), d = (0, 0, 1); fx = fy pixels per scene unit;
    depth = the distance from the image plane z = 0 along the parallel rays."""

    name: ClassVar[str] = "ortho"

    def __post_init__(self) -> None:
        super().__post_init__()
        k = self.intrinsics
        if not math.isclose(k.fx, k.fy, rel_tol=1e-12):
            raise BlendtruthError(
                f"--camera ortho needs square pixels (fx = fy), got {k.fx}, {k.fy}"
            )

    def rays(self, uv):
        uv, k = _uv(uv), self.intrinsics
        zeros = np.zeros(uv.shape[:-1])
        o = np.stack([(uv[..., 0] - k.cx) / k.fx, (uv[..., 1] - k.cy) / k.fy, zeros], -1)
        d = np.stack([zeros, zeros, np.ones_like(zeros)], -1)
        return o, d, np.ones(uv.shape[:-1], dtype=bool)

    def project(self, points):
        p, k = _points(points), self.intrinsics
        uv = np.stack([k.fx * p[..., 0] + k.cx, k.fy * p[..., 1] + k.cy], -1)
        return uv, p[..., 2], p[..., 2] > 0

    def meta(self):
        size = 1.0 / self.intrinsics.fx
        return {
            "camera_model": "ortho",
            "pixel_size": size,
            "ortho_scale": self.intrinsics.width * size,
            "depth_kind": "distance from the image plane along the parallel rays",
        }


@dataclass(frozen=True)
class Equirect(CameraModel):
    """Longitude λ = (u − cx)/fx (0 ahead, +π/2 towards +x), latitude φ = (cy − v)/fy
    (+π/2 up, −y), with fx = W/2π, fy = H/π and a centred principal point; d = (cos φ sin λ,
    −sin φ, cos φ cos λ); depth = ray distance."""

    name: ClassVar[str] = "equirect"
    depth_is_distance: ClassVar[bool] = True

    def __post_init__(self) -> None:
        super().__post_init__()
        _require(self, equirect_intrinsics(self.intrinsics.width, self.intrinsics.height))

    def rays(self, uv):
        uv, k = _uv(uv), self.intrinsics
        lon = (uv[..., 0] - k.cx) / k.fx
        lat = (k.cy - uv[..., 1]) / k.fy
        d = np.stack([np.cos(lat) * np.sin(lon), -np.sin(lat), np.cos(lat) * np.cos(lon)], -1)
        return np.zeros_like(d), d, np.ones(uv.shape[:-1], dtype=bool)

    def project(self, points):
        p, k = _points(points), self.intrinsics
        r = np.linalg.norm(p, axis=-1)
        valid = r > 0
        lon = np.arctan2(p[..., 0], p[..., 2])
        lat = np.arcsin(np.clip(-p[..., 1] / np.where(valid, r, 1.0), -1.0, 1.0))
        uv = np.stack([k.fx * lon + k.cx, k.cy - k.fy * lat], -1)
        return uv, r, valid

    def meta(self):
        return {
            "camera_model": "equirect",
            "depth_kind": "ray distance (depth = distance for panoramic cameras)",
        }

    def nerfstudio(self):
        # nerfstudio's EQUIRECTANGULAR (Cameras.generate_rays) takes fx = fy = H = W/2:
        # longitude -π (u - cx)/fx and polar angle π(1/2 + (v - cy)/fy) in OpenGL axes,
        # which are our λ and φ exactly, with unit rays (depth = the ray distance).
        w, h = self.intrinsics.width, self.intrinsics.height
        if w != 2 * h:
            raise CannotExpress(
                f"nerfstudio's EQUIRECTANGULAR camera needs width = 2 x height, got {w}x{h} "
                "(camera equirect)"
            )
        return {"camera_model": "EQUIRECTANGULAR", "fl_x": float(h), "fl_y": float(h),
                "cx": w / 2, "cy": h / 2}  # fmt: skip


@dataclass(frozen=True)
class Fisheye(CameraModel):
    """Equidistant, as Cycles renders it: a = (u − cx)/fx, b = (v − cy)/fy, θ = √(a² + b²),
    d = (sin θ · a/θ, sin θ · b/θ, cos θ), fx = W/fov, fy = H/fov (pixels per radian),
    centred principal point; pixels with θ > fov/2 see nothing; depth = ray distance.
    For fov <= 180° it is OpenCV's (and COLMAP's OPENCV_FISHEYE) model with k1..k4 = 0."""

    fov_deg: float = 180.0
    name: ClassVar[str] = "fisheye"
    depth_is_distance: ClassVar[bool] = True

    def __post_init__(self) -> None:
        super().__post_init__()
        _require(self, fisheye_intrinsics(self.intrinsics.width, self.intrinsics.height,
                                          self.fov_deg))  # fmt: skip

    @property
    def max_theta(self) -> float:
        return math.radians(self.fov_deg) / 2

    def rays(self, uv):
        uv, k = _uv(uv), self.intrinsics
        a, b = (uv[..., 0] - k.cx) / k.fx, (uv[..., 1] - k.cy) / k.fy
        theta = np.hypot(a, b)
        s = np.sin(theta) / np.where(theta > 0, theta, 1.0)
        s = np.where(theta > 0, s, 1.0)
        d = np.stack([s * a, s * b, np.cos(theta)], -1)
        return np.zeros_like(d), d, theta <= self.max_theta

    def project(self, points):
        p, k = _points(points), self.intrinsics
        r = np.linalg.norm(p, axis=-1)
        rxy = np.hypot(p[..., 0], p[..., 1])
        theta = np.arctan2(rxy, p[..., 2])
        scale = theta / np.where(rxy > 0, rxy, 1.0)
        uv = np.stack([k.fx * scale * p[..., 0] + k.cx, k.fy * scale * p[..., 1] + k.cy], -1)
        return uv, r, (r > 0) & (theta <= self.max_theta)

    def meta(self):
        return {
            "camera_model": "fisheye",
            "depth_kind": "ray distance (depth = distance for panoramic cameras)",
            "fisheye_fov_deg": self.fov_deg,
            "fisheye": "equidistant; = OpenCV fisheye with k1..k4 = 0 for fov <= 180",
        }

    def _opencv(self) -> None:
        if self.fov_deg > 180:
            raise CannotExpress(
                f"a {self.fov_deg:g} deg fisheye sees behind its image plane; OpenCV's "
                "fisheye model (COLMAP OPENCV_FISHEYE, nerfstudio) stops at 180 deg"
            )

    def colmap(self):
        self._opencv()
        k = self.intrinsics
        return "OPENCV_FISHEYE", [k.fx, k.fy, k.cx, k.cy, 0.0, 0.0, 0.0, 0.0]

    def nerfstudio(self):
        self._opencv()
        k = self.intrinsics
        return {"camera_model": "OPENCV_FISHEYE", "fl_x": k.fx, "fl_y": k.fy, "cx": k.cx,
                "cy": k.cy, "k1": 0.0, "k2": 0.0, "k3": 0.0, "k4": 0.0}  # fmt: skip


MODELS: dict[str, type[CameraModel]] = {m.name: m for m in (Pinhole, Ortho, Equirect, Fisheye)}


def equirect_intrinsics(width: int, height: int) -> Intrinsics:
    """fx = W/2π, fy = H/π (pixels per radian of longitude/latitude), centred."""
    return Intrinsics(width / (2 * math.pi), height / math.pi, width / 2, height / 2, width,
                      height)  # fmt: skip


def fisheye_intrinsics(width: int, height: int, fov_deg: float | None) -> Intrinsics:
    """fx = W/fov, fy = H/fov (pixels per radian of θ), centred."""
    if not (fov_deg is not None and math.isfinite(fov_deg) and 0 < fov_deg <= 360):
        raise BlendtruthError(f"--fisheye-fov must be in (0, 360] degrees, got {fov_deg}")
    fov = math.radians(fov_deg)
    return Intrinsics(width / fov, height / fov, width / 2, height / 2, width, height)


def _require(model: CameraModel, want: Intrinsics) -> None:
    got = model.intrinsics
    if not np.allclose((got.fx, got.fy, got.cx, got.cy), (want.fx, want.fy, want.cx, want.cy),
                       rtol=1e-9, atol=1e-9):  # fmt: skip
        raise BlendtruthError(
            f"--camera {model.name}: intrinsics must be {want.fx:g}, {want.fy:g}, {want.cx:g}, "
            f"{want.cy:g} at {got.width}x{got.height} (Cycles renders no other)"
        )


def camera_model(name: str, intrinsics: Intrinsics, fov_deg: float | None = None) -> CameraModel:
    """The model called ``name`` bound to ``intrinsics`` (``fov_deg``: the fisheye's full
    field of view in degrees), or a one-line error."""
    if name not in MODELS:
        raise BlendtruthError(f"--camera must be one of {', '.join(MODELS)}; got {name!r}")
    if name == "fisheye":
        return Fisheye(intrinsics, fov_deg=fov_deg)  # type: ignore[arg-type] - None is refused there
    return MODELS[name](intrinsics)
