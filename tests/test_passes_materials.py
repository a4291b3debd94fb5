"""Material-dependent passes against analytic truth: the transparency policy (alpha-cut
texture, alpha-blended plane, glass), albedo and UV from a textured OBJ, and every pass's
silhouette equal to ``mask`` on these scenes.

The .blend scenes are built by Blender in a child process (so this process's scene is
untouched); every expected value is computed here from the scene's construction, in
float64, with rays from ``analytic.camera_rays`` (K^-1 of the pixel centres).
"""

from __future__ import annotations

import struct
import subprocess
import sys
import textwrap
import zlib

import numpy as np
import pytest

pytest.importorskip("bpy")

import blendtruth  # noqa: E402
from blendtruth import Camera, Intrinsics, SceneSpec  # noqa: E402
from blendtruth.geometry.frames import look_at  # noqa: E402
from blendtruth.passes import PASSES, parse_passes  # noqa: E402

from analytic import camera_rays, ray_sphere  # noqa: E402

pytestmark = pytest.mark.render

SIZE = 64
EYE_Z = 3.0
# 8x8 alpha texels, ALPHA[j, i]: j = texel row from the image's BOTTOM (v), i = column (u).
# A checker with a 3x2 opaque block in the bottom-left corner, so a flipped or transposed
# lookup changes the expected hits.
_J, _I = np.indices((8, 8))
ALPHA = ((_I + _J) % 2 == 0) | ((_I < 3) & (_J < 2))
# Texture blocks: colour of block (bu, bv) = BLOCKS[bv, bu], bv counted from the bottom (v).
BLOCKS = np.array(
    [[[20 + 60 * bu, 30 + 55 * bv, 200 - 12 * (bu + 4 * bv)] for bu in range(4)] for bv in range(4)]
)
SPHERE_CENTER, SPHERE_R = np.array([-0.85, 0.0, 0.0]), 0.6
BLENDED_BOX = ((0.25, 1.45), (-0.6, 0.6))  # alpha-0.3 plane at z = 0: x range, y range
# Mix Shader (Fac 0.7) of a Principled BSDF and, as shader 2, a Transparent BSDF: alpha 0.3.
MIXED_BOX = ((-0.9, -0.3), (0.9, 1.5))
FLOOR_BOX = ((-3.0, 1.0), (-2.0, 2.0))  # opaque floor at z = -1 in the see-through scene

BUILD = textwrap.dedent(
    """
    import sys, bpy
    import numpy as np
    out, alpha = sys.argv[1], np.array(eval(sys.argv[2]), dtype=float)

    def principled(name):
        mat = bpy.data.materials.new(name)
        mat.use_nodes = True
        return mat, mat.node_tree.nodes["Principled BSDF"]

    def plane(name, size, z, mat, x=0.0, y=0.0):
        bpy.ops.mesh.primitive_plane_add(size=size, location=(x, y, z))
        bpy.context.object.name = name
        bpy.context.object.data.materials.append(mat)

    bpy.ops.wm.read_factory_settings(use_empty=True)
    img = bpy.data.images.new("alpha_checker", 8, 8, alpha=True)
    px = np.ones((8, 8, 4))
    px[..., 3] = alpha  # Blender's pixel rows start at the bottom
    img.pixels.foreach_set(px.ravel().tolist())
    img.pack()
    cut, bsdf = principled("alpha_cut")
    tex = cut.node_tree.nodes.new("ShaderNodeTexImage")
    tex.image, tex.interpolation = img, "Closest"
    cut.node_tree.links.new(tex.outputs["Alpha"], bsdf.inputs["Alpha"])
    plane("top", 2.0, 0.0, cut)
    plane("floor", 6.0, -1.0, principled("opaque")[0])
    bpy.ops.wm.save_as_mainfile(filepath=out + "/alpha_cut.blend")

    bpy.ops.wm.read_factory_settings(use_empty=True)
    glass = bpy.data.materials.new("glass")
    glass.use_nodes = True
    nodes = glass.node_tree.nodes
    nodes.remove(nodes["Principled BSDF"])
    g = nodes.new("ShaderNodeBsdfGlass")
    glass.node_tree.links.new(g.outputs["BSDF"], nodes["Material Output"].inputs["Surface"])
    bpy.ops.mesh.primitive_uv_sphere_add(segments=32, ring_count=16, radius=0.6,
                                         location=(-0.85, 0.0, 0.0))
    bpy.context.object.data.materials.append(glass)
    blend, bsdf = principled("alpha_blend")
    bsdf.inputs["Alpha"].default_value = 0.3
    plane("blended", 1.2, 0.0, blend, x=0.85)
    mixed, bsdf = principled("mix_transparent")
    nodes, links = mixed.node_tree.nodes, mixed.node_tree.links
    mix = nodes.new("ShaderNodeMixShader")
    mix.inputs["Fac"].default_value = 0.7
    links.new(bsdf.outputs["BSDF"], mix.inputs[1])
    links.new(nodes.new("ShaderNodeBsdfTransparent").outputs["BSDF"], mix.inputs[2])
    links.new(mix.outputs["Shader"], nodes["Material Output"].inputs["Surface"])
    plane("mixed", 0.6, 0.0, mixed, x=-0.6, y=1.2)
    plane("floor", 4.0, -1.0, principled("opaque")[0], x=-1.0)
    bpy.ops.wm.save_as_mainfile(filepath=out + "/see_through.blend")
    """
)


