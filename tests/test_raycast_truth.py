"""--truth raycast against --truth cycles on the same cameras, and the Cycles fallback.

Scenes cover every way Blender's triangles can differ from a file's: flat and smooth
shading, custom split normals, linked duplicates (one mesh, several transforms incl. a
mirror), modifiers evaluated at their render settings, n-gons and non-planar quads. Each
is compared pixel by pixel (tolerances in raycast_compare.py). <= 128 px images.
"""

from __future__ import annotations

import functools
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
from blendtruth.settings import RenderSettings  # noqa: E402

from raycast_compare import assert_agree, compare  # noqa: E402

pytestmark = pytest.mark.render
W, H = 128, 96
PASSES = "depth,instance,material,position,uv,normal_geometric"


def _bpy():
    from blendtruth.blender._bpy import bpy

    return bpy


def _save_blend(path: Path) -> Path:
    bpy = _bpy()
    bpy.ops.wm.save_as_mainfile(filepath=str(path), copy=True)
    return path


def _empty_scene():
    bpy = _bpy()
    bpy.ops.wm.read_factory_settings(use_empty=True)
    blendtruth.api._scene_key = None  # the loaded scene was replaced behind the API's back
    return bpy


def _both(spec, camera: Camera):
    views = {}
    for truth in ("raycast", "cycles"):
        views[truth] = blendtruth.render_view(
            camera, scene=spec, width=camera.width, height=camera.height, rgb=False,
            truth=truth, passes=PASSES,
        )  # fmt: skip
        assert views[truth].meta["ground_truth"]["backend"] == truth
    caster = backend_for(spec).caster(0)
    return views["raycast"], views["cycles"], caster


def _camera(eye=(3.0, -4.0, 2.5), target=(0.0, 0.0, 0.0)) -> Camera:
    return Camera(Intrinsics.from_fov(50, W, H), look_at(np.array(eye), np.array(target)))


def _check(spec, camera=None) -> dict:
    ray, cyc, caster = _both(spec, camera or _camera())
    stats = compare(ray, cyc, caster, camera or _camera())
    assert_agree(stats)
    return stats


@pytest.mark.parametrize("primitive", ["cube", "uv_sphere", "monkey"])
def test_primitives_flat_and_smooth(primitive):
    _check(SceneSpec(primitive=primitive, normalize=False, light="factory"))


def test_custom_split_normals(tmp_path):
    bpy = _empty_scene()
    bpy.ops.mesh.primitive_grid_add(x_subdivisions=6, y_subdivisions=6, size=2.5)
    obj = bpy.context.active_object
    mesh = obj.data
    co = np.empty(len(mesh.vertices) * 3)
    mesh.vertices.foreach_get("co", co)
    co = co.reshape(-1, 3)
    co[:, 2] = 0.3 * np.sin(2 * co[:, 0]) * np.cos(co[:, 1])  # a bumpy sheet
    mesh.vertices.foreach_set("co", co.ravel())
    # Custom normals far from the geometric ones: tilted by 25 degrees toward +x.
    tilt = np.radians(25)
    normals = [(np.sin(tilt) * (1 if x > 0 else -1), 0.0, np.cos(tilt)) for x in co[:, 0]]
    mesh.normals_split_custom_set_from_vertices(normals)
    mesh.update()
    assert mesh.normals_domain == "CORNER"
    path = _save_blend(tmp_path / "custom.blend")
    spec = SceneSpec(models=(path,), normalize=False, light="ambient")
    stats = _check(spec, _camera(eye=(0.5, -2.5, 3.0)))
    # The custom normals are what both report: far from the face normals.
    ray = blendtruth.render_view(_camera(eye=(0.5, -2.5, 3.0)), scene=spec, width=W,
                                 height=H, rgb=False, passes=PASSES)  # fmt: skip
    from raycast_compare import angle_deg

    dev = angle_deg(ray.normal, ray.extra["normal_geometric"])[ray.mask]
    assert np.median(dev) > 10, (np.median(dev), stats)


