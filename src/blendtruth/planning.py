"""Where the cameras go: a view plan (sampler, rig or camera file, field of view, fill) turned
into checked :class:`~blendtruth.view.Camera` values for a loaded scene (the "cameras"
stage between the scene and the render; no files are written here)."""

from __future__ import annotations

import dataclasses
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from blendtruth.backend import Backend
from blendtruth.errors import BlendtruthError, BlendtruthWarning
from blendtruth.geometry.camera import Intrinsics
from blendtruth.inputs.renderable import check_cameras, check_scene
from blendtruth.scene import SceneInfo, SceneSpec
from blendtruth.scenes.model_cameras import check_model_options, model_cameras, rig_cameras
from blendtruth.scenes.samplers import check_options, sample_cameras
from blendtruth.settings import MAX_SIZE, MIN_SIZE, RenderSettings
from blendtruth.view import Camera, View
from blendtruth.writers.nerf import read_cameras


@dataclass(frozen=True)
class ViewPlan:
    """How to place the cameras: a sampler (:mod:`blendtruth.scenes.samplers`) and options."""

    sampler: str = "sphere"
    views: int = 8
    fov_deg: float = 50.0  # the pinhole cameras' field of view (--fov); see fisheye_fov
    K: np.ndarray | None = None
    radius: float | None = None
    fill: float = 0.8
    elevation_deg: float = 30.0
    camera_file: Path | None = None
    # A dataset's camera set (blendtruth.scenes.rigs.RIGS); replaces the sampler. rig_views
    # overrides the view count of the random rigs.
    rig: str | None = None
    rig_views: int | None = None
    # Camera model (blendtruth.geometry.projection.CAMERA_MODELS); ortho_scale: view extent across
    # the larger image side in scene units (None: frame the bounding sphere by --fill);
    # fisheye_fov: the fisheye's full field of view, degrees.
    camera_model: str = "pinhole"
    ortho_scale: float | None = None
    fisheye_fov: float = 180.0
    # View pairs to write flow/covisible for after rendering: "none", "consecutive", "all"
    # or explicit (i, j) pairs (see blendtruth.geometry.correspondence.pair_list).
    pairs: str | tuple[tuple[int, int], ...] = "none"

    def __post_init__(self) -> None:
        check_model_options(self)
        if self.rig is not None:
            from blendtruth.scenes.rigs import make_rig

            make_rig(self.rig, 0, self.rig_views)
            if self.camera_file is not None:
                raise BlendtruthError("--rig and --cameras exclude each other")
        # Checked here, before any model is loaded, so a dataset fails at once, not per model.
        check_options(self.sampler, self.views, self.radius, self.fill, self.elevation_deg)
        if self.pairs != "none":
            from blendtruth.geometry.correspondence import check_pairs

            # A camera file or rig brings its own view count: checked again when known.
            views = None if self.sampler == "file" or self.rig is not None else self.views
            object.__setattr__(self, "pairs", check_pairs(self.pairs, views))
        if not 0 < self.fov_deg < 180:
            raise BlendtruthError(f"--fov must be in (0, 180) degrees, got {self.fov_deg}")


def plan_cameras(
    plan: ViewPlan, info: SceneInfo, settings: RenderSettings, seed: int
) -> list[Camera]:
    """Cameras looking at the scene's centre, with world ``info.up`` as up."""
    if plan.camera_model != "pinhole" and plan.rig is None and plan.sampler != "file":
        cameras = model_cameras(plan, info, settings, seed)
        return [_with_up(cam, info.center, info.up) for cam in cameras]
    if plan.rig is not None:
        cameras = rig_cameras(plan, info, settings, seed)
        return [_with_up(cam, info.center, info.up) for cam in cameras]
    if plan.sampler == "file":
        return file_cameras(plan.camera_file)
    if plan.K is not None:
        intr = Intrinsics.from_K(plan.K, settings.width, settings.height)
    else:
        intr = Intrinsics.from_fov(plan.fov_deg, settings.width, settings.height)
    cameras = sample_cameras(
        plan.sampler,
        plan.views,
        intr,
        center=tuple(info.center),
        radius=plan.radius,
        object_radius=info.radius,
        fill=plan.fill,
        elevation_deg=plan.elevation_deg,
        seed=seed,
    )
    return [_with_up(cam, info.center, info.up) for cam in cameras]


