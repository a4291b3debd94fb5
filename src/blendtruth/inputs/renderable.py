"""Can these cameras see this scene in float32, and did they? (no bpy)

Cycles intersects rays in float32. A camera 1e8 model radii away (``--fov 1e-6``, or
``--K 1e30,...`` whose automatic distance follows the focal length), a pixel narrower than
float32's resolution at the model, or a scene far from the origin with ``--no-normalize``
all render empty or noisy ground truth without any error from Blender; they are refused
here before rendering. After rendering, a view that sees no surface is a warning, and a
run in which no view does is an error (its files are removed again).
"""

from __future__ import annotations

import contextlib
import warnings
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from blendtruth.errors import BlendtruthError, BlendtruthWarning
from blendtruth.inputs.coords import PRECISION_REFUSE, check_precision
from blendtruth.scene import SceneInfo, SceneSpec
from blendtruth.view import Camera

_EPS32 = 2.0**-24  # float32's relative rounding


def check_scene(spec: SceneSpec, info: SceneInfo) -> None:
    """With ``--no-normalize``, refuse (or warn about) a scene so far from the origin that
    float32 rendering rounds it by a large part of its size."""
    spec = SceneSpec.parse(spec)
    if spec.normalize or spec.is_factory or spec.primitive is not None:
        return
    c, r = np.asarray(info.center, dtype=np.float64), float(info.radius)
    name = ", ".join(str(p) for p in spec.models) or "the scene"
    check_precision(name, c - r, c + r, "when Cycles renders it in float32 (--no-normalize)")


def check_cameras(cameras: Sequence[Camera], info: SceneInfo) -> None:
    """Refuse cameras whose ground truth float32 cannot resolve: depth rounding above
    PRECISION_REFUSE of the model's radius, or pixels narrower than float32's step there."""
    r = float(info.radius)
    center = np.asarray(info.center, dtype=np.float64)
    for k, cam in enumerate(cameras):
        eye = np.asarray(cam.cam_to_world[:3, 3], dtype=np.float64)
        distance = float(np.linalg.norm(eye - center))
        reach = max(float(np.abs(eye).max()), float(np.abs(center).max()) + r, distance + r)
        rounding = reach * _EPS32
        intr = cam.intrinsics
        what = f"camera {k} (fx {intr.fx:g}, fy {intr.fy:g} px, {distance:.4g} units away)"
        if rounding > PRECISION_REFUSE * r:
            raise BlendtruthError(
                f"{what}: float32 rounds depth there by up to {rounding:.3g} units, "
                f"{rounding / r:.2g} of the model's radius {r:.4g}; Blender cannot render "
                "it faithfully (use a wider --fov, a smaller --K focal length, or --radius)"
            )
        # A camera inside the bounding sphere may look at anything; outside, the pixel's
        # width at the centre is what the model is sampled with.
        footprint = distance / max(intr.fx, intr.fy)
        if distance > r and footprint < 4 * rounding:
            raise BlendtruthError(
                f"{what}: one pixel spans {footprint:.3g} units at the model, below float32's "
                f"resolution ({rounding:.3g}) there; the ground truth would be noise"
            )


class Coverage:
    """Counts views that see no surface: at the end a warning for each, or an error if
    all of them do (then no warning: the one error line says it)."""

    def __init__(self, total: int) -> None:
        self.total = total
        self.empty: list[str] = []

    def add(self, name: str, mask: np.ndarray) -> None:
        if not mask.any():
            self.empty.append(name)

    def finish(self, written: Sequence[Path]) -> None:
        """Warn per empty view, or raise if no view saw a surface, after removing the files
        of this run."""
        if not self.total or len(self.empty) < self.total:
            for name in self.empty:
                warnings.warn(
                    f"view {name} sees no surface (background only); its depth, normals and "
                    "mask are empty",
                    BlendtruthWarning,
                    stacklevel=2,
                )
            return
        folders = set()
        for path in written:
            Path(path).unlink(missing_ok=True)
            folders.add(Path(path).parent)
        for folder in sorted(folders, key=lambda p: len(p.parts), reverse=True):
            with contextlib.suppress(OSError):
                folder.rmdir()
        raise BlendtruthError(
            f"no view sees the model: all {self.total} view(s) hit only background; check "
            "--radius, --fov, --K or the --cameras file"
        )