def _camera(x: float = 0.0) -> Camera:
    """Straight down from height EYE_Z; image right = world +x, image up = world +y."""
    pose = look_at((x, 0.0, EYE_Z), (x, 0.0, 0.0), up=(0.0, 1.0, 0.0))
    return Camera(Intrinsics.from_fov(60.0, SIZE, SIZE), pose)


def _plane_hits(camera: Camera, z: float) -> np.ndarray:
    """H×W×3 world points where the pixel-centre rays meet the plane at height z."""
    d = camera_rays(camera.intrinsics) @ camera.cam_to_world[:3, :3].T
    o = camera.cam_to_world[:3, 3]
    return o + d * ((z - o[2]) / d[..., 2])[..., None]


def _in_box(p: np.ndarray, box, eps: float) -> tuple[np.ndarray, np.ndarray]:
    """(inside by more than eps, within eps of the box's edge) for points p[..., :2]."""
    (x0, x1), (y0, y1) = box
    x, y = p[..., 0], p[..., 1]
    inside = (x > x0 + eps) & (x < x1 - eps) & (y > y0 + eps) & (y < y1 - eps)
    outside = (x < x0 - eps) | (x > x1 + eps) | (y < y0 - eps) | (y > y1 + eps)
    return inside, ~inside & ~outside


def _near_grid(value: np.ndarray, step: float, margin: float) -> np.ndarray:
    f = value / step
    return np.abs(f - np.round(f)) * step <= margin


def _render(spec: SceneSpec, camera: Camera, threshold: float):
    view = blendtruth.render_view(camera, scene=spec, width=SIZE, height=SIZE, rgb=False,
                                  passes="all", alpha_threshold=threshold)  # fmt: skip
    table = blendtruth.api.backend_for(spec).info.table
    return view, {m.name: m.id for m in table.materials}


@pytest.fixture(scope="module")
def blends(tmp_path_factory):
    out = tmp_path_factory.mktemp("blends")
    alpha = repr(ALPHA.astype(int).tolist())
    subprocess.run([sys.executable, "-c", BUILD, str(out), alpha], check=True,
                   capture_output=True, timeout=300)  # fmt: skip
    return out


@pytest.fixture(scope="module")
def alpha_cut(blends):
    spec = SceneSpec(models=(blends / "alpha_cut.blend",), normalize=False, light="ambient")
    return _render(spec, _camera(), 0.5)


@pytest.fixture(scope="module")
def see_through(blends):
    spec = SceneSpec(models=(blends / "see_through.blend",), normalize=False, light="ambient")
    camera = _camera()
    return camera, {t: _render(spec, camera, t) for t in (0.5, 0.2)}


