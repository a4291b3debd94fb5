"""The options shared by `render`, `dataset` and `scene`, and the settings they make."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import rich_click as click

from blendtruth.cli.scene import (
    EXTRA_VIEW_OPTIONS,
    id_fields,
    lighting_fields,
    plan_fields,
)
from blendtruth.cli.summary import report_summary, written_summary  # noqa: F401 - re-exported
from blendtruth.errors import BlendtruthError
from blendtruth.instances import SEMANTIC_BY
from blendtruth.models import check_model_file
from blendtruth.multiview import ViewPlan
from blendtruth.passes import PASSES
from blendtruth.scene import LIGHTS, MATERIALS, PRIMITIVES, SceneSpec
from blendtruth.scenes.lights import HDRI_LIGHTS
from blendtruth.scenes.samplers import SAMPLERS
from blendtruth.settings import DEVICES, ENGINES, TRUTHS, RenderSettings

PATH = click.Path(path_type=Path)

# Options shared by `render` and `dataset`: how each view is rendered and placed.
VIEW_OPTIONS = [
    click.option("--out", type=PATH, default=Path("out"), show_default=True, help="Output folder."),
    click.option("--width", type=int, default=640, show_default=True, help="Image width, px."),
    click.option("--height", type=int, default=360, show_default=True, help="Image height, px."),
    click.option(
        "--samples",
        type=int,
        default=64,
        show_default=True,
        help="RGB samples per pixel (ground truth always uses one pixel-centre ray).",
    ),
    click.option(
        "--engine",
        type=click.Choice(ENGINES),
        default="cycles",
        show_default=True,
        help="Engine for the RGB image (ground truth: see --truth).",
    ),
    click.option(
        "--device",
        type=click.Choice(DEVICES),
        default="auto",
        show_default=True,
        help="auto uses a GPU (OptiX/CUDA/HIP) when Cycles finds one, else the CPU.",
    ),
    click.option(
        "--seed",
        type=int,
        default=0,
        show_default=True,
        help="Seed for Cycles sampling and the random camera sampler.",
    ),
    click.option("--no-rgb", is_flag=True, help="Ground truth only: skip the RGB render."),
    click.option("--denoise", is_flag=True, help="Denoise RGB with OpenImageDenoise."),
    click.option(
        "--threads",
        type=int,
        default=0,
        show_default=True,
        help="Render threads per Blender process (0 = all cores).",
    ),
    click.option(
        "--views",
        type=int,
        default=None,
        help="Views per model or scene (default 8; `render` without MODELS: 1, the scene camera).",
    ),
    click.option(
        "--sampler",
        type=click.Choice(SAMPLERS),
        default="sphere",
        show_default="sphere; `scene` with a ground: hemisphere",
        help="Camera placement around the model centre.",
    ),
    click.option(
        "--cameras",
        "camera_file",
        type=PATH,
        default=None,
        help="cameras.json or transforms.json to render from (implies --sampler "
        "file; the resolution comes from the file).",
    ),
    click.option(
        "--fov",
        type=float,
        default=50.0,
        show_default=True,
        help="Horizontal field of view, degrees (ignored with --K).",
    ),
    click.option("--K", "k_text", default=None, help="Intrinsics 'fx,fy,cx,cy' in pixels."),
    click.option(
        "--radius",
        type=float,
        default=None,
        help="Camera distance from the centre (default: the model fills --fill).",
    ),
    click.option(
        "--fill",
        type=float,
        default=0.8,
        show_default=True,
        help="Fraction of the half-frame the model's bounding sphere fills.",
    ),
    click.option(
        "--elevation",
        type=float,
        default=30.0,
        show_default=True,
        help="Elevation of the orbit sampler, degrees.",
    ),
    click.option(
        "--normalize/--no-normalize",
        default=True,
        show_default=True,
        help="Centre models and scale them into the unit sphere.",
    ),
    click.option(
        "--light",
        type=click.Choice(LIGHTS + HDRI_LIGHTS),
        default="studio",
        show_default=True,
        help="Light preset, or hdri:NAME for one of the HDRIs the bpy wheel ships.",
    ),
    click.option(
        "--material",
        type=click.Choice(MATERIALS),
        default="keep",
        show_default=True,
        help="clay: one uniform grey diffuse material for shape-only images.",
    ),
    click.option(
        "--passes",
        "passes_text",
        default="default",
        show_default=True,
        help="Ground-truth passes, comma-separated, or 'all': " + ", ".join(PASSES) + ".",
    ),
    click.option(
        "--semantic",
        type=click.Choice(SEMANTIC_BY),
        default="model",
        show_default=True,
        help="Semantic class ids: one per source model file, per object, or per material.",
    ),
    click.option(
        "--semantic-map",
        type=PATH,
        default=None,
        help="JSON {glob pattern: class id} matched against file names, objects, materials.",
    ),
    click.option(
        "--alpha-threshold",
        type=float,
        default=0.5,
        show_default=True,
        help="Transparency policy: surfaces with material alpha below this are skipped by "
        "ground truth (0 = every surface counts).",
    ),
    click.option(
        "--amodal",
        is_flag=True,
        help="Also store every instance's full (unoccluded) silhouette, bit-packed.",
    ),
    click.option(
        "--export",
        "export_formats",
        default=None,
        help="Also export the result: colmap, nerfstudio, exr, png16, webdataset "
        "(comma-separated; see `blendtruth export`).",
    ),
    click.option(
        "--pairs",
        type=click.Choice(["none", "consecutive", "all"]),
        default="none",
        show_default=True,
        help="Write flow/NNNN_MMMM.npz (flow, covisible) and pairs.json for view pairs: "
        "consecutive (k -> k+1 and back) or all ordered pairs (at most 64 views).",
    ),
    click.option(
        "--truth",
        type=click.Choice(TRUTHS),
        default="raycast",
        show_default=True,
        help="Ground truth from Blender's triangles ray-cast with Embree (falls back to "
        "Cycles per scene where it cannot match it, e.g. normal maps, transparency, hair) "
        "or from a 1-sample Cycles render.",
    ),
    click.option("--compress", is_flag=True, help="zlib-compress views/*.npz (smaller, slower)."),
    click.option(
        "--previews/--no-previews",
        default=False,
        show_default=True,
        help="Also write preview/NNNN_depth.png and NNNN_normal.png to look at.",
    ),
    click.option(
        "--points/--no-points",
        default=False,
        show_default=True,
        help="Also write points.ply: every view's surface points fused (world frame).",
    ),
]
VIEW_OPTIONS += EXTRA_VIEW_OPTIONS  # light, rig and camera-model options (py)


def view_options(func):
    for option in reversed(VIEW_OPTIONS):
        func = option(func)
    return func


def settings_from_options(o: dict) -> RenderSettings:
    return RenderSettings(
        width=o["width"],
        height=o["height"],
        samples=o["samples"],
        engine=o["engine"],
        device=o["device"],
        seed=o["seed"],
        denoise=o["denoise"],
        rgb=not o["no_rgb"],
        threads=o["threads"],
        passes=o["passes_text"],
        alpha_threshold=o["alpha_threshold"],
        amodal=o["amodal"],
        truth=o["truth"],
        compress=o["compress"],
        previews=o["previews"],
        points=o["points"],
    )


# Option panels of `render --help` (and `dataset`, `scene`): options not named here are
# listed under "Options". rich-click ignores names a command does not have.
PANELS = {
    "Output": ["--out", "--no-rgb", "--compress", "--previews", "--points", "--export",
               "--pairs", "--normals"],
    "Cameras": ["--views", "--sampler", "--cameras", "--rig", "--camera", "--fov", "--K",
                "--radius", "--fill", "--elevation", "--ortho-scale", "--fisheye-fov",
                "--width", "--height"],
    "Ground truth": ["--truth", "--passes", "--semantic", "--semantic-map",
                     "--alpha-threshold", "--amodal"],
    "Scene and light": ["--scene-file", "--normalize", "--material", "--light", "--hdri",
                        "--hdri-strength", "--hdri-rotation", "--background"],
    "RGB render": ["--samples", "--engine", "--device", "--seed", "--denoise", "--threads"],
    "Multi-object scenes": ["--scenes", "--objects", "--ground", "--ground-size",
                            "--ground-in-truth", "--scale", "--upright"],
    "Runs and limits": ["--workers", "--shard", "--retries", "--timeout", "--max-memory",
                        "--executor", "--address", "--recycle-after", "--no-progress"],
}  # fmt: skip


def option_panels(command):
    """Group a command's options into :data:`PANELS` in its ``--help``."""
    for name in reversed(PANELS):
        command = click.option_panel(name, options=PANELS[name])(command)
    return command


