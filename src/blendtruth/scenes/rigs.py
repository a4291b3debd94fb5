"""Camera rigs of well-known datasets, regenerated from their published parameters.

Each rig is defined in its own frame (the frame its authors' script works in: Z up, the
object normalised their way and centred at the origin) and then placed around our scene:
``world = center + scale · rig`` where ``scale`` maps their normalisation onto our scene
(:func:`rig_scale`). Sources and numbers: docs/scenes.md#rigs. Pure numpy.

Angles: azimuth from +X towards +Y, elevation from the XY plane towards +Z, unless a rig
says otherwise. Cameras are 4×4 cam_to_world, OpenCV axes (x right, y down, z forward).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from blendtruth.errors import BlendtruthError
from blendtruth.geometry.camera import Intrinsics
from blendtruth.view import Camera

RIGS = ("hunyuan3d-6", "syncdreamer-16", "zero123", "trellis-150")


@dataclass(frozen=True)
class Rig:
    """One dataset's camera set in its own frame.

    ``poses``: n×4×4 cam_to_world (OpenCV axes, rig units); ``fov_deg``: full field of
    view across the image's larger side (Blender's AUTO sensor fit with a square sensor,
    which every one of these scripts uses) or None for orthographic rigs;
    ``ortho_scale``: width of an orthographic view across the larger side, rig units;
    ``normalization``: ("bounding_radius", r) — the object's bounding sphere (about its
    bounding-box centre) has radius r — or ("longest_side", s) — its bounding box's
    longest side is s; ``resolution``: the published image size (informative).
    """

    name: str
    poses: np.ndarray
    fov_deg: float | None
    ortho_scale: float | None
    normalization: tuple[str, float]
    resolution: int
    source: str

    @property
    def projection(self) -> str:
        return "perspective" if self.fov_deg is not None else "orthographic"


def make_rig(name: str, seed: int = 0, views: int | None = None) -> Rig:
    """The rig ``name`` (one of :data:`RIGS`). ``seed`` drives the random rigs (zero123,
    trellis-150) through ``numpy.random.default_rng(seed)``; ``views`` overrides the
    view count of those two (the fixed rigs have fixed counts)."""
    if name not in RIGS:
        raise BlendtruthError(f"--rig must be one of {', '.join(RIGS)}; got {name!r}")
    if views is not None and (isinstance(views, bool) or not isinstance(views, int) or views < 1):
        raise BlendtruthError(f"--views must be a whole number >= 1, got {views!r}")
    if views is not None and name in ("hunyuan3d-6", "syncdreamer-16"):
        raise BlendtruthError(f"--rig {name} has a fixed number of views; leave out --views")
    return _BUILDERS[name](seed, views)


def rig_scale(rig: Rig, radius: float, extent: np.ndarray | None) -> float:
    """Scene units per rig unit: our bounding radius over the rig's, or our bounding
    box's longest side (``extent``: 3 side lengths) over the rig's."""
    kind, value = rig.normalization
    if kind == "bounding_radius":
        return radius / value
    if extent is None:
        raise BlendtruthError(f"--rig {rig.name} needs the scene's bounding box")
    return float(np.max(extent)) / value


def rig_intrinsics(rig: Rig, width: int, height: int) -> Intrinsics:
    """Pinhole intrinsics with the rig's FOV across the larger image side, square pixels,
    centred principal point."""
    if rig.fov_deg is None:
        raise BlendtruthError(f"--rig {rig.name} is orthographic; it has no pinhole intrinsics")
    f = max(width, height) / (2.0 * math.tan(math.radians(rig.fov_deg) / 2.0))
    return Intrinsics(f, f, width / 2.0, height / 2.0, width, height)


def place_rig(rig: Rig, intr: Intrinsics, center: np.ndarray, scale: float) -> list[Camera]:
    """The rig's cameras around ``center`` (world, scene units), ``scale`` scene units
    per rig unit; rotations unchanged."""
    cameras = []
    for pose in rig.poses:
        world = pose.copy()
        world[:3, 3] = np.asarray(center, dtype=np.float64) + scale * pose[:3, 3]
        cameras.append(Camera(intr, world))
    return cameras


def _look_at_z_up(eye: np.ndarray) -> np.ndarray:
    """cam_to_world of a camera at ``eye`` looking at the origin, image up towards +Z
    (Blender's TRACK_TO with track -Z, up Y, as the zero123, SyncDreamer and TRELLIS
    scripts set it); straight above or below the origin, +Y is taken as up."""
    forward = -eye / np.linalg.norm(eye)
    up = [0.0, 0.0, 1.0] if math.hypot(forward[0], forward[1]) > 1e-9 else [0.0, 1.0, 0.0]
    right = np.cross(forward, up)
    right /= np.linalg.norm(right)
    pose = np.eye(4)
    pose[:3, :3] = np.column_stack([right, np.cross(forward, right), forward])
    pose[:3, 3] = eye
    return pose


def _hunyuan(seed: int, views: int | None) -> Rig:
    # hy3dpaint textureGenPipeline: candidate azimuths/elevations; MeshRender
    # camera_distance 1.45, orthographic projection of scale 1.2; the shape pipeline's
    # mesh_normalize scales the bounding sphere to diameter 1.2.
    azims = [0.0, 90.0, 180.0, 270.0, 0.0, 180.0]
    elevs = [0.0, 0.0, 0.0, 0.0, 90.0, -90.0]
    poses = []
    for azim, elev in zip(azims, elevs, strict=True):
        # get_mv_matrix: elevation negated, azimuth + 90°, up +Z; at the poles the
        # cross product is ~1e-17 long, still giving a definite roll, reproduced as is.
        e, a = math.radians(-elev), math.radians(azim + 90.0)
        eye = 1.45 * np.array([math.cos(e) * math.cos(a), math.cos(e) * math.sin(a), math.sin(e)])
        look = -eye / np.linalg.norm(eye)
        right = np.cross(look, [0.0, 0.0, 1.0])
        right /= np.linalg.norm(right)
        up = np.cross(right, look)
        up /= np.linalg.norm(up)
        pose = np.eye(4)
        pose[:3, :3] = np.column_stack([right, -up, look])  # OpenGL (right, up, -look) -> OpenCV
        pose[:3, 3] = eye
        poses.append(pose)
    return Rig(
        "hunyuan3d-6", np.array(poses), None, 1.2, ("bounding_radius", 0.6), 512,
        "Tencent-Hunyuan/Hunyuan3D-2.1 hy3dpaint (textureGenPipeline, MeshRender, "
        "camera_utils.get_mv_matrix) and hy3dshape postprocessors.mesh_normalize",
    )  # fmt: skip


def _syncdreamer(seed: int, views: int | None) -> Rig:
    # blender_script.py, camera_type 'fixed': 16 azimuths 2πk/16 and elevation 30°;
    # distance 1.5; lens 35 mm on a 32 mm sensor; 256 px. (The script does the
    # trigonometry in float32; we use float64: a difference below 1e-7 relative.)
    n = 16
    az = np.arange(n) / n * np.pi * 2
    el = math.radians(30.0)
    eyes = 1.5 * np.column_stack(
        [np.cos(az) * math.cos(el), np.sin(az) * math.cos(el), np.full(n, math.sin(el))]
    )
    return Rig(
        "syncdreamer-16", np.array([_look_at_z_up(e) for e in eyes]),
        math.degrees(2 * math.atan(16 / 35)), None, ("longest_side", 1.0), 256,
        "liuyuan-pal/SyncDreamer blender_script.py (camera_type fixed)",
    )  # fmt: skip


def _zero123(seed: int, views: int | None) -> Rig:
    # objaverse-rendering/scripts/blender_script.py: a cube-uniform vector, normalised
    # (so not uniform on the sphere), times a radius uniform in [1.5, 2.2]; kept if
    # -2.2 < z < 2.2; lens 35 mm, sensor 32 mm; 512 px; 12 views per object.
    rng = np.random.default_rng(seed)
    eyes = []
    while len(eyes) < (views or 12):
        v = rng.uniform(-1.0, 1.0, 3)
        r = rng.uniform(1.5, 2.2)
        eye = v / np.linalg.norm(v) * r
        if -2.2 < eye[2] < 2.2:
            eyes.append(eye)
    return Rig(
        "zero123", np.array([_look_at_z_up(e) for e in eyes]),
        math.degrees(2 * math.atan(16 / 35)), None, ("longest_side", 1.0), 512,
        "cvlab-columbia/zero123 objaverse-rendering/scripts/blender_script.py",
    )  # fmt: skip


def radical_inverse(base: int, n: int) -> float:
    """Van der Corput radical inverse of ``n`` in ``base``."""
    value, scale = 0.0, 1.0 / base
    while n > 0:
        value += (n % base) * scale
        n //= base
        scale /= base
    return value


def _trellis(seed: int, views: int | None) -> Rig:
    # dataset_toolkits/render.py + utils.sphere_hammersley_sequence: 150 views, one
    # random offset pair per object, radius 2, FOV 40°, 512 px; objects normalised into
    # the unit cube [-0.5, 0.5]^3 (longest side 1).
    n = views or 150
    offset = np.random.default_rng(seed).random(2)
    eyes = []
    for i in range(n):
        u = i / n + offset[0] / n
        v = radical_inverse(2, i) + offset[1]
        u = 2 * u if u < 0.25 else 2 / 3 * u + 1 / 3
        pitch = math.acos(1 - 2 * u) - math.pi / 2
        yaw = v * 2 * math.pi
        eyes.append(
            2.0
            * np.array(
                [math.cos(yaw) * math.cos(pitch), math.sin(yaw) * math.cos(pitch), math.sin(pitch)]
            )
        )
    return Rig(
        "trellis-150", np.array([_look_at_z_up(e) for e in eyes]), 40.0, None,
        ("longest_side", 1.0), 512,
        "microsoft/TRELLIS dataset_toolkits/render.py, utils.sphere_hammersley_sequence",
    )  # fmt: skip


_BUILDERS = {
    "hunyuan3d-6": _hunyuan,
    "syncdreamer-16": _syncdreamer,
    "zero123": _zero123,
    "trellis-150": _trellis,
}