def test_linked_duplicates_with_mirror_and_ids(tmp_path):
    bpy = _empty_scene()
    bpy.ops.mesh.primitive_monkey_add(size=1.0)
    base = bpy.context.active_object
    bpy.ops.object.shade_smooth()
    mat = bpy.data.materials.new("Red")
    base.data.materials.append(mat)
    copies = [base]
    for i, (loc, scale) in enumerate([((1.4, 0.3, 0.0), (1.0, 1.0, 1.0)),
                                      ((-1.3, 0.2, 0.3), (-1.0, 0.8, 1.2))]):  # fmt: skip
        dup = bpy.data.objects.new(f"Dup{i}", base.data)  # shares the mesh: linked duplicate
        dup.location = loc
        dup.scale = scale
        dup.rotation_euler = (0.2, 0.1 * i, 0.5)
        bpy.context.scene.collection.objects.link(dup)
        copies.append(dup)
    assert len({c.data.name for c in copies}) == 1
    path = _save_blend(tmp_path / "dups.blend")
    spec = SceneSpec(models=(path,), normalize=False, light="ambient")
    camera = _camera(eye=(0.5, -5.0, 2.0))
    ray, cyc, caster = _both(spec, camera)
    assert_agree(compare(ray, cyc, caster, camera))
    # Three instances, ids 1..3, each visible; one material id on all of them.
    ids = np.unique(ray.extra["instance"][ray.mask])
    assert list(ids) == [1, 2, 3]
    assert set(np.unique(ray.extra["material"][ray.mask])) == {1}
    if "instance" in cyc.extra:  # Cycles' Object Index pass, where this build makes it
        both = ray.mask & cyc.mask
        assert np.array_equal(ray.extra["instance"][both], cyc.extra["instance"][both])


def test_modifiers_evaluated_at_render_settings(tmp_path):
    bpy = _empty_scene()
    bpy.ops.mesh.primitive_cube_add(size=1.0)
    obj = bpy.context.active_object
    sub = obj.modifiers.new("sub", "SUBSURF")
    sub.levels, sub.render_levels = 0, 2  # viewport differs from render: render must win
    arr = obj.modifiers.new("arr", "ARRAY")
    arr.count = 2
    bpy.ops.object.shade_smooth()
    path = _save_blend(tmp_path / "mods.blend")
    spec = SceneSpec(models=(path,), normalize=False, light="ambient")
    stats = _check(spec, _camera(eye=(1.0, -4.0, 2.0), target=(0.5, 0.0, 0.0)))
    tris = backend_for(spec).caster(0).scene.triangle_count
    assert tris == 2 * 6 * 16 * 2, (tris, stats)  # 2 copies x 6 faces x 4^2 quads x 2


def test_ngons_and_non_planar_quads(tmp_path):
    # Flat-shaded OBJ: a non-planar hexagon and two strongly non-planar quads, where
    # Blender's triangulation (not a file reader's) decides what is hit.
    path = tmp_path / "ngons.obj"
    ang = np.linspace(0, 2 * np.pi, 7)[:-1]
    hexagon = [(np.cos(a), np.sin(a), 0.4 * (-1) ** k) for k, a in enumerate(ang)]
    quads = [(1.5, -1, 0), (3, -1, 0.8), (3, 1, 0), (1.5, 1, 0.9),
             (-3, -1, 0), (-1.5, -1, -0.7), (-1.5, 1, 0), (-3, 1, 0.6)]  # fmt: skip
    lines = [f"v {x} {y} {z}" for x, y, z in hexagon + quads]
    lines += ["f 1 2 3 4 5 6", "f 7 8 9 10", "f 11 12 13 14"]
    path.write_text("\n".join(lines) + "\n")
    spec = SceneSpec(models=(path,), normalize=False, light="ambient")
    stats = _check(spec, _camera(eye=(0.3, -2.0, 6.0)))
    assert stats["pixels"] > 2000


def test_shared_mesh_models(meshes):
    for name in ("stanford-bunny.obj", "BoxTextured.glb", "spot.obj"):
        spec = SceneSpec(models=(meshes / name,), normalize=True, light="ambient")
        _check(spec, _camera(eye=(1.5, -2.0, 1.2)))