def plan_from_options(o: dict) -> ViewPlan:
    if o["views"] is not None and o["views"] < 1:
        raise BlendtruthError(f"--views must be a whole number >= 1, got {o['views']}")
    sampler = o["sampler"]
    if o["camera_file"] is not None:
        sampler = "file"
        if not o["camera_file"].is_file():
            raise BlendtruthError(f"--cameras {o['camera_file']}: no such file")
    return ViewPlan(
        sampler=sampler,
        views=o["views"] or 8,
        fov_deg=o["fov"],
        K=parse_k(o["k_text"]),
        radius=o["radius"],
        fill=o["fill"],
        elevation_deg=o["elevation"],
        camera_file=o["camera_file"],
        **plan_fields(o),
        pairs=o["pairs"],
    )


def scene_from_options(models: tuple[Path, ...], o: dict) -> SceneSpec:
    """Model files, one primitive name (when no such file exists), or the factory scene."""
    ids = id_fields(o)
    if len(models) == 1 and str(models[0]) in PRIMITIVES and not models[0].exists():
        return SceneSpec(
            primitive=str(models[0]),
            normalize=False,
            material=o["material"],
            **lighting_fields(o),
            **ids,
        )
    for path in models:
        check_model_file(path)
    if not models:
        return SceneSpec(light="factory", normalize=False, **ids)
    return SceneSpec(
        models=models,
        normalize=o["normalize"],
        material=o["material"],
        **lighting_fields(o),
        **ids,
    )


def parse_k(text: str | None) -> np.ndarray | None:  # noqa: N802
    if text is None:
        return None
    try:
        fx, fy, cx, cy = (float(x) for x in text.split(","))
    except ValueError:
        raise BlendtruthError(f"--K must be 'fx,fy,cx,cy' in pixels, got {text!r}") from None
    return np.array([[fx, 0.0, cx], [0.0, fy, cy], [0.0, 0.0, 1.0]])
