"""Distorted lenses as camera models: OpenCV's pinhole distortion (Brown-Conrady with the
rational terms) and OpenCV's fisheye (Kannala-Brandt), with exact rays (pure numpy).

Pixel convention as everywhere in blendtruth: pixel (c, r) has its centre at
(c + 0.5, r + 0.5), so ``K`` here is OpenCV's K with cx, cy + 0.5 (``K_opencv`` is the
same K with cx, cy − 0.5). Camera frame: OpenCV axes. Coefficients in OpenCV's order.

- ``opencv``: x = X/Z, y = Y/Z, r² = x² + y²,
  x_d = x·g + 2 p1 x y + p2 (r² + 2x²), y_d = y·g + p1 (r² + 2y²) + 2 p2 x y,
  g = (1 + k1 r² + k2 r⁴ + k3 r⁶) / (1 + k4 r² + k5 r⁴ + k6 r⁶); u = fx x_d + cx.
- ``opencv-fisheye``: r = √(x² + y²), θ = atan(r),
  θ_d = θ (1 + k1 θ² + k2 θ⁴ + k3 θ⁶ + k4 θ⁸), x_d = (θ_d / r) x; u = fx x_d + cx.

Rays invert these maps by Newton's method to 1e-9 px. A pixel whose ray would leave the
model's valid domain - where the map folds back (its radial derivative turns <= 0, or the
Jacobian's determinant does), θ >= 90° for the fisheye, or no convergence - is marked
invalid (``valid_ray``) and gets no ray, never a wrong one. Both models are central
projections with θ < 90°, so ``depth`` is planar (camera z) as for pinhole.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import ClassVar

import numpy as np

from blendtruth.errors import BlendtruthError
from blendtruth.geometry.camera_models import CameraModel, CannotExpress

NEWTON_STEPS = 50
TOLERANCE_PX = 1e-9
# Largest undistorted radius (tan θ) searched for the fold: θ = 84.3°.
_R_SEARCH = 10.0


def _coefficients(name: str, values, count: int) -> tuple[float, ...]:
    values = tuple(float(v) for v in values)
    if len(values) > count:
        raise BlendtruthError(f"--distortion: {name} takes at most {count} coefficients")
    if not all(math.isfinite(v) for v in values):
        raise BlendtruthError(f"--distortion: coefficients must be finite, got {values}")
    if any(abs(v) > 1e3 for v in values):
        raise BlendtruthError(f"--distortion: coefficient out of range (|k| <= 1000): {values}")
    return values + (0.0,) * (count - len(values))


def _first_fold(derivative, upper: float) -> float:
    """The first r in (0, upper] where ``derivative(r)`` (vectorised) is <= 0, else upper."""
    r = np.linspace(0.0, upper, 200_001)[1:]
    bad = np.flatnonzero(derivative(r) <= 0)
    return float(r[bad[0]]) if bad.size else upper


@dataclass(frozen=True)
class OpenCV(CameraModel):
    """OpenCV's pinhole distortion; ``distortion`` = (k1, k2, p1, p2, k3, k4, k5, k6)."""

    distortion: tuple[float, ...] = (0.0,) * 8
    fold_radius: float = field(init=False, default=_R_SEARCH)
    name: ClassVar[str] = "opencv"

    def __post_init__(self) -> None:
        object.__setattr__(self, "distortion", _coefficients("opencv", self.distortion, 8))
        k1, k2, _, _, k3, k4, k5, k6 = self.distortion

        def radial_derivative(r):
            r2 = r * r
            num = 1 + r2 * (k1 + r2 * (k2 + r2 * k3))
            den = 1 + r2 * (k4 + r2 * (k5 + r2 * k6))
            dnum = r * (2 * k1 + r2 * (4 * k2 + 6 * k3 * r2))
            dden = r * (2 * k4 + r2 * (4 * k5 + 6 * k6 * r2))
            # d/dr of r·num/den, with the denominator's sign kept (a pole is a fold too).
            return np.sign(den) * (num * den + r * (dnum * den - num * dden))

        object.__setattr__(self, "fold_radius", _first_fold(radial_derivative, _R_SEARCH))
        _check_coverage(self)

    def _distort(self, x, y):
        k1, k2, p1, p2, k3, k4, k5, k6 = self.distortion
        r2 = x * x + y * y
        g = (1 + r2 * (k1 + r2 * (k2 + r2 * k3))) / (1 + r2 * (k4 + r2 * (k5 + r2 * k6)))
        xd = x * g + 2 * p1 * x * y + p2 * (r2 + 2 * x * x)
        yd = y * g + p1 * (r2 + 2 * y * y) + 2 * p2 * x * y
        return xd, yd

    def _jacobian(self, x, y):
        k1, k2, p1, p2, k3, k4, k5, k6 = self.distortion
        r2 = x * x + y * y
        num = 1 + r2 * (k1 + r2 * (k2 + r2 * k3))
        den = 1 + r2 * (k4 + r2 * (k5 + r2 * k6))
        g = num / den
        dg = (k1 + r2 * (2 * k2 + 3 * k3 * r2)) * den - (k4 + r2 * (2 * k5 + 3 * k6 * r2)) * num
        dg = dg / (den * den)  # dg/d(r²)
        a = g + 2 * x * x * dg + 2 * p1 * y + 6 * p2 * x
        b = 2 * x * y * dg + 2 * p1 * x + 2 * p2 * y
        c = 2 * x * y * dg + 2 * p1 * x + 2 * p2 * y
        d = g + 2 * y * y * dg + 6 * p1 * y + 2 * p2 * x
        return a, b, c, d

    def _normalised(self, uv):
        k = self.intrinsics
        uv = np.asarray(uv, dtype=np.float64)
        return (uv[..., 0] - k.cx) / k.fx, (uv[..., 1] - k.cy) / k.fy

    def rays(self, uv):
        xd, yd = self._normalised(uv)
        shape = xd.shape
        xd, yd = xd.ravel(), yd.ravel()
        x, y = xd.copy(), yd.copy()
        k = self.intrinsics
        active = np.arange(x.size)
        for _ in range(NEWTON_STEPS):
            xa, ya = x[active], y[active]
            fx_, fy_ = self._distort(xa, ya)
            ex, ey = fx_ - xd[active], fy_ - yd[active]
            moving = np.maximum(np.abs(ex) * k.fx, np.abs(ey) * k.fy) > TOLERANCE_PX / 10
            active, xa, ya, ex, ey = active[moving], xa[moving], ya[moving], ex[moving], ey[moving]
            if not active.size:
                break
            a, b, c, d = self._jacobian(xa, ya)
            det = a * d - b * c
            safe = np.where(np.abs(det) > 1e-300, det, 1.0)
            x[active] = xa - (d * ex - b * ey) / safe
            y[active] = ya - (a * ey - c * ex) / safe
        fx_, fy_ = self._distort(x, y)
        residual = np.maximum(np.abs(fx_ - xd) * k.fx, np.abs(fy_ - yd) * k.fy)
        a, b, c, d = self._jacobian(x, y)
        valid = (residual <= TOLERANCE_PX) & (np.hypot(x, y) < self.fold_radius)
        valid &= (a * d - b * c) > 0
        ray = np.stack([np.where(valid, x, 0.0), np.where(valid, y, 0.0), np.ones_like(x)], -1)
        ray /= np.linalg.norm(ray, axis=-1, keepdims=True)
        ray = ray.reshape(*shape, 3)
        return np.zeros_like(ray), ray, valid.reshape(shape)

    def project(self, points):
        p = np.asarray(points, dtype=np.float64)
        z = p[..., 2]
        front = z > 0
        safe = np.where(front, z, 1.0)
        x, y = p[..., 0] / safe, p[..., 1] / safe
        xd, yd = self._distort(x, y)
        a, b, c, d = self._jacobian(x, y)
        valid = front & (np.hypot(x, y) < self.fold_radius) & ((a * d - b * c) > 0)
        k = self.intrinsics
        return np.stack([k.fx * xd + k.cx, k.fy * yd + k.cy], -1), z, valid

    def meta(self):
        return {
            "camera_model": "opencv",
            "distortion": list(self.distortion),
            "distortion_order": "k1, k2, p1, p2, k3, k4, k5, k6 (OpenCV)",
            "fold_radius": self.fold_radius,
        }

    def colmap(self):
        k = self.intrinsics
        k1, k2, p1, p2, k3, k4, k5, k6 = self.distortion
        if k3 == k4 == k5 == k6 == 0:
            return "OPENCV", [k.fx, k.fy, k.cx, k.cy, k1, k2, p1, p2]
        return "FULL_OPENCV", [k.fx, k.fy, k.cx, k.cy, *self.distortion]

    def nerfstudio(self):
        k1, k2, p1, p2, k3, k4, k5, k6 = self.distortion
        if k4 or k5 or k6:
            raise CannotExpress(
                "nerfstudio's OPENCV model has no rational terms (its k4 is a polynomial "
                "r^8 term, not OpenCV's k4)"
            )
        k = self.intrinsics
        return {"camera_model": "OPENCV", "fl_x": k.fx, "fl_y": k.fy, "cx": k.cx, "cy": k.cy,
                "k1": k1, "k2": k2, "k3": k3, "k4": 0.0, "p1": p1, "p2": p2}  # fmt: skip