def test_normal_map_falls_back_to_cycles_and_says_so(tmp_path):
    bpy = _empty_scene()
    bpy.ops.mesh.primitive_plane_add(size=2.0)
    obj = bpy.context.active_object
    mat = bpy.data.materials.new("Bumpy")
    mat.use_nodes = True
    nodes = mat.node_tree.nodes
    bsdf = nodes["Principled BSDF"]
    nmap = nodes.new("ShaderNodeNormalMap")
    mat.node_tree.links.new(nmap.outputs["Normal"], bsdf.inputs["Normal"])
    obj.data.materials.append(mat)
    path = _save_blend(tmp_path / "nmap.blend")
    spec = SceneSpec(models=(path,), normalize=False, light="ambient")
    camera = _camera(eye=(0.5, -1.0, 3.0))
    with pytest.warns(BlendtruthWarning, match="normal map"):
        view = blendtruth.render_view(camera, scene=spec, width=W, height=H, rgb=False,
                                      passes="default,normal_bump")  # fmt: skip
    gt = view.meta["ground_truth"]
    assert gt["backend"] == "cycles" and gt["requested"] == "raycast"
    assert "'Bumpy' has a bump or normal map" in gt["fallback_reason"]
    # Without normal_bump the ray caster makes every requested pass exactly.
    view = blendtruth.render_view(camera, scene=spec, width=W, height=H, rgb=False)
    assert view.meta["ground_truth"]["backend"] == "raycast"
    assert view.meta["ground_truth"]["fallback_reason"] is None


def test_transparent_material_falls_back(tmp_path):
    bpy = _empty_scene()
    bpy.ops.mesh.primitive_plane_add(size=2.0)
    obj = bpy.context.active_object
    mat = bpy.data.materials.new("Glassy")
    mat.use_nodes = True
    mat.node_tree.nodes["Principled BSDF"].inputs["Alpha"].default_value = 0.3
    obj.data.materials.append(mat)
    path = _save_blend(tmp_path / "alpha.blend")
    spec = SceneSpec(models=(path,), normalize=False, light="ambient")
    with pytest.warns(BlendtruthWarning, match="alpha"):
        view = blendtruth.render_view(_camera(eye=(0.5, -1.0, 3.0)), scene=spec, width=W,
                                      height=H, rgb=False)  # fmt: skip
    assert view.meta["ground_truth"]["backend"] == "cycles"


@pytest.fixture
def cycles_default(monkeypatch):
    """render_view's default settings with --truth cycles."""
    monkeypatch.setattr(
        blendtruth.api, "RenderSettings", functools.partial(RenderSettings, truth="cycles")
    )


def test_analytic_cube_and_sphere_on_cycles(cycles_default):
    # tests/test_render.py checks the default backend (raycast) against analytic truth;
    # the same checks with Cycles' ground truth:
    import test_render

    view = blendtruth.render_view(width=128, height=72, rgb=False)
    assert view.meta["ground_truth"]["backend"] == "cycles"
    test_render.test_factory_cube_matches_analytic_box()
    test_render.test_custom_camera_non_square_pixels_and_shifted_principal_point()
    test_render.test_uv_sphere_within_tessellation_bound()


def test_analytic_cube_raycast_is_float64_exact():
    from analytic import ray_box

    camera = _camera(eye=(3.1, -4.2, 2.6), target=(0.1, 0.0, -0.1))
    view = blendtruth.render_view(camera, scene="cube", width=W, height=H, rgb=False)
    assert view.meta["ground_truth"]["backend"] == "raycast"
    depth, dist, _, mask = ray_box(camera.intrinsics, camera.cam_to_world, -np.ones(3), np.ones(3))
    both = mask & view.mask
    assert (mask != view.mask).sum() <= 2
    # float32 storage is the only error left: half an ulp is 3e-8 relative.
    rel = np.abs(view.depth[both] - depth[both]) / depth[both]
    assert rel.max() <= 1.5e-7 and np.median(rel) <= 6e-8, (rel.max(), np.median(rel))
    rel = np.abs(view.distance[both] - dist[both]) / dist[both]
    assert rel.max() <= 2e-7, rel.max()


def test_interrupted_render_leaves_no_half_written_file(tmp_path):
    from blendtruth.multiview import ViewPlan, render_model
    from blendtruth.writers.npz import read_view_npz

    def stop(done: int, total: int) -> None:
        if done == 3:
            raise KeyboardInterrupt

    settings = RenderSettings(width=64, height=48, rgb=False)
    spec = SceneSpec(primitive="monkey", normalize=False, light="factory")
    with pytest.raises(KeyboardInterrupt):
        render_model(spec, ViewPlan(views=8), settings, tmp_path, on_view=stop)
    files = [p for p in tmp_path.rglob("*") if p.is_file()]
    assert not [p for p in files if p.name.startswith(".") or p.suffix == ".tmp"], files
    assert not (tmp_path / "points.ply").exists() and not (tmp_path / "cameras.json").exists()
    npz = sorted((tmp_path / "views").glob("*.npz"))
    assert 1 <= len(npz) <= 3  # the views rendered before the interrupt, each complete
    for path in npz:
        assert read_view_npz(path).mask.any()