def plan_views(
    scene: SceneSpec, plan: ViewPlan, settings: RenderSettings, info: SceneInfo
) -> list[Camera]:
    """The cameras of ``plan`` for the loaded ``scene`` (``info``), checked: above a
    ground plane, pairs possible, float32 able to resolve them."""
    check_scene(scene, info)
    cameras = plan_cameras(plan, info, settings, settings.seed)
    if scene.ground is not None:
        cameras = _keep_above_ground(cameras, plan, info)
    if '"camera"' in scene.randomization:  # --randomize camera (scenes/randomize.py)
        cameras = _jittered(cameras, scene.randomization)
    if plan.pairs != "none":  # a camera file's or rig's view count is known only now
        from blendtruth.geometry.correspondence import check_pairs

        check_pairs(plan.pairs, len(cameras))
        models = sorted({c.model for c in cameras} - {"pinhole"})
        if models:
            raise BlendtruthError(
                f"--pairs: flow and covisibility are computed for pinhole cameras only; "
                f"these cameras are {', '.join(models)} (refused rather than given pinhole flow)"
            )
    check_cameras(cameras, info)
    return cameras


def render_planned(
    backend: Backend, cameras: list[Camera], settings: RenderSettings
) -> Iterator[View]:
    """Each camera's view, in order; cameras read from a file bring their own size."""
    for camera in cameras:
        yield backend.render(
            camera, dataclasses.replace(settings, width=camera.width, height=camera.height)
        )


def file_cameras(path) -> list[Camera]:
    """Every camera of ``path`` (our cameras.json or a NeRF transforms.json) with the
    file's own intrinsics and poses: the "file" sampler's complete view plan."""
    if path is None:
        raise BlendtruthError("--sampler file needs --cameras FILE")
    cameras = read_cameras(path)
    for k, cam in enumerate(cameras):
        if not MIN_SIZE <= min(cam.width, cam.height) <= max(cam.width, cam.height) <= MAX_SIZE:
            raise BlendtruthError(
                f"{path}: frame {k}: {cam.width}x{cam.height} px; Blender renders images "
                f"of {MIN_SIZE} to {MAX_SIZE} px in each direction"
            )
    return cameras


def _keep_above_ground(cameras: list[Camera], plan: ViewPlan, info) -> list[Camera]:
    """Sampled and rig cameras under the ground plane are mirrored above it (see
    :mod:`blendtruth.scenes.ground`), said in one warning; cameras from a file stay where
    the file puts them, with a warning naming those that see only the plane's underside."""
    from blendtruth.scenes.ground import MARGIN, above_ground

    if plan.sampler == "file":
        low = [k for k, c in enumerate(cameras) if c.cam_to_world[2, 3] < MARGIN * info.radius]
        if low:
            warnings.warn(
                f"--cameras: views {', '.join(f'{k:04d}' for k in low)} are at or below the "
                "ground plane and see only its underside",
                BlendtruthWarning,
                stacklevel=2,
            )
        return cameras
    cameras, moved = above_ground(cameras, info.center, info.radius)
    if moved:
        warnings.warn(
            f"moved {len(moved)} of {len(cameras)} cameras "
            f"({', '.join(f'{k:04d}' for k in moved)}) from under the ground plane to their "
            "mirror image above it",
            BlendtruthWarning,
            stacklevel=2,
        )
    return cameras


def _with_up(camera: Camera, center: np.ndarray, up: np.ndarray) -> Camera:
    """Rotate a camera placed for up = +Z about ``center`` so that +Z maps to ``up``."""
    z = np.array([0.0, 0.0, 1.0])
    if np.allclose(up, z):
        return camera
    rot = _rotation_between(z, np.asarray(up, dtype=np.float64))
    pose = np.array(camera.cam_to_world)
    pose[:3, :3] = rot @ pose[:3, :3]
    pose[:3, 3] = rot @ (pose[:3, 3] - center) + center
    return dataclasses.replace(camera, cam_to_world=pose)


def _rotation_between(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """The smallest rotation taking unit vector ``a`` to unit vector ``b``."""
    b = b / np.linalg.norm(b)
    v = np.cross(a, b)
    c = float(a @ b)
    if np.isclose(c, -1.0):
        axis = np.array([1.0, 0.0, 0.0]) if abs(a[0]) < 0.9 else np.array([0.0, 1.0, 0.0])
        axis = axis - a * (a @ axis)
        axis /= np.linalg.norm(axis)
        return 2 * np.outer(axis, axis) - np.eye(3)
    vx = np.array([[0, -v[2], v[1]], [v[2], 0, -v[0]], [-v[1], v[0], 0]])
    return np.eye(3) + vx + vx @ vx / (1 + c)


def _jittered(cameras: list[Camera], randomization: str) -> list[Camera]:
    """The planned cameras turned by the scene's drawn camera jitter."""
    import json

    from blendtruth.scenes.randomize import jitter_poses

    record = json.loads(randomization).get("camera")
    if record is None:
        return cameras
    poses = jitter_poses([c.cam_to_world for c in cameras], record)
    return [dataclasses.replace(c, cam_to_world=p) for c, p in zip(cameras, poses, strict=True)]
