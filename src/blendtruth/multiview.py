"""Many calibrated views of one scene: place cameras, render, write the per-model folder.

Layout of ``out``:
    views/NNNN.npz          canonical per-view arrays (see writers/npz.py)
    rgb/NNNN.png            RGB image (when rendered)
    depth/NNNN.npy          float32 planar depth, metres/scene units, 0 = no surface
    mask/NNNN.png           255 where a surface is hit at the pixel centre
    preview/NNNN_depth.png, preview/NNNN_normal.png
    instances.json          the scene's instance/material/semantic id table (NOCS mappings)
    cameras.json            K, width, height, cam_to_world (OpenCV) per view + conventions
    mesh.ply                the world triangles the ground truth was made from (Blender's)
    transforms.json         nerfstudio / instant-ngp cameras (OpenGL axes), masks
    points.ply              with ``settings.points``: every view's surface points fused
                            (world frame)
    flow/NNNN_MMMM.npz      with ``ViewPlan.pairs``: flow and covisible from view NNNN to MMMM
    pairs.json              the pairs written (see blendtruth.geometry.correspondence)
"""

from __future__ import annotations

import dataclasses
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from blendtruth.api import backend_for
from blendtruth.conventions import CONVENTIONS_VERSION
from blendtruth.errors import BlendtruthError, BlendtruthWarning
from blendtruth.geometry.camera import Intrinsics
from blendtruth.geometry.pointcloud import voxel_downsample, write_ply
from blendtruth.geometry.pointfusion import VoxelAccumulator
from blendtruth.geometry.rays import backproject
from blendtruth.inputs.renderable import Coverage, check_cameras, check_scene
from blendtruth.scene import SceneInfo, SceneSpec
from blendtruth.scenes.model_cameras import check_model_options, model_cameras, rig_cameras
from blendtruth.scenes.samplers import check_options, sample_cameras
from blendtruth.settings import RenderSettings
from blendtruth.view import Camera, View
from blendtruth.writers.atomic import atomic_open, sync_files, sync_folders
from blendtruth.writers.background import BackgroundWriter
from blendtruth.writers.meshfile import write_triangles_ply
from blendtruth.writers.nerf import write_cameras_json
from blendtruth.writers.npz import write_view_npz
from blendtruth.writers.png import depth_preview, normal_preview, write_png
from blendtruth.writers.tables import write_instances_json

# The fused point cloud's voxel edge, as a fraction of the scene's bounding radius.
_VOXEL_FRACTION = 1.0 / 256


@dataclass(frozen=True)
class ViewPlan:
    """How to place the cameras: a sampler (:mod:`blendtruth.scenes.samplers`) and options."""

    sampler: str = "sphere"
    views: int = 8
    fov_deg: float = 50.0
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
        path=None if plan.camera_file is None else str(plan.camera_file),
    )
    if plan.sampler == "file":
        return cameras
    return [_with_up(cam, info.center, info.up) for cam in cameras]


