"""The ray-cast ``albedo`` pass against Cycles' (the 1-sample Diffuse Color route) on the
same camera: constant colours, image textures (generated checkers and a real glTF model)
and vertex colours; and the materials it cannot express still falling back to Cycles.

Interior pixels only: Cycles' ray is up to 0.005 px off the pixel centre
(raycast_compare.JITTER_PX), so a pixel is left out where the ray-cast albedo itself
changes by more than 1/255 within that offset (a texel edge of a Closest lookup, a
silhouette or a material border).
"""

from __future__ import annotations

import struct
import zlib
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("bpy")
pytest.importorskip("embreex")

import blendtruth  # noqa: E402
import blendtruth.api  # noqa: E402
from blendtruth import Camera, Intrinsics  # noqa: E402
from blendtruth.api import backend_for  # noqa: E402
from blendtruth.errors import BlendtruthWarning  # noqa: E402
from blendtruth.geometry.frames import look_at  # noqa: E402
from blendtruth.scene import SceneSpec  # noqa: E402

from raycast_compare import JITTER_PX, ambiguous, shifted  # noqa: E402

pytestmark = pytest.mark.render
W, H = 96, 72
TOL = 1.0 / 255.0  # a change of the ray-cast albedo within the jitter: not interior
MEDIAN, MAX = 1e-5, 1e-4  # measured: median <= 5e-7, max <= 1.5e-5 (float32 rounding)


def _empty_scene():
    from blendtruth.blender._bpy import bpy

    bpy.ops.wm.read_factory_settings(use_empty=True)
    blendtruth.api._scene_key = None  # the loaded scene was replaced behind the API's back
    return bpy


def _save(bpy, path: Path) -> SceneSpec:
    bpy.ops.wm.save_as_mainfile(filepath=str(path), copy=True)
    return SceneSpec(models=(path,), normalize=False, light="ambient")


def _camera(eye=(0.3, -1.2, 2.6), target=(0.0, 0.0, 0.0)) -> Camera:
    return Camera(Intrinsics.from_fov(50, W, H), look_at(np.array(eye), np.array(target)))


