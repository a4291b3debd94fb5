"""What a render produces: a calibrated camera and the arrays seen through it."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from blendtruth.geometry.camera import Intrinsics
from blendtruth.geometry.camera_models import CameraModel, camera_model
from blendtruth.geometry.frames import validate_pose


@dataclass(frozen=True)
class Camera:
    """A camera: intrinsics, pose and camera model (pinhole unless ``model`` says otherwise).

    ``cam_to_world`` is 4×4 float64, camera axes OpenCV (x right, y down, z forward),
    world frame Blender's (Z up, right-handed).
    """

    intrinsics: Intrinsics
    cam_to_world: np.ndarray
    # Camera model (blendtruth.geometry.camera_models.MODELS): "pinhole" (default), "ortho"
    # (fx = fy are pixels per scene unit), "equirect", "fisheye" (equidistant, fx = W/fov and
    # fy = H/fov pixels per radian, full field of view fisheye_fov_deg).
    model: str = "pinhole"
    fisheye_fov_deg: float | None = None

    def __post_init__(self) -> None:
        # The model's value (its rays, projection, names in other tools); validates it.
        fov = self.fisheye_fov_deg if self.model == "fisheye" else None
        object.__setattr__(self, "_projection", camera_model(self.model, self.intrinsics, fov))
        pose = np.array(self.cam_to_world, dtype=np.float64)
        validate_pose(pose, "cam_to_world")
        pose.setflags(write=False)
        object.__setattr__(self, "cam_to_world", pose)

    @property
    def projection(self) -> CameraModel:
        """The camera model as a value: ``rays(uv)``, ``project(points)``, ``meta()``,
        ``colmap()``, ``nerfstudio()`` (:mod:`blendtruth.geometry.camera_models`)."""
        return self._projection  # type: ignore[attr-defined]

    @classmethod
    def from_meta(cls, intrinsics: Intrinsics, cam_to_world: np.ndarray, meta: dict) -> Camera:
        """The camera a view file describes: its model and the model's parameters are in
        the view's ``meta`` (``camera_model``, absent = pinhole; ``fisheye_fov_deg``)."""
        return cls(intrinsics, cam_to_world, meta.get("camera_model", "pinhole"),
                   meta.get("fisheye_fov_deg"))  # fmt: skip

    @property
    def fov_deg(self) -> float | None:
        """Old name of :attr:`fisheye_fov_deg` (the fisheye's full field of view, degrees;
        not the pinhole field of view that ``ViewPlan.fov_deg`` / ``--fov`` means)."""
        return self.fisheye_fov_deg

    @property
    def K(self) -> np.ndarray:  # noqa: N802 - K is the standard name
        """3×3 float64 intrinsic matrix, pixel units, pixel centres at +0.5."""
        return self.intrinsics.K

    def K_for(self, convention: str, near: float = 0.01, far: float = 1000.0) -> np.ndarray:  # noqa: N802
        """K in another tool's pixel convention (see :meth:`Intrinsics.K_for`): "opencv"
        and "open3d" get cx, cy − 0.5; "opengl" a 4×4 projection matrix."""
        return self.intrinsics.K_for(convention, near, far)

    @property
    def width(self) -> int:
        return self.intrinsics.width

    @property
    def height(self) -> int:
        return self.intrinsics.height


@dataclass
class View:
    """Ground truth for one camera. H×W arrays, rows top-down; see docs/conventions.md.

    - ``depth``: float32, planar depth (camera z) in scene units, 0 = no surface.
    - ``distance``: float32, Euclidean length of the pixel-centre ray, 0 = no surface.
    - ``normal``: float32 H×W×3, unit, camera frame (OpenCV axes), 0 where ``mask`` is False.
    - ``mask``: bool, a surface is hit at the pixel centre.
    - ``rgb``: uint8 H×W×3 sRGB ("Standard" view transform), anti-aliased; None if not rendered.
    - ``alpha``: float32 pixel coverage of the anti-aliased RGB render; None if not rendered.
    - ``extra``: the other requested passes of :mod:`blendtruth.passes` by name
      (``instance``, ``position``, ...), each with the table's dtype and shape.
    """

    camera: Camera
    depth: np.ndarray
    distance: np.ndarray
    normal: np.ndarray
    mask: np.ndarray
    rgb: np.ndarray | None = None
    alpha: np.ndarray | None = None
    meta: dict[str, Any] = field(default_factory=dict)
    extra: dict[str, np.ndarray] = field(default_factory=dict)

    def passes(self) -> dict[str, np.ndarray]:
        """Every ground-truth pass this view holds, by name, in the pass table's order."""
        from blendtruth.passes import PASSES

        core = {"depth": self.depth, "distance": self.distance, "normal": self.normal,
                "mask": self.mask}  # fmt: skip
        have = {**core, **self.extra}
        return {name: have[name] for name in PASSES if name in have}

    def get(self, name: str) -> np.ndarray | None:
        """The pass ``name`` (also ``rgb``/``alpha``), or None when this view lacks it."""
        if name in ("depth", "distance", "normal", "mask", "rgb", "alpha"):
            return getattr(self, name)
        return self.extra.get(name)

    @property
    def K(self) -> np.ndarray:  # noqa: N802
        return self.camera.K

    @property
    def cam_to_world(self) -> np.ndarray:
        return self.camera.cam_to_world
