"""Rendering over time: every planned camera at every requested frame, plus flow and tracks.

A view is a frame × a camera, in the same render folder as a static render:

    views/fFFFF_cCC.npz ...  every pass of frame FFFF seen by camera CC (as multiview.py),
                             with ``frame``, ``time`` (seconds) and ``camera_index`` in meta
    cameras.json             one entry per view, carrying the same three fields
    instances.json           the id table (ids are the same at every frame)
    flow/fFFFF_cCC_to_fGGGG.npz  consecutive frames both ways, per camera: ``flow`` H×W×2,
                             ``scene_flow_world`` / ``scene_flow_camera`` H×W×3 float32,
                             ``valid`` / ``covisible`` H×W bool, ``meta`` (conventions)
    tracks.npz               with ``tracks``: camera 0's tracks (tracks_cCC.npz for others)

Ground truth per frame comes from the ray caster on that frame's evaluated triangles.
Correspondence and tracks anchor to the query frame's frozen triangulation
(:mod:`blendtruth.geometry.motion`), evaluated on each frame's vertices in float64.
"""

from __future__ import annotations

import dataclasses
import json
import warnings
from pathlib import Path

import numpy as np

from blendtruth.errors import BlendtruthError
from blendtruth.multiview import ViewPlan, plan_cameras, write_view_files
from blendtruth.scene import SceneSpec
from blendtruth.settings import RenderSettings
from blendtruth.timeline import Timeline, check_range

# Covisibility tolerance: this fraction of the scene's diagonal, along the ray.
COVISIBLE_FRACTION = 1e-5
FLOW_CONVENTIONS = {
    "flow": "pixels, frame t -> frame s: position in s minus the pixel centre in t "
    "(x right, y down; pixel (i, j) centre at (i+0.5, j+0.5)); 0 where not valid",
    "scene_flow_world": "world-frame 3D displacement s - t (Blender Z up), scene units",
    "scene_flow_camera": "the same displacement in camera t's axes (OpenCV)",
    "valid": "surface at t, topology unchanged, in front of camera s and inside its image",
    "covisible": "valid and the ray from camera s's centre first hits the same instance "
    "within covisible_tolerance of the point (no depth-map test)",
}


@dataclasses.dataclass(frozen=True)
class MotionOptions:
    """``--frames``/``--fps`` (a Timeline), ``--animation``, ``--tracks``/``--tracks-mode``."""

    timeline: Timeline
    animation: str | None = None
    tracks: int = 0
    tracks_mode: str = "grid"


def view_name(frame: int, camera: int) -> str:
    return f"f{frame:04d}_c{camera:02d}"


def render_frames(
    spec: SceneSpec, plan: ViewPlan, settings: RenderSettings, out: Path, motion: MotionOptions
) -> list[Path]:
    """Render every (frame, camera) of ``plan`` into ``out``; see the module docstring."""
    from blendtruth.api import backend_for
    from blendtruth.blender import frames as bframes
    from blendtruth.raycast.cast import RayCaster
    from blendtruth.raycast.points import FirstHit
    from blendtruth.writers.nerf import write_cameras_json
    from blendtruth.writers.tables import write_instances_json

    backend = backend_for(spec)
    if not hasattr(backend, "set_frame"):
        raise BlendtruthError("--frames needs the Blender backend")
    info = backend.info
    source = ", ".join(str(m) for m in getattr(spec, "models", ())) or "the scene"
    bframes.hold_load_transforms(info.model_to_world, tuple(getattr(spec, "models", ())))
    if motion.animation is not None:
        models = list(getattr(spec, "models", ()))
        order = None
        if len(models) == 1 and str(models[0]).lower().endswith((".glb", ".gltf")):
            from blendtruth.inputs.gltf import animation_names

            order = animation_names(models[0])
        bframes.select_animation(motion.animation, source, order)
    timeline = motion.timeline
    if not check_range(timeline, bframes.animation_range(), source):
        warnings.warn(f"{source}: no animation; --frames renders a static scene at each frame",
                      stacklevel=2)  # fmt: skip
    cameras = plan_cameras(plan, info, settings, settings.seed)
    if any(c.model != "pinhole" for c in cameras):
        raise BlendtruthError("--frames: flow and tracks are written for pinhole cameras only")
    out = Path(out)
    for sub in ("views", "depth", "mask", "flow") + (("rgb",) if settings.rgb else ()):
        (out / sub).mkdir(parents=True, exist_ok=True)
    written: list[Path] = []
    states, casts = [], []
    names, all_cams, extra = [], [], []
    for frame in timeline.frames:
        backend.set_frame(frame)
        triangles, geometry, _ = bframes.frame_state(frame, settings.width, settings.height)
        states.append((geometry, FirstHit(triangles.corners, triangles.instance)))
        caster = RayCaster(triangles, threads=settings.threads)
        casts.append([caster.cast(c, ("depth",), internals=True) for c in cameras])
        for index, camera in enumerate(cameras):
            size = dataclasses.replace(settings, width=camera.width, height=camera.height)
            view = backend.render(camera, size)
            fields = {"frame": frame, "time": timeline.time(frame), "camera_index": index}
            view.meta.update(fields)
            name = view_name(frame, index)
            written += write_view_files(out, name, view, settings)
            names.append(name)
            all_cams.append(camera)
            extra.append(fields)
    write_cameras_json(out / "cameras.json", all_cams, names, extra)
    write_instances_json(out / "instances.json", info.table, None, None)
    tol = COVISIBLE_FRACTION * states[0][0].scene_size()
    written += _write_flows(out, timeline, cameras, states, casts, tol)
    if motion.tracks:
        written += _write_tracks(out, timeline, cameras, states, casts, motion, tol)
    return written + [out / "cameras.json", out / "instances.json"]