@dataclass(frozen=True)
class OpenCVFisheye(CameraModel):
    """OpenCV's fisheye (Kannala-Brandt); ``distortion`` = (k1, k2, k3, k4)."""

    distortion: tuple[float, ...] = (0.0,) * 4
    max_theta: float = field(init=False, default=math.pi / 2)
    name: ClassVar[str] = "opencv-fisheye"

    def __post_init__(self) -> None:
        object.__setattr__(self, "distortion", _coefficients("opencv-fisheye", self.distortion, 4))
        k1, k2, k3, k4 = self.distortion

        def derivative(t):
            t2 = t * t
            return 1 + t2 * (3 * k1 + t2 * (5 * k2 + t2 * (7 * k3 + 9 * k4 * t2)))

        fold = _first_fold(derivative, math.pi / 2)
        object.__setattr__(self, "max_theta", fold)
        _check_coverage(self)

    def _theta_d(self, t):
        k1, k2, k3, k4 = self.distortion
        t2 = t * t
        return t * (1 + t2 * (k1 + t2 * (k2 + t2 * (k3 + k4 * t2))))

    def rays(self, uv):
        k = self.intrinsics
        uv = np.asarray(uv, dtype=np.float64)
        xd, yd = (uv[..., 0] - k.cx) / k.fx, (uv[..., 1] - k.cy) / k.fy
        rd = np.hypot(xd, yd)
        k1, k2, k3, k4 = self.distortion
        t = np.minimum(rd, self.max_theta)
        for _ in range(NEWTON_STEPS):
            t2 = t * t
            deriv = 1 + t2 * (3 * k1 + t2 * (5 * k2 + t2 * (7 * k3 + 9 * k4 * t2)))
            step = (self._theta_d(t) - rd) / np.where(deriv > 0, deriv, 1.0)
            t = np.clip(t - step, 0.0, self.max_theta)
            if np.abs(step).max(initial=0.0) * min(k.fx, k.fy) < TOLERANCE_PX / 10:
                break
        err = np.abs(self._theta_d(t) - rd) * min(k.fx, k.fy)
        valid = (err <= TOLERANCE_PX) & (t < self.max_theta) & (t < math.pi / 2)
        scale = np.where(rd > 0, np.sin(t) / np.where(rd > 0, rd, 1.0), 1.0)
        d = np.stack([scale * xd, scale * yd, np.cos(t)], -1)
        d = np.where(valid[..., None], d, np.array([0.0, 0.0, 1.0]))
        return np.zeros_like(d), d, valid

    def project(self, points):
        p = np.asarray(points, dtype=np.float64)
        r = np.hypot(p[..., 0], p[..., 1])
        t = np.arctan2(r, p[..., 2])
        scale = np.where(r > 0, self._theta_d(t) / np.where(r > 0, r, 1.0), 0.0)
        k = self.intrinsics
        uv = np.stack([k.fx * scale * p[..., 0] + k.cx, k.fy * scale * p[..., 1] + k.cy], -1)
        valid = (p[..., 2] > 0) & (t < self.max_theta)
        return uv, p[..., 2], valid

    def meta(self):
        return {
            "camera_model": "opencv-fisheye",
            "distortion": list(self.distortion),
            "distortion_order": "k1, k2, k3, k4 (OpenCV fisheye)",
            "max_theta_deg": math.degrees(self.max_theta),
        }

    def colmap(self):
        k = self.intrinsics
        return "OPENCV_FISHEYE", [k.fx, k.fy, k.cx, k.cy, *self.distortion]

    def nerfstudio(self):
        k = self.intrinsics
        k1, k2, k3, k4 = self.distortion
        return {"camera_model": "OPENCV_FISHEYE", "fl_x": k.fx, "fl_y": k.fy, "cx": k.cx,
                "cy": k.cy, "k1": k1, "k2": k2, "k3": k3, "k4": k4}  # fmt: skip


MIN_VALID_FRACTION = 0.5


def _check_coverage(model: CameraModel) -> None:
    """Refuse coefficients whose model folds over most of the image (a calibration that
    does not belong to this image size, or a typo), in one line."""
    k = model.intrinsics
    u, v = np.meshgrid(np.linspace(0.5, k.width - 0.5, 33), np.linspace(0.5, k.height - 0.5, 33))
    _, _, valid = model.rays(np.stack([u, v], -1))
    if valid.mean() < MIN_VALID_FRACTION:
        raise BlendtruthError(
            f"--distortion: the {model.name} model with {list(model.distortion)} folds over "
            f"{100 * (1 - valid.mean()):.0f} % of the {k.width}x{k.height} image; those "
            "pixels would have no ray"
        )
