"""Many calibrated views of one scene: place cameras, render, write the per-model folder.

Layout of ``out`` (every path from :class:`blendtruth.layout.RenderLayout`, docs/layout.md):
    views/NNNN.npz          canonical per-view arrays (see writers/npz.py)
    rgb/NNNN.png            RGB image (when rendered)
    depth/NNNN.npy          float32 planar depth, metres/scene units, 0 = no surface
    mask/NNNN.png           255 where a surface is hit at the pixel centre
    preview/NNNN_depth.png, preview/NNNN_normal.png
    instances.json          the scene's instance/material/semantic id table (NOCS mappings,
                            per view boxes and poses: meta["instances"] of each view)
    cameras.json            K, width, height, cam_to_world (OpenCV) per view + conventions
    mesh.ply                the world triangles the ground truth was made from (Blender's)
    mesh_instance.npy       int32: the instance id of each face of mesh.ply
    transforms.json         nerfstudio / instant-ngp cameras (OpenGL axes), masks
    points.ply              with ``settings.points``: every view's surface points fused
                            (world frame)
    flow/NNNN_MMMM.npz      with ``ViewPlan.pairs``: flow and covisible from view NNNN to MMMM
    pairs.json              the pairs written (see blendtruth.geometry.correspondence)
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np

from blendtruth.api import backend_for
from blendtruth.backend import Backend
from blendtruth.conventions import CONVENTIONS_VERSION
from blendtruth.geometry.pointcloud import voxel_downsample
from blendtruth.geometry.pointfusion import VoxelAccumulator
from blendtruth.geometry.rays import backproject
from blendtruth.inputs.renderable import Coverage
from blendtruth.layout import RenderLayout, view_name
from blendtruth.planning import (  # noqa: F401 - re-exported: ViewPlan's home was here
    ViewPlan,
    file_cameras,
    plan_cameras,
    plan_views,
    render_planned,
)
from blendtruth.scene import SceneSpec
from blendtruth.settings import RenderSettings
from blendtruth.view import View
from blendtruth.writers.atomic import atomic_open, sync_files, sync_folders
from blendtruth.writers.background import BackgroundWriter
from blendtruth.writers.meshfile import write_triangles_ply
from blendtruth.writers.nerf import write_cameras_json
from blendtruth.writers.npz import write_view_npz
from blendtruth.writers.png import depth_preview, normal_preview, write_png
from blendtruth.writers.points_ply import write_ply
from blendtruth.writers.tables import write_instances_json

# The fused point cloud's voxel edge, as a fraction of the scene's bounding radius.
_VOXEL_FRACTION = 1.0 / 256


def render_model(
    scene: SceneSpec,
    plan: ViewPlan,
    settings: RenderSettings,
    out: Path,
    on_view: Callable[[int, int], None] | None = None,
    backend: Backend | None = None,
) -> list[Path]:
    """Render every planned view of ``scene`` into ``out`` (see the module docstring) with
    the default Renderer's backend, or ``backend`` (the scene is loaded into it)."""
    if backend is None:
        backend = backend_for(scene)
    else:
        backend.load_scene(SceneSpec.parse(scene))
    info = backend.info
    cameras = plan_views(scene, plan, settings, info)
    coverage = Coverage(len(cameras))
    out = Path(out)
    lay = RenderLayout(out)
    from blendtruth.exports.nerfstudio import write_nerfstudio_transforms

    for sub in lay.view_dirs(settings.previews, settings.rgb):
        sub.mkdir(parents=True, exist_ok=True)
    names = [view_name(i) for i in range(len(cameras))]
    written: list[Path] = []
    pixels: dict[str, dict[int, int]] = {}
    amodal: dict[str, dict] = {}
    boxes: dict[str, dict] = {}
    fused = None
    if settings.points:
        fused = VoxelAccumulator(info.radius * _VOXEL_FRACTION, info.center, info.radius)

    def write(name: str, view: View) -> None:
        # fsynced on a third thread, so that the disk's wait overlaps the next view's
        # writes as well as its cast; the folders are flushed once at the end, after
        # every file.
        if info.table.instances:
            view.meta["instances"] = _boxes(info.table, view)
            boxes[name] = view.meta["instances"]
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
        views = render_planned(backend, cameras, settings)
        for i, (name, view) in enumerate(zip(names, views, strict=True)):
            coverage.add(name, view.mask)
            writer.submit(lambda name=name, view=view: write(name, view))
            if i == 0:  # after the first cast: the ray caster holds the triangles then
                tris = backend.triangles()
                mesh = (lay.mesh_ply, tris.vertices, tris.faces)
                writer.submit(lambda m=mesh: write_triangles_ply(*m))
                ids_ = (lay.mesh_instance_npy, tris.instance)
                writer.submit(lambda m=ids_: _write_npy(*m))
            if on_view:
                on_view(i + 1, len(cameras))
    coverage.finish(written)
    write_instances_json(
        lay.instances_json, info.table, pixels or None, amodal or None, boxes or None
    )
    write_cameras_json(lay.cameras_json, cameras, names)
    # Cameras and masks for nerfstudio; `--export nerfstudio` adds its depth copy.
    written.append(write_nerfstudio_transforms(out, out, names, cameras, settings.rgb, False))
    extra = [lay.instances_json, lay.cameras_json, lay.mesh_ply, lay.mesh_instance_npy]
    if fused is not None:
        pts, nrm, col = fused.result()
        write_ply(lay.points_ply, pts, normals=nrm, colors=col, comments=[
            f"conventions v{CONVENTIONS_VERSION}: world frame (see cameras.json), scene units",
            "normals: unit, world frame; one measured surface sample per voxel",
        ])  # fmt: skip
        extra.append(lay.points_ply)
    if plan.pairs != "none":
        from blendtruth.writers.flow_pairs import write_pairs
        from blendtruth.writers.npz import read_view_npz

        written += write_pairs(
            out, names, lambda name: read_view_npz(lay.view(name).npz), plan.pairs
        )
    sync_folders({p.parent for p in written})
    return written + extra


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
    at = RenderLayout(Path(out)).view(name)
    write_view_npz(at.npz, view, compress=compress, durable=durable)
    with atomic_open(at.depth, durable) as f:
        np.save(f, view.depth.astype(np.float32, copy=False))
    write_png(at.mask, view.mask.view(np.uint8) * np.uint8(255), durable=durable)
    paths = [at.npz, at.depth, at.mask]
    if previews:
        write_png(at.preview_depth, depth_preview(view.depth, view.mask), durable=durable)
        write_png(at.preview_normal, normal_preview(view.normal, view.mask), durable=durable)
        paths += [at.preview_depth, at.preview_normal]
    if view.rgb is not None:
        write_png(at.rgb, _rgb_image(view), durable=durable)
        paths.append(at.rgb)
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


def _boxes(table, view: View) -> dict[str, dict]:
    """``meta["instances"]`` of a view: boxes and poses (instances.view_boxes)."""
    from blendtruth import amodal as amodal_masks
    from blendtruth.instances import view_boxes

    ids_, masks = view.extra.get("amodal_ids"), view.extra.get("amodal")
    if masks is not None:
        masks = amodal_masks.unpack(masks, *view.depth.shape)
    cam = view.camera
    return view_boxes(
        table, cam.K, cam.cam_to_world, cam.model == "pinhole", view.extra.get("instance"),
        ids_, masks,
    )  # fmt: skip


def _write_npy(path: Path, instance: np.ndarray) -> None:
    """``mesh_instance.npy``: int32 F, the instance id of each face of ``mesh.ply``."""
    import io

    buf = io.BytesIO()
    np.save(buf, np.asarray(instance, dtype=np.int32))
    with atomic_open(path) as f:
        f.write(buf.getvalue())