def test_alpha_cut_texture_follows_the_threshold_texel_by_texel(alpha_cut):
    view, mat = alpha_cut
    camera = view.camera
    top = _plane_hits(camera, 0.0)
    # Blender's plane: vertex (-1, -1) has uv (0, 0), (1, 1) has (1, 1); texel = uv * 8.
    uv = (top[..., :2] + 1) / 2
    on_top, top_edge = _in_box(top, ((-1, 1), (-1, 1)), 1e-3 / 8 * 2)
    border = top_edge | (on_top & (_near_grid(uv[..., 0], 1 / 8, 1e-3 / 8)
                                   | _near_grid(uv[..., 1], 1 / 8, 1e-3 / 8)))  # fmt: skip
    texel = np.clip((uv * 8).astype(int), 0, 7)
    opaque = on_top & ALPHA[texel[..., 1], texel[..., 0]]
    ok = ~border
    assert border.sum() <= 2, f"{border.sum()} pixel centres within 1e-3 texel of a border"
    assert opaque[ok].sum() > 300 and (on_top & ~opaque)[ok].sum() > 300
    # Every ray hits something (the floor is larger than the view), the top plane exactly
    # at its opaque texels, the floor through its holes and around it.
    assert view.mask.all()
    expected = np.where(opaque, mat["alpha_cut"], mat["opaque"])
    assert np.array_equal(view.extra["material"][ok], expected[ok])
    depth = np.where(opaque, EYE_Z - 0.0, EYE_Z - (-1.0))
    assert np.abs(view.depth[ok] / depth[ok] - 1).max() < 1e-5
    # The pixel-centre hits' uv is the analytic one (a flipped V would also move the holes).
    hit_uv = view.extra["uv"][opaque & ok]
    assert np.abs(hit_uv - uv[opaque & ok]).max() < 1e-5
    # Flagged over the whole top plane, holes included: its material is alpha-textured.
    assert np.array_equal(view.extra["transparent"][ok], on_top[ok])
    policy = view.meta["ground_truth"]["transparency"]
    assert policy["alpha_threshold"] == 0.5 and policy["see_through_materials"] == ["alpha_cut"]
    assert "stepped at alpha_threshold" in policy["alpha"]


def test_alpha_blended_plane_and_glass_sphere_follow_the_policy(see_through):
    camera, views = see_through
    first = _plane_hits(camera, 0.0)
    below = _plane_hits(camera, -1.0)
    blended, blended_edge = _in_box(first, BLENDED_BOX, 2.5e-4)
    mixed, mixed_edge = _in_box(first, MIXED_BOX, 2.5e-4)
    assert mixed.sum() > 50
    blended_edge |= mixed_edge
    on_floor, floor_edge = _in_box(below, FLOOR_BOX, 2.5e-4)
    # Glass: the UV sphere (32 x 16) lies between its inscribed sphere of radius R cos(delta)
    # (delta = half a face's angular diagonal) and the exact sphere of radius R.
    delta = np.hypot(np.pi / 32, np.pi / 32)
    outer_depth, _, outer = ray_sphere(camera.intrinsics, SPHERE_CENTER, SPHERE_R,
                                       camera.cam_to_world)  # fmt: skip
    inner_depth, _, inner = ray_sphere(camera.intrinsics, SPHERE_CENTER,
                                       SPHERE_R * np.cos(delta), camera.cam_to_world)  # fmt: skip
    ok = ~blended_edge & ~floor_edge & (inner | ~outer)
    assert inner[ok].sum() > 100 and blended[ok].sum() > 100
    assert (blended & ~on_floor)[ok].sum() > 20, "part of the plane must be over nothing"
    flags = {}
    for threshold, (view, mat) in views.items():
        glass = view.extra["material"] == mat["glass"]
        assert np.array_equal(glass[ok], inner[ok]) and not (glass & ~outer).any()
        d = view.depth[glass]
        assert (d >= outer_depth[glass] * (1 - 1e-5)).all()
        assert (d[inner[glass]] <= inner_depth[glass][inner[glass]] * (1 + 1e-5)).all()
        hit_plane = threshold <= 0.3  # alpha 0.3 counts when it is >= the threshold
        if hit_plane:
            want_mat = np.where(blended, mat["alpha_blend"], mat["opaque"])
            want_mat = np.where(mixed, mat["mix_transparent"], want_mat)
            want_mask = inner | blended | mixed | on_floor
        else:
            want_mat = np.where(on_floor, mat["opaque"], 0)
            want_mask = inner | on_floor
        want_mat = np.where(inner, mat["glass"], np.where(want_mask, want_mat, 0))
        assert np.array_equal(view.mask[ok], want_mask[ok]), threshold
        assert np.array_equal(view.extra["material"][ok], want_mat[ok]), threshold
        # Away from the sphere: plane, floor through it, or nothing through it.
        first_z0 = (blended | mixed) & hit_plane
        want_depth = np.where(first_z0, EYE_Z, np.where(on_floor, EYE_Z + 1.0, 0.0))
        rest = ok & ~outer
        assert np.abs(view.depth[rest] - want_depth[rest]).max() < 1e-4, threshold
        flags[threshold] = view.extra["transparent"]
        # Flagged: glass and the alpha-blended plane seen first, at every threshold, also
        # where the plane is skipped and the floor behind it hit; never the floor seen first
        # (False where nothing is hit, as every pass outside the mask).
        want_flag = (inner | blended | mixed) & want_mask
        assert np.array_equal(flags[threshold][ok], want_flag[ok]), threshold
        floor_first = (view.extra["material"] == mat["opaque"]) & ~(blended | mixed | blended_edge)
        assert floor_first.sum() > 1000 and not flags[threshold][floor_first].any()
        policy = view.meta["ground_truth"]["transparency"]
        assert sorted(policy["see_through_materials"]) == [
            "alpha_blend",
            "glass",
            "mix_transparent",
        ]
    assert np.array_equal(flags[0.5], flags[0.2] & views[0.5][0].mask)