def _write_flows(out, timeline, cameras, states, casts, tol) -> list[Path]:
    from blendtruth.geometry.motion import flow_images
    from blendtruth.writers.atomic import atomic_open

    written = []
    frames = timeline.frames
    for a in range(len(frames) - 1):
        for t, s in ((a, a + 1), (a + 1, a)):
            for index, camera in enumerate(cameras):
                cast = casts[t][index]
                got = flow_images(states[t][0], states[s][0], cast["triangle"],
                                  cast["barycentric"], camera, camera, states[s][1],
                                  tol)  # fmt: skip
                meta = {"conventions": FLOW_CONVENTIONS, "frame_t": frames[t],
                        "frame_s": frames[s], "time_t": timeline.time(frames[t]),
                        "time_s": timeline.time(frames[s]), "camera_index": index,
                        "covisible_tolerance": tol}  # fmt: skip
                path = out / "flow" / f"{view_name(frames[t], index)}_to_f{frames[s]:04d}.npz"
                with atomic_open(path) as f:
                    np.savez(f, meta=np.array(json.dumps(meta)), **got)
                written.append(path)
    return written


def _write_tracks(out, timeline, cameras, states, casts, motion, tol) -> list[Path]:
    from blendtruth.geometry.tracks import choose_pixels, track
    from blendtruth.writers.tracks import write_tracks

    written = []
    geometries = [g for g, _ in states]
    hits = [h for _, h in states]
    times = [timeline.time(f) for f in timeline.frames]
    for index, camera in enumerate(cameras):
        cast = casts[0][index]  # query frame: the first
        pixels = choose_pixels(cast["triangle"] >= 0, motion.tracks, motion.tracks_mode,
                               seed=index)  # fmt: skip
        got = track(geometries, [camera] * len(geometries), hits, 0, cast["triangle"],
                    cast["barycentric"], pixels, tol)  # fmt: skip
        name = "tracks.npz" if index == 0 else f"tracks_c{index:02d}.npz"
        written.append(write_tracks(out / name, got, list(timeline.frames), times, tol))
    return written


def render_frames_files(
    spec: SceneSpec, plan: ViewPlan, settings: RenderSettings, out: Path, motion: MotionOptions
) -> tuple[str, list[Path]]:
    """``blendtruth render --frames`` in the child process: render into a staging folder,
    then replace ``out``'s render files. Returns the summary line and the files written."""
    import shutil

    from blendtruth.writers.swap import remove_stale_staging, replace_render, staging_dir

    remove_stale_staging(out)
    staging = staging_dir(out)
    shutil.rmtree(staging, ignore_errors=True)
    try:
        render_frames(spec, plan, settings, staging, motion)
        for extra in sorted(staging.glob("tracks_c*.npz")):  # not in RENDER_OUTPUTS
            Path(out, extra.name).unlink(missing_ok=True)
        written = replace_render(staging, out)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    frames = len(motion.timeline.frames)
    views = len(list((Path(out) / "views").glob("*.npz")))
    return f"rendered {views} views ({frames} frames)", written
