"""Models from ../shared/meshes against independent truth: an Embree ray caster (trimesh
+ embreex) on the raw file, multi-view consistency, and the fused point cloud on the mesh."""

from __future__ import annotations

import json

import numpy as np
import pytest

pytest.importorskip("bpy")
trimesh = pytest.importorskip("trimesh")

from blendtruth.geometry.camera import Intrinsics  # noqa: E402
from blendtruth.geometry.rays import backproject, project, ray_directions  # noqa: E402
from blendtruth.multiview import ViewPlan, render_model  # noqa: E402
from blendtruth.scene import SceneSpec  # noqa: E402
from blendtruth.settings import RenderSettings  # noqa: E402
from blendtruth.writers.npz import read_view_npz  # noqa: E402
from blendtruth.writers.points_ply import read_ply  # noqa: E402

pytestmark = pytest.mark.render

ALL_MODELS = [
    "stanford-bunny.obj", "spot.obj", "teapot.obj", "suzanne.obj", "fandisk.obj", "igea.ply",
    "cow.obj", "BoxTextured.glb", "monkey.glb", "fuze.obj", "unit_sphere.STL", "teapot.stl",
    "sphere.ply", "nested.glb", "testplate.glb",
]  # fmt: skip


def _load_trimesh(path) -> trimesh.Trimesh:
    loaded = trimesh.load(path, force="mesh", process=False)
    return loaded


def _raycast(mesh: trimesh.Trimesh, intr: Intrinsics, cam_to_world: np.ndarray):
    """Depth (planar), face normal (world) and hit mask at pixel centres, by Embree."""
    from trimesh.ray.ray_pyembree import RayMeshIntersector

    dirs_cam = ray_directions(intr).reshape(-1, 3)
    dirs = dirs_cam @ cam_to_world[:3, :3].T
    origins = np.broadcast_to(cam_to_world[:3, 3], dirs.shape)
    locs, ray_idx, tri_idx = RayMeshIntersector(mesh).intersects_location(
        origins, dirs, multiple_hits=False
    )
    depth = np.zeros(len(dirs))
    normal = np.zeros((len(dirs), 3))
    depth[ray_idx] = (locs - cam_to_world[:3, 3]) @ cam_to_world[:3, 2]
    normal[ray_idx] = mesh.face_normals[tri_idx]
    shape = (intr.height, intr.width)
    return depth.reshape(shape), normal.reshape(*shape, 3), (depth > 0).reshape(shape)


def _render(meshes, tmp_path_factory, name: str, normalize: bool = False, views: int = 4):
    out = tmp_path_factory.mktemp(name.split(".")[0])
    spec = SceneSpec(models=(meshes / name,), normalize=normalize)
    plan = ViewPlan(sampler="sphere", views=views)
    settings = RenderSettings(width=128, height=128, samples=2, points=True)
    render_model(spec, plan, settings, out)
    return out


@pytest.fixture(scope="module")
def bunny_views(meshes, tmp_path_factory):
    return _render(meshes, tmp_path_factory, "stanford-bunny.obj")


@pytest.mark.parametrize("name", ["stanford-bunny.obj", "nested.glb"])
def test_depth_and_mask_match_embree_on_the_raw_file(meshes, tmp_path_factory, name):
    # nested.glb: a node hierarchy whose parent transforms must be kept.
    out = _render(meshes, tmp_path_factory, name)
    mesh = _load_trimesh(meshes / name)
    for npz in sorted((out / "views").glob("*.npz")):
        view = read_view_npz(npz)
        depth, _, mask = _raycast(mesh, view.camera.intrinsics, view.cam_to_world)
        # Masks: two float32 ray tracers may disagree only on rays grazing an edge.
        disagree = (view.mask != mask).sum()
        assert disagree <= max(3, 0.01 * mask.sum()), (npz.name, disagree, mask.sum())
        both = view.mask & mask
        rel = np.abs(view.depth[both] - depth[both]) / depth[both]
        # A grazing ray may hit a neighbouring triangle in one tracer: judge the bulk.
        assert np.median(rel) < 1e-6 and np.quantile(rel, 0.99) < 1e-4, npz.name


