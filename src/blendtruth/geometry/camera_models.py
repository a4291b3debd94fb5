"""The camera-model type: one class per projection model (pure numpy).

Each model maps continuous pixel coordinates (pixel-centre convention: the centre of
column i, row j is (i + 0.5, j + 0.5)) to camera-frame rays (OpenCV axes: x right, y down,
z forward) and camera-frame points back to pixels. The rays are the documented ones of
:mod:`blendtruth.geometry.projection` and docs/conventions.md#camera-models, computed
with the same operations so they stay bit-identical; :meth:`CameraModel.project` is
their exact inverse (round trip to float64 rounding).

Adding a model (e.g. a distorted lens) means one new subclass registered in
:data:`MODELS`: its ``rays``, ``project``, ``meta`` and what COLMAP and nerfstudio call it.
Every consumer goes through these methods, or refuses the model with
:class:`CannotExpress` (one line naming the model and why).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import ClassVar

import numpy as np

from blendtruth.errors import BlendtruthError
from blendtruth.geometry.camera import Intrinsics


class CannotExpress(BlendtruthError):
    """A format or consumer cannot represent this camera model (the message says why)."""


def _pixels(pixels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(u, v) float64 arrays of shape (...) from ``pixels`` (..., 2)."""
    p = np.asarray(pixels, dtype=np.float64)
    if p.ndim < 1 or p.shape[-1] != 2:
        raise BlendtruthError(f"pixels must have shape (..., 2), got {p.shape}")
    return p[..., 0], p[..., 1]


def _points(points: np.ndarray) -> np.ndarray:
    p = np.asarray(points, dtype=np.float64)
    if p.ndim < 1 or p.shape[-1] != 3:
        raise BlendtruthError(f"points must have shape (..., 3), got {p.shape}")
    return p


