"""Depth-sensor presets: the published numbers each noise model is built from (pure data).

A preset never changes the exact ground truth; :mod:`blendtruth.sensors.simulate` reads the
exact passes and writes ``depth_sensor`` beside them. Units: metres and the sensor's own
pixels (``focal_px`` at its native resolution), so the simulated noise does not change with
the size the scene is rendered at. docs/sensors.md states every equation and source.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

from blendtruth.errors import BlendtruthError

# Largest disparity search range of the D4xx default preset; Intel's tuning guide gives
# MinZ = focal_px * baseline / 126 for it.
D4XX_DISPARITY_RANGE = 126


@dataclass(frozen=True)
class DepthSensor:
    """One depth sensor's noise model.

    ``kind``: "stereo" (passive or active stereo: disparity noise and quantisation),
    "structured_light" (projector + camera: the same disparity model) or "tof" (noise along
    the ray). ``min_depth``/``max_depth``: working range in metres (outside: cause
    ``range``). ``baseline_m``: the second imager's / projector's offset along the camera's
    +x axis in metres (0 for ToF: its illuminator sits beside the lens, no shadow).
    ``focal_px``: native focal length in the sensor's own pixels. ``disparity_sigma_px`` and
    ``disparity_step_px``: Gaussian disparity noise and the sub-pixel step disparities are
    reported in (0: unquantised). ``tof_sigma_per_m``: ToF noise σ = this × z (metres).
    ``edge_relative``: a pixel whose 3×3 neighbourhood spans more than this fraction of its
    depth is dropped as a mixed (flying) pixel (0: off). ``grazing_deg``: surfaces seen at a
    larger angle between normal and ray are dropped. ``source``: where the numbers come from.
    """

    name: str
    kind: str
    min_depth: float
    max_depth: float
    baseline_m: float
    focal_px: float
    disparity_sigma_px: float
    disparity_step_px: float
    tof_sigma_per_m: float
    edge_relative: float
    grazing_deg: float
    source: str

    def sigma_z(self, z: float) -> float:
        """The model's depth standard deviation in metres at depth ``z`` (first order for
        the disparity models: σ_z = z² σ_d / (f B))."""
        if self.kind == "tof":
            return self.tof_sigma_per_m * z
        return z * z * self.disparity_sigma_px / (self.focal_px * self.baseline_m)

    def meta(self) -> dict:
        return asdict(self)


def _d4xx(name: str, baseline_m: float, hfov_deg: float, width: int) -> DepthSensor:
    focal = width / 2 / math.tan(math.radians(hfov_deg) / 2)
    return DepthSensor(
        name=name,
        kind="stereo",
        min_depth=focal * baseline_m / D4XX_DISPARITY_RANGE,
        max_depth=10.0,
        baseline_m=baseline_m,
        focal_px=focal,
        disparity_sigma_px=0.08,
        disparity_step_px=1 / 32,
        tof_sigma_per_m=0.0,
        edge_relative=0.0,
        grazing_deg=75.0,
        source=(
            f"Intel RealSense D4xx: sigma_z = z^2 * subpixel / (f * B) with subpixel RMS 0.08 px "
            f"(Intel white paper 'Subpixel linearity improvement'); B = {baseline_m * 1000:g} mm, "
            f"depth HFOV {hfov_deg:g} deg at {width} px; disparities in 1/32 px (5 subpixel "
            "bits); MinZ = f * B / 126 (Intel tuning guide, default disparity range)"
        ),
    )


SENSORS: dict[str, DepthSensor] = {
    "realsense-d435": _d4xx("realsense-d435", 0.050, 87.0, 848),
    "realsense-d415": _d4xx("realsense-d415", 0.055, 65.0, 1280),
    "kinect-v1": DepthSensor(
        name="kinect-v1",
        kind="structured_light",
        min_depth=0.8,
        max_depth=4.0,
        baseline_m=0.075,
        focal_px=585.5,
        disparity_sigma_px=1 / 48,
        disparity_step_px=1 / 8,
        tof_sigma_per_m=0.0,
        edge_relative=0.0,
        grazing_deg=75.0,
        source=(
            "Kinect v1 (structured light): disparity in 1/8 px, f * B = 351.30 / 8 px m "
            "(f = 585.5 px, B = 75 mm) and disparity noise N(0, 1/6) in 1/8-px units, as in "
            "Barron & Malik's model used by simkinect (add_noise.py); range 0.8-4 m (default "
            "mode of the Kinect for Windows SDK)"
        ),
    ),
    "azure-kinect-nfov": DepthSensor(
        name="azure-kinect-nfov",
        kind="tof",
        min_depth=0.5,
        max_depth=3.86,
        baseline_m=0.0,
        focal_px=504.0,
        disparity_sigma_px=0.0,
        disparity_step_px=0.0,
        tof_sigma_per_m=0.017 / 3.86,
        edge_relative=0.05,
        grazing_deg=80.0,
        source=(
            "Azure Kinect NFOV unbinned (time of flight): Microsoft's depth-camera spec "
            "(range 0.5-3.86 m, random error sigma <= 17 mm; confirmed by Toelgyessy et al., "
            "Sensors 2021, 21(2):413); sigma grows linearly with z and reaches the 17 mm bound "
            "at the end of the range (a pessimistic reading of the bound); mixed pixels at "
            "depth edges dropped where the 3x3 neighbourhood spans > 5 % of the depth"
        ),
    ),
}


def sensor(name: str) -> DepthSensor:
    """The preset called ``name``, or a one-line error listing the choices."""
    try:
        return SENSORS[name]
    except KeyError:
        raise BlendtruthError(
            f"--sensor: unknown sensor {name!r}; choose from {', '.join(sorted(SENSORS))}"
        ) from None
