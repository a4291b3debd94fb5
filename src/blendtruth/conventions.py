"""Every convention of blendtruth's outputs, as data stored in each output's metadata.

docs/conventions.md says the same in prose; keep the two in step.
"""

from __future__ import annotations

from typing import Any

CONVENTIONS_VERSION = 1


def conventions() -> dict[str, Any]:
    """The conventions of every array and camera blendtruth writes (JSON-serialisable)."""
    return {
        "version": CONVENTIONS_VERSION,
        "world_frame": (
            "Blender's world: right-handed, Z up, scene units (metres for the factory scene). "
            "Loaded models keep their files' own coordinates (as trimesh/Open3D read them); "
            "with normalisation, world = model_to_world @ file coordinates (stored in meta)."
        ),
        "camera_axes": "OpenCV: x right, y down, z forward (into the scene)",
        "cam_to_world": "4x4 float64, maps camera-frame points (OpenCV axes) to world points",
        "K": "3x3 float64 [[fx, 0, cx], [0, fy, cy], [0, 0, 1]] in pixels, zero skew",
        "pixel_grid": (
            "pixel (u, v) = (column, row) covers [u, u+1) x [v, v+1); its centre is "
            "(u + 0.5, v + 0.5); origin at the top-left corner; rows stored top-down"
        ),
        "depth": (
            "float32 planar depth: camera-frame z of the surface point, scene units; 0 = no surface"
        ),
        "distance": (
            "float32 Euclidean distance from the camera centre to the surface point, scene "
            "units; 0 = no surface"
        ),
        "normal": (
            "float32 HxWx3 unit surface normal in the camera frame (OpenCV axes), from Blender's "
            "shading normal; 0 where mask is False"
        ),
        "mask": "bool: a surface is hit by the ray through the pixel centre",
        "ground_truth_sampling": "one ray through each pixel centre; never anti-aliased or blended",
        "rgb": (
            "uint8 HxWx3 sRGB, Blender's 'Standard' view transform (piecewise sRGB curve), "
            "anti-aliased; composite of the object over the world background"
        ),
        "alpha": "float32 anti-aliased coverage of the RGB render, 0..1",
        "tutorial_d_npz": (
            "dmap = planar depth (as 'depth'); nmap = the tutorial's encoding: "
            "t = (-zx, -zy, 1)/|.| (t = -normal for exact sources), channels reversed, "
            "mapped to [0, 1] by (t + 1)/2"
        ),
    }