def _png_rgb(path, rgb: np.ndarray) -> None:
    """8-bit RGB PNG, rows top-down as in the file format."""
    h, w, _ = rgb.shape
    raw = b"".join(b"\x00" + rgb[r].astype(np.uint8).tobytes() for r in range(h))

    def chunk(kind: bytes, data: bytes) -> bytes:
        body = kind + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))

    header = struct.pack(">IIBBBBB", w, h, 8, 2, 0, 0, 0)
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header)
                     + chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b""))  # fmt: skip


def _srgb_to_linear(c: np.ndarray) -> np.ndarray:
    c = np.asarray(c, np.float64) / 255.0
    return np.where(c <= 0.04045, c / 12.92, ((c + 0.055) / 1.055) ** 2.4)


CONST_BOX = ((1.1, 1.7), (-0.6, 0.6))  # the constant-colour plane at z = 0
OBJ_CAMERA_X = 0.35


@pytest.fixture(scope="module")
def textured(tmp_path_factory):
    """An OBJ with a 2x2 textured plane (uv (0,0) at (-1,-1), (1,1) at (1,1); 64x64 PNG of
    4x4 blocks of 16x16 texels) and a plane with the constant colour Kd 0.2 0.4 0.6."""
    tmp = tmp_path_factory.mktemp("textured")
    texels = np.zeros((64, 64, 3))
    for row in range(64):  # PNG row 0 is the image's top: v = 1 - (row + 0.5) / 64
        for col in range(64):
            texels[row, col] = BLOCKS[3 - row // 16, col // 16]
    _png_rgb(tmp / "blocks.png", texels)
    (tmp / "m.mtl").write_text("newmtl tex\nKd 1 1 1\nmap_Kd blocks.png\n"
                               "newmtl flat\nKd 0.2 0.4 0.6\n")  # fmt: skip
    (x0, x1), (y0, y1) = CONST_BOX
    (tmp / "m.obj").write_text(
        textwrap.dedent(f"""\
        mtllib m.mtl
        v -1 -1 0
        v 1 -1 0
        v 1 1 0
        v -1 1 0
        v {x0} {y0} 0
        v {x1} {y0} 0
        v {x1} {y1} 0
        v {x0} {y1} 0
        vt 0 0
        vt 1 0
        vt 1 1
        vt 0 1
        vn 0 0 1
        o textured
        usemtl tex
        f 1/1/1 2/2/1 3/3/1 4/4/1
        o flat
        usemtl flat
        f 5//1 6//1 7//1 8//1
        """)
    )
    spec = SceneSpec(models=(tmp / "m.obj",), normalize=False, light="ambient")
    return _render(spec, _camera(OBJ_CAMERA_X), 0.5)


def test_albedo_is_the_linear_texel_colour_and_uv_the_analytic_hit(textured):
    view, mat = textured
    hit = _plane_hits(view.camera, 0.0)
    uv = (hit[..., :2] + 1) / 2
    on_plane, edge = _in_box(hit, ((-1, 1), (-1, 1)), 1e-4)
    assert view.mask[on_plane].all() and np.all(view.extra["material"][on_plane] == mat["tex"])
    assert np.abs(view.extra["uv"][on_plane] - uv[on_plane]).max() <= 1e-5
    # Away from block borders by more than 1 texel (1/64 in uv) the (bilinear) lookup sees
    # only one block's texels: albedo = that block's sRGB colour decoded to linear.
    block = np.clip((uv * 4).astype(int), 0, 3)
    clear = on_plane & ~_near_grid(uv[..., 0], 1 / 4, 1 / 64 + 1e-4)
    clear &= ~_near_grid(uv[..., 1], 1 / 4, 1 / 64 + 1e-4)
    assert clear.sum() > 600
    assert len(np.unique(block[clear][:, 0] * 4 + block[clear][:, 1])) == 16
    want = _srgb_to_linear(BLOCKS[block[..., 1], block[..., 0]])
    err = np.abs(view.extra["albedo"][clear] - want[clear]).max()
    assert err <= 1e-4, err  # measured 4.3e-7 (bpy 4.5)
    # The constant colour: the MTL's Kd as the linear base colour.
    flat, flat_edge = _in_box(hit, CONST_BOX, 1e-4)
    assert flat.sum() > 100 and np.all(view.extra["material"][flat] == mat["flat"])
    err = np.abs(view.extra["albedo"][flat] - [0.2, 0.4, 0.6]).max()
    assert err <= 1e-6, err
    assert not view.mask[~(on_plane | edge | flat | flat_edge)].any()
    assert np.all(view.extra["albedo"][~view.mask] == 0) and (~view.mask).sum() > 1000


def _check_silhouette(view, scale: float) -> None:
    """Every pass: the table's dtype/shape, its background outside ``mask``, and a real
    value at every hit (so no pass is blended or missing at a silhouette or a hole)."""
    m = view.mask
    passes = view.passes()
    assert set(passes) | {"boundary"} >= set(parse_passes("all")) - {"boundary"}
    for name, array in passes.items():
        spec = PASSES[name]
        spec.check(array, *m.shape)
        np.testing.assert_array_equal(array[~m], spec.empty(*m.shape)[~m], err_msg=name)
    rays = camera_rays(view.camera.intrinsics)
    depth = view.depth[m].astype(np.float64)
    assert (depth > 0).all()
    dist = np.linalg.norm(rays[m], axis=-1) * depth
    assert np.abs(view.distance[m] / dist - 1).max() < 1e-5
    for name in ("normal", "normal_geometric", "normal_bump"):
        assert np.abs(np.linalg.norm(passes[name][m], axis=-1) - 1).max() < 1e-5, name
    for name in ("instance", "semantic", "material"):
        assert (passes[name][m] > 0).all(), name
    world = (rays * view.depth[..., None]) @ view.cam_to_world[:3, :3].T
    world += view.cam_to_world[:3, 3]
    assert np.abs(passes["position"][m] - world[m]).max() < 1e-5 * scale
    assert (
        passes["object_coords"][m].min() >= -1e-6 and passes["object_coords"][m].max() <= 1 + 1e-6
    )
    uv = passes["uv"][m]
    assert uv.min() >= -1e-6 and uv.max() <= 1 + 1e-6 and np.ptp(uv, axis=0).min() > 0.1
    assert np.isfinite(passes["albedo"][m]).all() and passes["albedo"][m].min() >= 0


def test_every_pass_has_the_mask_silhouette_on_material_scenes(alpha_cut, see_through, textured):
    scenes = {"alpha_cut": alpha_cut[0], "textured": textured[0]}
    scenes.update({f"see_through@{t}": v for t, (v, _) in see_through[1].items()})
    for name, view in scenes.items():
        try:
            _check_silhouette(view, scale=EYE_Z + 1)
        except AssertionError as exc:
            raise AssertionError(f"{name}: {exc}") from exc
    # These scenes have background pixels (around, and through the skipped plane).
    assert (~scenes["textured"].mask).sum() > 1000 and (~scenes["see_through@0.5"].mask).sum() > 500
    # Albedo is the hit's own base colour: the default grey 0.8 on the floor seen through
    # the skipped alpha-0.3 plane, not a blend with the plane.
    view, mat = see_through[1][0.5]
    floor = view.extra["material"] == mat["opaque"]
    assert np.abs(view.extra["albedo"][floor] - 0.8).max() < 1e-6
    view, mat = see_through[1][0.2]
    plane = view.extra["material"] == mat["alpha_blend"]
    assert plane.sum() > 100 and np.abs(view.extra["albedo"][plane] - 0.8).max() < 1e-6


def test_rgb_render_keeps_the_materials_own_alpha(blends, see_through):
    # The ground-truth renders step alpha at the threshold; the RGB render must not: over
    # nothing, the alpha-0.3 plane covers 0.3 of each pixel (Cycles' film alpha, 64 samples:
    # binomial noise ~0.06 per pixel, ~0.01 on the mean). Ground truth after it is unchanged.
    camera, views = see_through
    spec = SceneSpec(models=(blends / "see_through.blend",), normalize=False, light="ambient")
    view = blendtruth.render_view(camera, scene=spec, width=SIZE, height=SIZE, samples=64,
                                  seed=3, passes="all", alpha_threshold=0.5)  # fmt: skip
    first = _plane_hits(camera, 0.0)
    blended, _ = _in_box(first, BLENDED_BOX, 0.06)  # a pixel inside, by its filter width
    on_floor, floor_edge = _in_box(_plane_hits(camera, -1.0), FLOOR_BOX, 0.1)
    over_nothing = blended & ~on_floor & ~floor_edge
    assert over_nothing.sum() > 20
    assert abs(view.alpha[over_nothing].mean() - 0.3) < 0.05, view.alpha[over_nothing].mean()
    floor_only = on_floor & ~blended & ~_in_box(first, BLENDED_BOX, -0.1)[0]
    assert np.all(view.alpha[floor_only & (np.abs(first[..., 0] + 0.85) > 0.8)] == 1)
    before = views[0.5][0]
    for name, array in before.passes().items():
        np.testing.assert_array_equal(view.passes()[name], array, err_msg=name)


def test_albedo_of_gltf_materials_is_base_colour_times_one_minus_metallic(tmp_path):
    # glTF's baseColorFactor is linear; Blender's importer gives these materials a
    # specular layer (Specular IOR Level 0.5), which Cycles' raw Diffuse Color pass would
    # take out of the diffuse weight, more at grazing angles (three faces of each box seen).
    trimesh = pytest.importorskip("trimesh")
    boxes = {"mat_a": (-0.8, (200, 50, 50), 0.0), "mat_b": (0.8, (50, 200, 100), 0.25)}
    files = []
    for name, (x, colour, metallic) in boxes.items():
        box = trimesh.creation.box(extents=(1.0, 1.0, 1.0))
        box.apply_translation((x, 0.0, 0.0))
        box.visual = trimesh.visual.TextureVisuals(
            material=trimesh.visual.material.PBRMaterial(
                name=name,
                baseColorFactor=[*colour, 255],
                metallicFactor=metallic,
                roughnessFactor=0.5,
            )  # fmt: skip
        )
        files.append(tmp_path / f"{name}.glb")
        files[-1].write_bytes(box.export(file_type="glb"))
    spec = SceneSpec(models=tuple(files), normalize=False, light="ambient")
    camera = Camera(Intrinsics.from_fov(50.0, SIZE, SIZE), look_at((1.0, -3.0, 2.5), (0, 0, 0)))
    view, mat = _render(spec, camera, 0.5)
    for name, (_, colour, metallic) in boxes.items():
        hit = view.extra["material"] == mat[name]
        assert hit.sum() > 300
        want = np.array(colour) / 255 * (1 - metallic)
        err = np.abs(view.extra["albedo"][hit] - want).max()
        assert err < 1e-6, (name, err)