@dataclass(frozen=True)
class CameraModel:
    """A camera's projection: ``intrinsics`` (pixels, pixel-centre convention), the
    lens ``distortion`` coefficients (empty for every model so far) and the ``time``
    (seconds, None for a still) the camera was exposed at.

    Subclasses define :meth:`rays` and :meth:`project`; ``ray_distance_depth`` says
    whether the model's ``depth`` is the Euclidean ray distance (panoramic models, which
    have no image plane) rather than the camera-frame z.
    """

    intrinsics: Intrinsics
    distortion: tuple[float, ...] = ()
    time: float | None = None

    name: ClassVar[str] = ""
    ray_distance_depth: ClassVar[bool] = False

    def __post_init__(self) -> None:
        if self.distortion:
            raise BlendtruthError(
                f"camera model {self.name!r} takes no distortion coefficients, got "
                f"{list(self.distortion)}"
            )

    # -- geometry ---------------------------------------------------------------------
    def rays(self, pixels: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(origins (..., 3), unit directions (..., 3), valid (...) bool), camera frame,
        float64, for continuous pixel coordinates ``pixels`` (..., 2). Invalid pixels
        see nothing (their direction is still finite)."""
        raise NotImplementedError

    def project(self, points_cam: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(uv (..., 2) pixels, depth (...), valid (...) bool) for camera-frame points
        (..., 3): the exact inverse of :meth:`rays`. ``depth`` is what the model's depth
        pass holds (camera z, or the ray distance when ``ray_distance_depth``); uv and
        depth are meaningless where not valid."""
        raise NotImplementedError

    def grid_rays(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """:meth:`rays` for every pixel centre: (H×W×3, H×W×3, H×W)."""
        intr = self.intrinsics
        u, v = np.meshgrid(np.arange(intr.width) + 0.5, np.arange(intr.height) + 0.5)
        return self.rays(np.stack([u, v], axis=-1))

    def ray_length(self, depth: np.ndarray, directions: np.ndarray) -> np.ndarray:
        """Distance along the unit ``directions`` (..., 3) for the model's ``depth`` (...)."""
        depth = np.asarray(depth, dtype=np.float64)
        if self.ray_distance_depth:
            return depth
        return depth / directions[..., 2]

    # -- description ------------------------------------------------------------------
    def meta(self) -> dict:
        """What a view's meta says about the model (today's keys; nothing for pinhole)."""
        return {"camera_model": self.name}

    def colmap(self) -> tuple[str, list[float]]:
        """(COLMAP camera model name, its params in COLMAP's order), or CannotExpress."""
        raise CannotExpress(f"COLMAP cannot express the {self.name} camera model")

    def nerfstudio(self) -> str:
        """nerfstudio's ``camera_model`` string, or CannotExpress. Only pinhole is written:
        nerfstudio's own fisheye and equirectangular conventions are not verified here
        against a nerfstudio reader, so they are refused rather than guessed."""
        raise CannotExpress(
            f"nerfstudio transforms.json is written for pinhole (OPENCV) cameras only, not "
            f"the {self.name} camera model (see cameras.json, docs/conventions.md#camera-models)"
        )

    def check_intrinsics(self) -> None:
        """Raise BlendtruthError when the intrinsics are not ones this model can have."""


class Pinhole(CameraModel):
    """o = 0, d = K⁻¹(u, v, 1) normalised; depth = camera z; valid: z > 0."""

    name = "pinhole"

    def rays(self, pixels):
        i = self.intrinsics
        u, v = _pixels(pixels)
        d = np.stack([(u - i.cx) / i.fx, (v - i.cy) / i.fy, np.ones_like(u)], axis=-1)
        return (np.zeros_like(d), d / np.linalg.norm(d, axis=-1, keepdims=True),
                np.ones(u.shape, dtype=bool))  # fmt: skip

    def project(self, points_cam):
        i, p = self.intrinsics, _points(points_cam)
        z = p[..., 2]
        with np.errstate(divide="ignore", invalid="ignore"):
            uv = np.stack([i.fx * p[..., 0] / z + i.cx, i.fy * p[..., 1] / z + i.cy], axis=-1)
        return uv, z, z > 0

    def meta(self) -> dict:
        return {}

    def colmap(self):
        i = self.intrinsics
        return "PINHOLE", [i.fx, i.fy, i.cx, i.cy]

    def nerfstudio(self) -> str:
        return "OPENCV"


class Ortho(CameraModel):
    """o = ((u − cx)/fx, (v − cy)/fy, 0), d = (0, 0, 1); fx = fy pixels per scene unit;
    depth = camera z (distance from the image plane); valid: z > 0."""

    name = "ortho"

    def rays(self, pixels):
        i = self.intrinsics
        u, v = _pixels(pixels)
        zeros, ones = np.zeros_like(u), np.ones_like(u)
        o = np.stack([(u - i.cx) / i.fx, (v - i.cy) / i.fy, zeros], axis=-1)
        return o, np.stack([zeros, zeros, ones], axis=-1), np.ones(u.shape, dtype=bool)

    def project(self, points_cam):
        i, p = self.intrinsics, _points(points_cam)
        uv = np.stack([i.fx * p[..., 0] + i.cx, i.fy * p[..., 1] + i.cy], axis=-1)
        return uv, p[..., 2], p[..., 2] > 0

    def meta(self) -> dict:
        size = 1.0 / self.intrinsics.fx
        return {"camera_model": "ortho", "pixel_size": size,
                "ortho_scale": self.intrinsics.width * size,
                "depth_kind": "distance from the image plane along the parallel rays"}  # fmt: skip

    def colmap(self):
        raise CannotExpress("COLMAP has no orthographic camera model (camera ortho)")

    def check_intrinsics(self) -> None:
        i = self.intrinsics
        if not math.isclose(i.fx, i.fy, rel_tol=1e-12):
            raise BlendtruthError(
                f"--camera ortho needs square pixels (fx = fy), got {i.fx}, {i.fy}"
            )


_PANORAMIC_DEPTH = "ray distance (depth = distance for panoramic cameras)"


def _centred(model: str, intr: Intrinsics, fx: float, fy: float) -> None:
    got = (intr.fx, intr.fy, intr.cx, intr.cy)
    want = (fx, fy, intr.width / 2, intr.height / 2)
    if not np.allclose(got, want, rtol=1e-9, atol=1e-9):
        raise BlendtruthError(
            f"--camera {model}: intrinsics must be {want[0]:g}, {want[1]:g}, {want[2]:g}, "
            f"{want[3]:g} at {intr.width}x{intr.height} (Cycles renders no other)"
        )


class Equirect(CameraModel):
    """λ = 2π(u/W − ½), φ = π(½ − v/H); d = (cos φ sin λ, −sin φ, cos φ cos λ); depth =
    ray distance; every pixel valid; points project to λ in (−π, π]."""

    name = "equirect"
    ray_distance_depth = True

    def rays(self, pixels):
        i = self.intrinsics
        u, v = _pixels(pixels)
        lon = 2 * np.pi * (u / i.width - 0.5)
        lat = np.pi * (0.5 - v / i.height)
        d = np.stack([np.cos(lat) * np.sin(lon), -np.sin(lat), np.cos(lat) * np.cos(lon)], -1)
        return np.zeros_like(d), d, np.ones(u.shape, dtype=bool)

    def project(self, points_cam):
        i, p = self.intrinsics, _points(points_cam)
        r = np.linalg.norm(p, axis=-1)
        lon = np.arctan2(p[..., 0], p[..., 2])
        lat = np.arctan2(-p[..., 1], np.hypot(p[..., 0], p[..., 2]))
        uv = np.stack([i.width * (lon / (2 * np.pi) + 0.5), i.height * (0.5 - lat / np.pi)], -1)
        return uv, r, r > 0

    def meta(self) -> dict:
        return {"camera_model": "equirect", "depth_kind": _PANORAMIC_DEPTH}

    def colmap(self):
        raise CannotExpress("COLMAP has no equirectangular camera model (camera equirect)")

    def check_intrinsics(self) -> None:
        i = self.intrinsics
        _centred("equirect", i, i.width / (2 * math.pi), i.height / math.pi)


@dataclass(frozen=True)
class Fisheye(CameraModel):
    """Equidistant: a = (u − cx)/fx, b = (v − cy)/fy, θ = √(a² + b²), d = (sin θ a/θ,
    sin θ b/θ, cos θ); fx = W/fov, fy = H/fov; valid: θ <= fov/2; depth = ray distance."""

    fov_deg: float = 180.0

    name: ClassVar[str] = "fisheye"
    ray_distance_depth: ClassVar[bool] = True

    def __post_init__(self) -> None:
        super().__post_init__()
        f = self.fov_deg
        if not (f is not None and math.isfinite(f) and 0 < f <= 360):
            raise BlendtruthError(f"--fisheye-fov must be in (0, 360] degrees, got {f}")

    def rays(self, pixels):
        i = self.intrinsics
        u, v = _pixels(pixels)
        a, b = (u - i.cx) / i.fx, (v - i.cy) / i.fy
        theta = np.hypot(a, b)
        safe = np.where(theta > 0, theta, 1.0)
        s = np.sin(theta) / safe
        d = np.stack([s * a, s * b, np.cos(theta)], -1)
        return np.zeros_like(d), d, theta <= math.radians(self.fov_deg) / 2

    def project(self, points_cam):
        i, p = self.intrinsics, _points(points_cam)
        r_xy = np.hypot(p[..., 0], p[..., 1])
        theta = np.arctan2(r_xy, p[..., 2])
        k = theta / np.where(r_xy > 0, r_xy, 1.0)  # a = θ · x / r_xy
        uv = np.stack([i.fx * k * p[..., 0] + i.cx, i.fy * k * p[..., 1] + i.cy], -1)
        r = np.linalg.norm(p, axis=-1)
        return uv, r, (r > 0) & (theta <= math.radians(self.fov_deg) / 2)

    def meta(self) -> dict:
        return {
            "camera_model": "fisheye",
            "depth_kind": _PANORAMIC_DEPTH,
            "fisheye_fov_deg": self.fov_deg,
            "fisheye": "equidistant; = OpenCV fisheye with k1..k4 = 0 for fov <= 180",
        }

    def colmap(self):
        if self.fov_deg > 180:
            raise CannotExpress(
                f"COLMAP's OPENCV_FISHEYE cannot express a {self.fov_deg:g} deg fisheye "
                "(it models only rays in front of the camera, fov <= 180 deg)"
            )
        i = self.intrinsics
        return "OPENCV_FISHEYE", [i.fx, i.fy, i.cx, i.cy, 0.0, 0.0, 0.0, 0.0]

    def check_intrinsics(self) -> None:
        i, fov = self.intrinsics, math.radians(self.fov_deg)
        _centred("fisheye", i, i.width / fov, i.height / fov)


MODELS: dict[str, type[CameraModel]] = {m.name: m for m in (Pinhole, Ortho, Equirect, Fisheye)}
CAMERA_MODELS = tuple(MODELS)


def camera_model(
    name: str, intrinsics: Intrinsics, fisheye_fov_deg: float | None = None
) -> CameraModel:
    """The model ``name`` with ``intrinsics`` (checked), e.g. from a view's meta."""
    if name not in MODELS:
        raise BlendtruthError(f"--camera must be one of {', '.join(MODELS)}; got {name!r}")
    if name == "fisheye":
        model: CameraModel = Fisheye(intrinsics, fov_deg=fisheye_fov_deg)  # type: ignore[arg-type]
    else:
        model = MODELS[name](intrinsics)
    model.check_intrinsics()
    return model
