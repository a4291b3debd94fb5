"""Every convention of blendtruth's outputs, as data stored in each output's metadata.

docs/conventions.md says the same in prose; keep the two in step and bump
``CONVENTIONS_VERSION`` when a rule changes meaning.
"""

from __future__ import annotations

from typing import Any

from blendtruth.passes import pass_conventions

CONVENTIONS_VERSION = 1


def conventions() -> dict[str, Any]:
    """The conventions of every array and camera blendtruth writes (JSON-serialisable:
    str keys, str/int values)."""
    return {
        "version": CONVENTIONS_VERSION,
        "world_frame": (
            "Blender's world: right-handed, Z up, metres (scene units). A loaded model keeps "
            "its file's own coordinates (as trimesh/Open3D read them); when normalised, "
            "world = model_to_world @ file coordinates (stored in meta) and lengths are in "
            "the normalised units"
        ),
        "camera_axes": "OpenCV: x right, y down, z forward (into the scene)",
        "cam_to_world": (
            "4x4 float64 rigid transform mapping camera-frame points (OpenCV axes) to world "
            "points; world_to_cam is its inverse. OpenGL/Blender camera axes (x right, y up, "
            "z back) = cam_to_world @ diag(1, -1, -1, 1)"
        ),
        "K": "3x3 float64 [[fx, 0, cx], [0, fy, cy], [0, 0, 1]] in pixels, zero skew",
        "K_opencv": (
            "K with cx - 0.5, cy - 0.5: for OpenCV/Open3D, whose pixel centres are at integer "
            "coordinates; COLMAP, nerfstudio and OpenGL take K unchanged"
        ),
        "pixel_grid": (
            "pixel (u, v) = (column, row) covers [u, u+1) x [v, v+1); its centre is "
            "(u + 0.5, v + 0.5); origin at the top-left corner of the image; u right, v down; "
            "a centred principal point is (W/2, H/2); image rows are stored top-down"
        ),
        "projection": "u = fx * x / z + cx, v = fy * y / z + cy for a camera-frame point",
        **pass_conventions(),
        "camera_models": (
            "pinhole unless meta.camera_model says ortho (parallel rays from the image plane, "
            "K's fx = fy in pixels per scene unit, depth = distance along the rays), "
            "equirect or fisheye (depth = distance = ray length); exact rays in "
            "docs/conventions.md#camera-models"
        ),
        "ground_truth_sampling": "one ray through each pixel centre; never anti-aliased or blended",
        "rgb": (
            "uint8 HxWx3 8-bit sRGB, Blender's 'Standard' view transform (piecewise sRGB "
            "curve), anti-aliased; composite of the object over the world background"
        ),
        "alpha": "float32 HxW anti-aliased coverage of the RGB render, 0..1",
        "tutorial_d_npz": (
            "d.npz: dmap = float32 HxW planar depth in metres (as 'depth'), 0 = no surface; "
            "nmap = float32 HxWx3 in the tutorial's Sobel encoding: t = (-zx, -zy, 1)/|t| "
            "(t = -normal for exact sources), mapped to [0, 1] by (t + 1)/2, channels "
            "reversed"
        ),
    }