def render_model(
    scene: SceneSpec,
    plan: ViewPlan,
    settings: RenderSettings,
    out: Path,
    on_view: Callable[[int, int], None] | None = None,
) -> list[Path]:
    """Render every planned view of ``scene`` into ``out`` (see the module docstring)."""
    backend = backend_for(scene)
    info = backend.info
    check_scene(scene, info)
    cameras = plan_cameras(plan, info, settings, settings.seed)
    if scene.ground is not None:
        cameras = _keep_above_ground(cameras, plan, info)
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
    coverage = Coverage(len(cameras))
    out = Path(out)
    from blendtruth.exports.nerfstudio import write_nerfstudio_transforms

    subs = ("views", "depth", "mask") + (("preview",) if settings.previews else ())
    for sub in subs + (("rgb",) if settings.rgb else ()):
        (out / sub).mkdir(parents=True, exist_ok=True)
    names = [f"{i:04d}" for i in range(len(cameras))]
    written: list[Path] = []
    pixels: dict[str, dict[int, int]] = {}
    amodal: dict[str, dict] = {}
    fused = None
    if settings.points:
        fused = VoxelAccumulator(info.radius * _VOXEL_FRACTION, info.center, info.radius)

    def write(name: str, view: View) -> None:
        # fsynced on a third thread, so that the disk's wait overlaps the next view's
        # writes as well as its cast; the folders are flushed once at the end, after
        # every file.
        files = write_view_files(out, name, view, settings, durable=False)
        syncer.submit(lambda: sync_files(files, folders=False))
        written.extend(files)
        if "instance" in view.extra:
            counts = np.bincount(view.extra["instance"].ravel())
            ids = np.flatnonzero(counts)
            pixels[name] = dict(zip(ids.tolist(), counts[ids].tolist(), strict=True))
        if view.meta.get("amodal"):
            amodal[name] = view.meta["amodal"]
        if fused is not None:
            fused.add_view(view)

    # Files are written on a background thread while the next view renders. The syncer
    # closes last (its queue bounds how far the writes may run ahead of the disk).
    with BackgroundWriter(depth=4) as syncer, BackgroundWriter() as writer:
        for i, (name, camera) in enumerate(zip(names, cameras, strict=True)):
            # Cameras read from a file bring their own resolution.
            view = backend.render(
                camera, dataclasses.replace(settings, width=camera.width, height=camera.height)
            )
            coverage.add(name, view.mask)
            writer.submit(lambda name=name, view=view: write(name, view))
            if i == 0:  # after the first cast: the ray caster holds the triangles then
                tris = backend.triangles()
                mesh = (out / "mesh.ply", tris.vertices, tris.faces)
                writer.submit(lambda m=mesh: write_triangles_ply(*m))
            if on_view:
                on_view(i + 1, len(cameras))
    coverage.finish(written)
    write_instances_json(out / "instances.json", info.table, pixels or None, amodal or None)
    write_cameras_json(out / "cameras.json", cameras, names)
    # Cameras and masks for nerfstudio; `--export nerfstudio` adds its depth copy.
    written.append(write_nerfstudio_transforms(out, out, names, cameras, settings.rgb, False))
    extra = ["instances.json", "cameras.json", "mesh.ply"]
    if fused is not None:
        pts, nrm, col = fused.result()
        write_ply(out / "points.ply", pts, normals=nrm, colors=col, comments=[
            f"conventions v{CONVENTIONS_VERSION}: world frame (see cameras.json), scene units",
            "normals: unit, world frame; one measured surface sample per voxel",
        ])  # fmt: skip
        extra.append("points.ply")
    if plan.pairs != "none":
        from blendtruth.geometry.correspondence import write_pairs
        from blendtruth.writers.npz import read_view_npz

        written += write_pairs(
            out, names, lambda name: read_view_npz(out / "views" / f"{name}.npz"), plan.pairs
        )
    sync_folders({p.parent for p in written})
    return written + [out / name for name in extra]


def write_view_files(
    out: Path,
    name: str,
    view: View,
    settings: RenderSettings | None = None,
    durable: bool = True,
) -> list[Path]:
    """One view's files (see the module docstring); ``settings`` chooses compression and
    previews (default: uncompressed npz, no previews); ``durable`` = False leaves the
    fsync to the caller (each file is still written atomically)."""
    compress = settings.compress if settings else False
    previews = settings.previews if settings else False
    paths = [out / "views" / f"{name}.npz", out / "depth" / f"{name}.npy",
             out / "mask" / f"{name}.png"]  # fmt: skip
    write_view_npz(paths[0], view, compress=compress, durable=durable)
    with atomic_open(paths[1], durable) as f:
        np.save(f, view.depth.astype(np.float32, copy=False))
    write_png(paths[2], view.mask.view(np.uint8) * np.uint8(255), durable=durable)
    if previews:
        paths += [out / "preview" / f"{name}_depth.png", out / "preview" / f"{name}_normal.png"]
        write_png(paths[3], depth_preview(view.depth, view.mask), durable=durable)
        write_png(paths[4], normal_preview(view.normal, view.mask), durable=durable)
    if view.rgb is not None:
        paths.append(out / "rgb" / f"{name}.png")
        write_png(paths[-1], _rgb_image(view), durable=durable)
    return paths


def _rgb_image(view: View) -> np.ndarray:
    """RGB, or RGBA (straight alpha) when the background is transparent."""
    if view.meta.get("lighting", {}).get("background") != "transparent" or view.alpha is None:
        return view.rgb
    alpha8 = np.round(np.clip(view.alpha, 0, 1) * 255).astype(np.uint8)
    return np.dstack([view.rgb, alpha8])


def _view_points(view: View) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """World-frame points, normals and colours of the pixels where a surface was hit."""
    if view.camera.model == "pinhole":
        pts = backproject(view.depth, view.camera.intrinsics, view.cam_to_world)[view.mask]
    else:
        from blendtruth.geometry.projection import surface_points

        local = surface_points(view.camera, view.distance)[view.mask]
        pts = local @ view.cam_to_world[:3, :3].T + view.cam_to_world[:3, 3]
    normals = view.normal[view.mask] @ view.cam_to_world[:3, :3].T
    if view.rgb is not None:
        colors = view.rgb[view.mask]
    else:
        colors = np.full((len(pts), 3), 200, dtype=np.uint8)
    return pts, normals, colors


def fuse_points(clouds, voxel: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Concatenate the views' points and keep one real sample per voxel."""
    pts = np.concatenate([c[0] for c in clouds])
    normals = np.concatenate([c[1] for c in clouds])
    colors = np.concatenate([c[2] for c in clouds])
    return voxel_downsample(pts, voxel, normals, colors)


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