def _png(path: Path, rgb: np.ndarray) -> Path:
    """An 8-bit RGB PNG of ``rgb`` (h×w×3 uint8, row 0 at the top), written by hand."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        body = kind + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))

    h, w = rgb.shape[:2]
    raw = b"".join(b"\x00" + rgb[r].tobytes() for r in range(h))
    ihdr = struct.pack(">IIBBBBB", w, h, 8, 2, 0, 0, 0)
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr)
                     + chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b""))  # fmt: skip
    return path


def _principled(bpy, name: str, color=(0.8, 0.8, 0.8), metallic=0.0):
    mat = bpy.data.materials.new(name)
    mat.use_nodes = True
    bsdf = mat.node_tree.nodes["Principled BSDF"]
    bsdf.inputs["Base Color"].default_value = (*color, 1.0)
    bsdf.inputs["Metallic"].default_value = metallic
    return mat, bsdf


def _compare(spec: SceneSpec, camera: Camera) -> dict:
    """Ray-cast and Cycles albedo of one view, and their agreement on interior pixels."""
    views = {}
    for truth in ("raycast", "cycles"):
        views[truth] = blendtruth.render_view(camera, scene=spec, width=W, height=H, rgb=False,
                                              truth=truth, passes="albedo,material")  # fmt: skip
        assert views[truth].meta["ground_truth"]["backend"] == truth
    ray, cyc = views["raycast"], views["cycles"]
    truth = backend_for(spec)  # the ray-cast backend over Blender's scene
    caster = truth.caster(0)
    stable = ray.mask & cyc.mask & ~ambiguous(caster, camera, JITTER_PX / 2)
    albedo = ray.extra["albedo"]
    for du, dv in ((1, 0), (-1, 0), (0, 1), (0, -1)):
        moved = shifted(camera, du * JITTER_PX / 2, dv * JITTER_PX / 2)
        out = caster.cast(moved, ("material", "uv"), internals=True)
        other = truth.albedo_shader()[0].image(out["material"], out["triangle"], out["barycentric"],
                                       out["uv"])  # fmt: skip
        stable &= np.abs(other - albedo).max(axis=-1) <= TOL
    err = np.abs(albedo.astype(np.float64) - cyc.extra["albedo"]).max(axis=-1)
    return {
        "view": ray,
        "stable": int(stable.sum()),
        "median": float(np.median(err[stable])),
        "max": float(err[stable].max()),
        "p99": float(np.percentile(err[stable], 99)),
        "background_zero": bool(np.all(albedo[~ray.mask] == 0)),
    }


def _assert_close(stats: dict, max_err: float = MAX) -> None:
    assert stats["stable"] > 0.5 * stats["view"].mask.sum() > 200, stats
    assert stats["median"] <= MEDIAN and stats["max"] <= max_err, stats
    assert stats["background_zero"], stats


def test_constant_colours_metallic_diffuse_and_no_material(tmp_path):
    bpy = _empty_scene()
    bpy.ops.mesh.primitive_plane_add(size=2.0)
    plane = bpy.context.active_object
    plane.data.materials.append(_principled(bpy, "Blueish", (0.2, 0.5, 0.7), 0.25)[0])
    bpy.ops.mesh.primitive_uv_sphere_add(radius=0.35, location=(-0.45, 0.1, 0.4))
    diffuse = bpy.data.materials.new("Diffuse")
    diffuse.use_nodes = True
    nodes = diffuse.node_tree.nodes
    nodes.remove(nodes["Principled BSDF"])
    node = nodes.new("ShaderNodeBsdfDiffuse")
    node.inputs["Color"].default_value = (0.9, 0.3, 0.05, 1.0)
    diffuse.node_tree.links.new(node.outputs["BSDF"], nodes["Material Output"].inputs["Surface"])
    bpy.context.active_object.data.materials.append(diffuse)
    bpy.ops.mesh.primitive_cube_add(size=0.4, location=(0.5, 0.0, 0.3))  # no material
    stats = _compare(_save(bpy, tmp_path / "const.blend"), _camera())
    _assert_close(stats, max_err=1e-6)
    view = stats["view"]
    albedo, material = view.extra["albedo"], np.where(view.mask, view.extra["material"], -1)
    # Independent truth: each material's constant times (1 - metallic), 0.8 grey without one.
    want = sorted([(0.8, 0.8, 0.8), (0.15, 0.375, 0.525), (0.9, 0.3, 0.05)])
    ids = sorted(np.unique(material[view.mask]))
    assert len(ids) == 3, ids
    got = []
    for mid in ids:
        values = albedo[material == mid]
        assert np.abs(values - values[0]).max() == 0
        got.append(tuple(values[0]))
    assert np.abs(np.array(sorted(got)) - np.array(want)).max() < 1e-6, got
    assert set(view.meta["ground_truth"]["albedo"]) == {"(no material)", "Blueish", "Diffuse"}


def _checker_scene(tmp_path, interpolation: str, extension: str, uv_scale: float, tint=None):
    bpy = _empty_scene()
    rng = np.random.default_rng(7)
    pixels = rng.integers(0, 256, (6, 8, 3), dtype=np.uint8)
    image = bpy.data.images.load(str(_png(tmp_path / "checker.png", pixels)))
    bpy.ops.mesh.primitive_plane_add(size=2.0)
    plane = bpy.context.active_object
    uv = plane.data.uv_layers.active.data
    for loop in uv:  # centre the UVs on 0.5 and scale: REPEAT/MIRROR/CLIP show outside [0, 1]
        loop.uv = (0.5 + (loop.uv[0] - 0.5) * uv_scale, 0.5 + (loop.uv[1] - 0.5) * uv_scale)
    mat, bsdf = _principled(bpy, "Checker", metallic=0.1)
    tex = mat.node_tree.nodes.new("ShaderNodeTexImage")
    tex.image, tex.interpolation, tex.extension = image, interpolation, extension
    if tint is None:
        mat.node_tree.links.new(tex.outputs["Color"], bsdf.inputs["Base Color"])
    else:  # glTF's base colour factor: Mix (Color, Multiply, factor 1) of texture and tint
        mix = mat.node_tree.nodes.new("ShaderNodeMix")
        mix.data_type, mix.blend_type = "RGBA", "MULTIPLY"
        sockets = {s.identifier: s for s in (*mix.inputs, *mix.outputs)}
        sockets["Factor_Float"].default_value = 1.0
        sockets["B_Color"].default_value = (*tint, 1.0)
        mat.node_tree.links.new(tex.outputs["Color"], sockets["A_Color"])
        mat.node_tree.links.new(sockets["Result_Color"], bsdf.inputs["Base Color"])
    plane.data.materials.append(mat)
    return _save(bpy, tmp_path / "checker.blend"), pixels


@pytest.mark.parametrize(
    "interpolation,extension,uv_scale,tint",
    [
        ("Linear", "REPEAT", 1.6, None),
        ("Closest", "MIRROR", 1.6, None),
        ("Linear", "CLIP", 1.3, None),
        ("Linear", "EXTEND", 1.3, (0.9, 0.5, 0.25)),
    ],
)
def test_generated_checker_texture(tmp_path, interpolation, extension, uv_scale, tint):
    spec, pixels = _checker_scene(tmp_path, interpolation, extension, uv_scale, tint)
    stats = _compare(spec, _camera(eye=(0.0, -0.4, 2.4)))
    _assert_close(stats)
    view = stats["view"]
    gt = view.meta["ground_truth"]
    assert gt["backend"] == "raycast" and interpolation in gt["albedo"]["Checker"]
    if interpolation == "Closest":
        # Independent truth: every interior pixel is one texel's sRGB byte decoded, x 0.9.
        decoded = np.where(pixels / 255 < 0.04045, pixels / 255 / 12.92,
                           ((pixels / 255 + 0.055) / 1.055) ** 2.4) * 0.9  # fmt: skip
        palette = decoded.reshape(-1, 3)
        got = view.extra["albedo"][view.mask]
        nearest = np.abs(got[:, None] - palette[None]).max(axis=-1).min(axis=1)
        assert nearest.max() < 1e-5


@pytest.mark.parametrize("model", ["BoxTextured.glb", "fuze.obj"])  # PNG in a glb; OBJ + JPEG
def test_textured_shared_models(meshes, model):
    spec = SceneSpec(models=(meshes / model,), light="ambient")
    blendtruth.api._scene_key = None
    stats = _compare(spec, _camera(eye=(1.4, -1.9, 1.5)))
    _assert_close(stats)
    assert any("image texture" in v for v in stats["view"].meta["ground_truth"]["albedo"].values())


def test_gltf_base_colour_factor_times_texture(tmp_path):
    """A glb written by trimesh (baseColorFactor x baseColorTexture), through Blender's
    glTF importer: ray-cast with the factor as the tint, equal to Cycles."""
    trimesh = pytest.importorskip("trimesh")
    image = pytest.importorskip("PIL.Image")
    from trimesh.visual.material import PBRMaterial

    rng = np.random.default_rng(3)
    box = trimesh.creation.box()
    texture = image.fromarray(rng.integers(0, 256, (8, 8, 3), dtype=np.uint8))
    material = PBRMaterial(baseColorTexture=texture, baseColorFactor=[128, 255, 64, 255],
                           metallicFactor=0.0)  # fmt: skip
    box.visual = trimesh.visual.TextureVisuals(uv=rng.random((len(box.vertices), 2)),
                                               material=material)  # fmt: skip
    box.export(tmp_path / "factor.glb")
    blendtruth.api._scene_key = None
    spec = SceneSpec(models=(tmp_path / "factor.glb",), light="ambient")
    stats = _compare(spec, _camera(eye=(1.4, -1.9, 1.5)))
    _assert_close(stats)
    described = stats["view"].meta["ground_truth"]["albedo"]["Material_0"]
    assert "image texture" in described and "x (0.501961, 1, 0.25098)" in described


def _ply_with_colours(path: Path) -> Path:
    """A 12×12-vertex grid in z = 0 with smoothly varying 8-bit vertex colours."""
    n = 12
    xs = np.linspace(-1, 1, n)
    verts = [(x, y, 0.0) for y in xs for x in xs]
    rows = []
    for i, (x, y, _) in enumerate(verts):
        r, g, b = int(127.5 * (x + 1)), int(127.5 * (y + 1)), (i * 37) % 256
        rows.append(f"{x} {y} 0 {r} {g} {b}")
    faces = [(r * n + c, r * n + c + 1, (r + 1) * n + c + 1, (r + 1) * n + c)
             for r in range(n - 1) for c in range(n - 1)]  # fmt: skip
    head = ["ply", "format ascii 1.0", f"element vertex {len(verts)}", "property float x",
            "property float y", "property float z", "property uchar red",
            "property uchar green", "property uchar blue", f"element face {len(faces)}",
            "property list uchar int vertex_indices", "end_header"]  # fmt: skip
    body = rows + [f"4 {a} {b} {c} {d}" for a, b, c, d in faces]
    path.write_text("\n".join(head + body) + "\n")
    return path


def test_vertex_colours(tmp_path):
    bpy = _empty_scene()
    bpy.ops.wm.ply_import(filepath=str(_ply_with_colours(tmp_path / "grid.ply")))
    obj = bpy.context.selected_objects[0]
    assert len(obj.data.color_attributes) == 1
    mat, bsdf = _principled(bpy, "Painted")
    attr = mat.node_tree.nodes.new("ShaderNodeVertexColor")  # layer_name "": the default
    mat.node_tree.links.new(attr.outputs["Color"], bsdf.inputs["Base Color"])
    obj.data.materials.append(mat)
    # A linked duplicate, mirrored: its corners are reordered, its colours must follow.
    obj.scale, obj.location = (0.5, 0.5, 0.5), (-0.55, 0.0, 0.0)
    dup = obj.copy()
    dup.scale, dup.location = (-0.5, 0.5, 0.5), (0.55, 0.0, 0.0)
    bpy.context.scene.collection.objects.link(dup)
    stats = _compare(_save(bpy, tmp_path / "painted.blend"), _camera(eye=(0.2, -0.9, 2.6)))
    _assert_close(stats)
    assert len(np.unique(stats["view"].extra["albedo"][stats["view"].mask], axis=0)) > 1000
    assert "colour attribute" in stats["view"].meta["ground_truth"]["albedo"]["Painted"]


def test_passes_all_is_ray_cast_and_says_how(tmp_path):
    spec, _ = _checker_scene(tmp_path, "Linear", "REPEAT", 1.0)
    view = blendtruth.render_view(_camera(), scene=spec, width=W, height=H, rgb=False,
                                  passes="all")  # fmt: skip
    gt = view.meta["ground_truth"]
    assert gt["backend"] == "raycast" and gt["fallback_reason"] is None
    assert "albedo" in view.extra and gt["albedo"]["Checker"].startswith("image texture")


def test_procedural_base_colour_falls_back_and_says_so(tmp_path):
    bpy = _empty_scene()
    bpy.ops.mesh.primitive_plane_add(size=2.0)
    mat, bsdf = _principled(bpy, "Noisy")
    noise = mat.node_tree.nodes.new("ShaderNodeTexNoise")
    mat.node_tree.links.new(noise.outputs["Color"], bsdf.inputs["Base Color"])
    bpy.context.active_object.data.materials.append(mat)
    spec = _save(bpy, tmp_path / "noisy.blend")
    with pytest.warns(BlendtruthWarning, match="Noisy"):
        view = blendtruth.render_view(_camera(), scene=spec, width=W, height=H, rgb=False,
                                      passes="all")  # fmt: skip
    gt = view.meta["ground_truth"]
    assert gt["backend"] == "cycles" and gt["requested"] == "raycast"
    assert "'Noisy'" in gt["fallback_reason"] and "tex_noise" in gt["fallback_reason"]
    assert view.extra["albedo"][view.mask].std() > 0.01  # Cycles' noise, not a constant
    # Without albedo the same scene is ray-cast.
    view = blendtruth.render_view(_camera(), scene=spec, width=W, height=H, rgb=False)
    assert view.meta["ground_truth"]["backend"] == "raycast"


def test_cli_passes_all_on_a_textured_model_is_ray_cast(meshes, tmp_path):
    """`blendtruth render fuze.obj --passes all`: every view ray-cast, albedo included."""
    import subprocess
    import sys

    from blendtruth.writers.npz import read_view_npz

    out = tmp_path / "out"
    cmd = [sys.executable, "-m", "blendtruth.cli", "render", str(meshes / "fuze.obj"),
           "--passes", "all", "--no-rgb", "--views", "2", "--width", "64", "--height", "48",
           "--out", str(out)]  # fmt: skip
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "from Cycles" not in proc.stderr
    files = sorted(out.rglob("views/*.npz"))
    assert len(files) == 2, files
    for path in files:
        view = read_view_npz(path)
        gt = view.meta["ground_truth"]
        assert gt["backend"] == "raycast" and gt["fallback_reason"] is None, gt
        assert "albedo" in gt["passes"] and "image texture" in str(gt["albedo"])
        assert view.extra["albedo"][view.mask].max() > 0.05
