"""What a render produces: a calibrated camera and the arrays seen through it."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from blendtruth.camera import Intrinsics
from blendtruth.frames import validate_pose


@dataclass(frozen=True)
class Camera:
    """A pinhole camera: intrinsics plus pose.

    ``cam_to_world`` is 4×4 float64, camera axes OpenCV (x right, y down, z forward),
    world frame Blender's (Z up, right-handed).
    """

    intrinsics: Intrinsics
    cam_to_world: np.ndarray
    # Camera model (blendtruth.projection): "pinhole" (default), "ortho" (fx = fy are
    # pixels per scene unit), "equirect", "fisheye" (equidistant, fx = W/fov and
    # fy = H/fov pixels per radian, full field of view fov_deg).
    model: str = "pinhole"
    fov_deg: float | None = None

    def __post_init__(self) -> None:
        if self.model != "pinhole":
            from blendtruth.projection import check_model

            check_model(self.model, self.intrinsics, self.fov_deg)
        pose = np.array(self.cam_to_world, dtype=np.float64)
        validate_pose(pose, "cam_to_world")
        pose.setflags(write=False)
        object.__setattr__(self, "cam_to_world", pose)

    @property
    def K(self) -> np.ndarray:  # noqa: N802 - K is the standard name
        """3×3 float64 intrinsic matrix, pixel units, pixel centres at +0.5."""
        return self.intrinsics.K

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
    """

    camera: Camera
    depth: np.ndarray
    distance: np.ndarray
    normal: np.ndarray
    mask: np.ndarray
    rgb: np.ndarray | None = None
    alpha: np.ndarray | None = None
    meta: dict[str, Any] = field(default_factory=dict)

    @property
    def K(self) -> np.ndarray:  # noqa: N802
        return self.camera.K

    @property
    def cam_to_world(self) -> np.ndarray:
        return self.camera.cam_to_world