def test_flat_normals_match_embree(meshes, tmp_path):
    # STL imports flat-shaded, so Blender's shading normal is the face normal.
    path = meshes / "teapot.stl"
    render_model(
        SceneSpec(models=(path,), normalize=False),
        ViewPlan(views=2),
        RenderSettings(width=64, height=64, rgb=False),
        tmp_path,
    )
    mesh = _load_trimesh(path)
    for npz in sorted((tmp_path / "views").glob("*.npz")):
        view = read_view_npz(npz)
        _, normal_world, mask = _raycast(mesh, view.camera.intrinsics, view.cam_to_world)
        both = view.mask & mask
        ours = view.normal[both] @ view.cam_to_world[:3, :3].T
        cos = np.abs(np.sum(ours * normal_world[both], axis=-1))  # trimesh winding may differ
        err = np.degrees(np.arccos(np.clip(cos, -1, 1)))
        assert np.quantile(err, 0.95) < 0.05, np.quantile(err, 0.95)


def _bilinear_depth(view, uv: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """View depth interpolated at continuous pixel coordinates ``uv`` (pixel centres at
    +0.5), and where that is meaningful: all four neighbours hit, on one surface (their
    depths within 1% of each other)."""
    x, y = uv[:, 0] - 0.5, uv[:, 1] - 0.5
    c0, r0 = np.floor(x).astype(int), np.floor(y).astype(int)
    ok = (c0 >= 0) & (r0 >= 0) & (c0 + 1 < view.camera.width) & (r0 + 1 < view.camera.height)
    c0, r0 = np.where(ok, c0, 0), np.where(ok, r0, 0)
    fx, fy = x - c0, y - r0
    d = [view.depth[r0 + dr, c0 + dc] for dr in (0, 1) for dc in (0, 1)]
    stack = np.stack(d)
    ok &= np.all(stack > 0, axis=0)
    ok &= (stack.max(axis=0) - stack.min(axis=0)) < 0.01 * stack.max(axis=0)
    # On a plane, 1/depth is affine in (u, v), so its bilinear interpolation is exact.
    inv = [1 / np.where(di > 0, di, np.inf) for di in d]
    value = (inv[0] * (1 - fx) + inv[1] * fx) * (1 - fy) + (inv[2] * (1 - fx) + inv[3] * fx) * fy
    return 1 / np.where(value > 0, value, np.nan), ok


def _round_trip_errors(views) -> tuple[np.ndarray, np.ndarray, int]:
    """Back-project view i, project into view j, read j's depth there, back-project it and
    project into view i again. Returns the reprojection errors (px) and relative depth
    differences of all visible points of all pairs, and the number of overlapping pairs."""
    reproj_all, rel_all, pairs = [], [], 0
    for i, vi in enumerate(views):
        pts = backproject(vi.depth, vi.camera.intrinsics, vi.cam_to_world)[vi.mask]
        start_uv = np.argwhere(vi.mask)[:, ::-1] + 0.5
        for j, vj in enumerate(views):
            if i == j:
                continue
            uv, z = project(pts, vj.camera.intrinsics, vj.cam_to_world)
            dj, ok = _bilinear_depth(vj, uv)
            visible = ok & (np.abs(dj - z) < 0.01 * z)  # not occluded in view j
            if visible.sum() < 30:
                continue
            rays = np.column_stack([uv[visible], np.ones(visible.sum())])
            p_cam = (rays @ np.linalg.inv(vj.K).T) * dj[visible, None]
            p_world = p_cam @ vj.cam_to_world[:3, :3].T + vj.cam_to_world[:3, 3]
            uv_i, _ = project(p_world, vi.camera.intrinsics, vi.cam_to_world)
            reproj_all.append(np.linalg.norm(uv_i - start_uv[visible], axis=1))
            rel_all.append(np.abs(dj[visible] - z[visible]) / z[visible])
            pairs += 1
    return np.concatenate(reproj_all), np.concatenate(rel_all), pairs


@pytest.mark.parametrize("model", ["BoxTextured.glb", "suzanne.obj"])
def test_multiview_consistency(meshes, tmp_path_factory, model):
    """Points of view i land on view j's depth where visible.

    j's depth between pixel centres is interpolated (1/depth bilinearly, exact inside a
    planar facet), so the medians measure our cameras, not the interpolation: low-poly
    models whose facets span several pixels at 128 px. (On the scanned bunny, facets are
    pixel-sized and interpolation alone costs ~1e-4.)"""
    out = _render(meshes, tmp_path_factory, model, normalize=True, views=6)
    views = [read_view_npz(p) for p in sorted((out / "views").glob("*.npz"))]
    reproj, rel, pairs = _round_trip_errors(views)
    assert pairs >= 4, "views of one model must overlap"
    assert np.median(reproj) <= 0.1, np.median(reproj)
    assert np.median(rel) <= 1e-4, np.median(rel)


def test_points_ply_lies_on_the_mesh(meshes, bunny_views):
    cloud = read_ply(bunny_views / "points.ply")
    pts = cloud["points"]
    meta = json.loads(str(np.load(bunny_views / "views" / "0000.npz")["meta"]))
    radius = meta["scene"]["bounding_sphere"]["radius"]
    mesh = _load_trimesh(meshes / "stanford-bunny.obj")
    rng = np.random.default_rng(0)
    sample = pts[rng.choice(len(pts), size=min(3000, len(pts)), replace=False)]
    _, dist, _ = trimesh.proximity.closest_point(mesh, sample)
    assert len(pts) > 1000
    assert dist.mean() <= 1e-4 * radius, dist.mean() / radius


@pytest.mark.parametrize("name", ALL_MODELS)
def test_every_shared_model_renders(meshes, tmp_path, name):
    spec = SceneSpec(models=(meshes / name,))
    render_model(spec, ViewPlan(views=2), RenderSettings(width=64, height=64, samples=4), tmp_path)
    for npz in sorted((tmp_path / "views").glob("*.npz")):
        view = read_view_npz(npz)
        assert view.mask.sum() > 40, f"{name}: the model must be visible"
        assert np.isfinite(view.depth).all() and np.isfinite(view.normal).all()
        lum = view.rgb[view.mask].mean(axis=-1)
        assert lum.mean() > 30, f"{name}: a visible object must not render black"
    meta = json.loads(str(np.load(tmp_path / "views" / "0000.npz")["meta"]))
    # Normalised into the unit sphere around the origin.
    assert meta["scene"]["bounding_sphere"]["radius"] == pytest.approx(1.0, abs=1e-6)
    np.testing.assert_allclose(meta["scene"]["bounding_sphere"]["center"], 0, atol=1e-6)


@pytest.mark.parametrize("name", ["BoxTextured.glb", "fuze.obj"])
def test_textured_models_show_their_texture(meshes, tmp_path, name):
    # Under uniform (ambient) light, a clay model is one flat grey; the textured model's
    # colours vary across its surface.
    spreads = {}
    for material in ("clay", "keep"):
        out = tmp_path / material
        spec = SceneSpec(models=(meshes / name,), light="ambient", material=material)
        render_model(spec, ViewPlan(views=1), RenderSettings(width=96, height=96, samples=8), out)
        view = read_view_npz(out / "views" / "0000.npz")
        inner = view.mask & (view.alpha == 1)
        spreads[material] = view.rgb[inner].astype(float).std(axis=0).max()
    assert spreads["keep"] > 20 and spreads["keep"] > 3 * spreads["clay"], spreads


@pytest.mark.parametrize("light", ["studio", "sun", "ambient"])
def test_light_presets_never_black(meshes, tmp_path, light):
    spec = SceneSpec(models=(meshes / "cow.obj",), light=light, material="clay")
    render_model(
        spec,
        ViewPlan(sampler="sphere", views=6),
        RenderSettings(width=48, height=48, samples=4),
        tmp_path,
    )
    for npz in sorted((tmp_path / "views").glob("*.npz")):
        view = read_view_npz(npz)
        assert view.rgb[view.mask].mean() > 40, (light, npz.name)
