"""Ground-truth passes (ids, positions, NOCS, UV, geometric normals) against independent
truth: an Embree ray cast (trimesh + embreex) of the same world triangles, and analytic
geometry."""

from __future__ import annotations

import json

import numpy as np
import pytest

pytest.importorskip("bpy")
trimesh = pytest.importorskip("trimesh")

import blendtruth  # noqa: E402
from blendtruth import Camera, Intrinsics, SceneSpec  # noqa: E402
from blendtruth.geometry.frames import look_at  # noqa: E402
from blendtruth.geometry.rays import backproject, ray_directions  # noqa: E402
from blendtruth.multiview import ViewPlan, render_model  # noqa: E402
from blendtruth.passes import PASSES, parse_passes  # noqa: E402
from blendtruth.writers.npz import read_view_npz  # noqa: E402

from analytic import camera_rays, ray_box  # noqa: E402

pytestmark = pytest.mark.render

ALL = parse_passes("all")


def _three_object_scene(tmp_path):
    """A glTF with one box mesh used by two nodes (linked duplicates, two materials would
    need two meshes, so one material) and an OBJ sphere with its own material."""
    box = trimesh.creation.box(extents=(1.0, 1.0, 1.0))
    box.visual = trimesh.visual.TextureVisuals(
        material=trimesh.visual.material.PBRMaterial(
            name="boxmat", baseColorFactor=[200, 50, 50, 255]
        )
    )
    scene = trimesh.Scene()
    scene.add_geometry(box, node_name="box_a", geom_name="box", transform=_at(0.0, 0.0, 0.0))
    scene.add_geometry(box, node_name="box_b", geom_name="box", transform=_at(0.8, 0.3, -1.5))
    glb = tmp_path / "boxes.glb"
    glb.write_bytes(_share_first_mesh(scene.export(file_type="glb")))

    sphere = trimesh.creation.icosphere(subdivisions=2, radius=0.6)
    sphere.apply_translation((-0.7, -0.2, -0.8))
    obj = tmp_path / "ball.obj"
    (tmp_path / "ball.mtl").write_text("newmtl ballmat\nKd 0.1 0.8 0.2\n")
    body = trimesh.exchange.obj.export_obj(sphere, include_normals=False, include_texture=False)
    obj.write_text("mtllib ball.mtl\no ball\nusemtl ballmat\n" + body)
    world = {
        "box_a": box.copy().apply_transform(_at(0.0, 0.0, 0.0)),
        "box_b": box.copy().apply_transform(_at(0.8, 0.3, -1.5)),
        "ball": sphere,
    }
    return [glb, obj], world


def _share_first_mesh(data: bytes) -> bytes:
    """Point every mesh node of a GLB at its first mesh (trimesh writes one per node)."""
    n = int.from_bytes(data[12:16], "little")
    gltf = json.loads(data[20 : 20 + n])
    for node in gltf["nodes"]:
        if "mesh" in node:
            node["mesh"] = 0
    gltf["meshes"] = gltf["meshes"][:1]
    text = json.dumps(gltf).encode()
    text += b" " * (-len(text) % 4)
    rest = data[20 + n :]
    body = len(text).to_bytes(4, "little") + b"JSON" + text + rest
    return b"glTF" + (2).to_bytes(4, "little") + (12 + len(body)).to_bytes(4, "little") + body


def _at(x, y, z):
    m = np.eye(4)
    m[:3, 3] = (x, y, z)
    return m


def _embree(world: dict, camera: Camera):
    """Per pixel: the name of the hit part, the hit point and the face normal (world)."""
    from trimesh.ray.ray_pyembree import RayMeshIntersector

    names = list(world)
    mesh = trimesh.util.concatenate([world[n] for n in names])
    owner = np.concatenate([np.full(len(world[n].faces), i) for i, n in enumerate(names)])
    dirs = ray_directions(camera.intrinsics).reshape(-1, 3) @ camera.cam_to_world[:3, :3].T
    origins = np.broadcast_to(camera.cam_to_world[:3, 3], dirs.shape)
    locs, ray, tri = RayMeshIntersector(mesh).intersects_location(
        origins, dirs, multiple_hits=False
    )
    h, w = camera.height, camera.width
    part = np.full(h * w, -1)
    part[ray] = owner[tri]
    point = np.zeros((h * w, 3))
    point[ray] = locs
    normal = np.zeros((h * w, 3))
    normal[ray] = mesh.face_normals[tri]
    return names, part.reshape(h, w), point.reshape(h, w, 3), normal.reshape(h, w, 3)


@pytest.fixture(scope="module")
def three(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("three")
    files, world = _three_object_scene(tmp)
    spec = SceneSpec(models=tuple(files), normalize=False, light="ambient")
    eye = np.array([0.6, -0.9, 4.0])
    eye = np.array([1.2, 3.5, 2.0])
    camera = Camera(Intrinsics.from_fov(45.0, 96, 80), look_at(eye, (0.0, 0.0, -0.6)))
    view = blendtruth.render_view(camera, scene=spec, width=96, height=80, rgb=False, passes="all")
    table = blendtruth.api.backend_for(spec).info.table
    return view, table, world, camera, files


def test_ids_match_an_independent_ray_cast(three):
    view, table, world, camera, files = three
    names, part, _, _ = _embree(world, camera)
    by_object = {inst.object: inst for inst in table.instances}
    assert sorted(by_object) == ["ball", "box_a", "box_b"]
    assert by_object["box_a"].mesh == by_object["box_b"].mesh  # linked duplicates
    expected = np.zeros(part.shape, dtype=np.int32)
    for i, name in enumerate(names):
        expected[part == i] = by_object[name].id
    instance = view.extra["instance"]
    for name in names:  # every object is seen, the far box partly hidden
        assert (instance == by_object[name].id).sum() > 50, name
    differ = instance != expected
    # Only pixel centres on silhouettes may differ (float32 ray/triangle tests).
    assert differ.sum() <= 0.002 * differ.size, differ.sum()
    # Semantic: one class per source file; material: boxes share one, the ball another.
    sem = view.extra["semantic"]
    assert by_object["box_a"].semantic == by_object["box_b"].semantic != by_object["ball"].semantic
    same = ~differ & view.mask
    lookup = {inst.id: inst for inst in table.instances}
    want_sem = np.vectorize(lambda i: lookup[i].semantic if i else 0)(instance)
    np.testing.assert_array_equal(sem, want_sem)
    mat_names = {m.id: m.name for m in table.materials}
    mats = view.extra["material"]
    hit_mats = {mat_names[m] for m in np.unique(mats[same]) if m}
    assert len(hit_mats) == 2 and "ballmat" in hit_mats
    ball_mat = next(k for k, v in mat_names.items() if v == "ballmat")
    np.testing.assert_array_equal(mats[same] == ball_mat, part[same] == names.index("ball"))


def test_ids_are_stable_across_reloads_and_table_round_trips(three, tmp_path):
    view, table, _, camera, files = three
    spec = SceneSpec(models=tuple(reversed(files)), normalize=False, light="ambient")
    other = blendtruth.api.backend_for(spec).info.table  # files in the other order
    again = blendtruth.api.backend_for(
        SceneSpec(models=tuple(files), normalize=False, light="ambient")
    )
    assert again.info.table == table  # same scene, same ids
    assert {i.object: i.id for i in other.instances} != {i.object: i.id for i in table.instances}
    out = tmp_path / "mv"
    render_model(
        SceneSpec(models=tuple(files), normalize=False, light="ambient"),
        ViewPlan(views=2),
        blendtruth.RenderSettings(
            width=32, height=32, rgb=False, passes="instance,material", amodal=True
        ),
        out,
    )
    data = json.loads((out / "instances.json").read_text())
    assert [(i["id"], i["object"]) for i in data["instances"]] == [
        (i.id, i.object) for i in table.instances
    ]
    inst0 = read_view_npz(out / "views" / "0000.npz").extra["instance"]
    ids, counts = np.unique(inst0, return_counts=True)
    for inst in data["instances"]:
        got = dict(zip(ids.tolist(), counts.tolist(), strict=True)).get(inst["id"], 0)
        assert inst["pixels"]["0000"] == got
        frac = inst["visible_fraction"]["0001"]
        assert frac is None or 0 < frac <= 1


def test_position_is_the_back_projected_depth_and_normal_geometric_the_face_normal(three):
    view, table, world, camera, _ = three
    names, part, point, face_normal = _embree(world, camera)
    pos = view.extra["position"]
    back = backproject(view.depth, camera.intrinsics, camera.cam_to_world)
    scene_size = 3.0
    err = np.linalg.norm(pos - back, axis=-1)[view.mask]
    assert err.max() <= 1e-6 * scene_size * 5, err.max()
    assert np.abs(pos[~view.mask]).max() == 0
    # The geometric normal equals Embree's face normal (up to the facing sign) and faces
    # the camera everywhere.
    ng = view.extra["normal_geometric"]
    rays = ray_directions(camera.intrinsics)
    assert (np.sum(ng * rays, axis=-1)[view.mask] < 0).all()
    ref = face_normal @ camera.cam_to_world[:3, :3]  # world -> camera frame
    ref = np.where((np.sum(ref * rays, axis=-1) > 0)[..., None], -ref, ref)
    same = view.mask & (part >= 0) & (np.linalg.norm(point - back, axis=-1) < 1e-4)
    a, b = ng[same].astype(np.float64), ref[same]
    # atan2(|a x b|, a . b): arccos loses ~0.02 deg to float32 rounding near 1.
    angle = np.degrees(np.arctan2(np.linalg.norm(np.cross(a, b), axis=-1), np.sum(a * b, -1)))
    assert same.sum() > 0.9 * view.mask.sum()
    assert angle.max() <= 0.01, angle.max()


def test_object_coords_of_the_factory_cube_are_analytic():
    camera = Camera(Intrinsics.from_fov(50.0, 64, 48), look_at((3.0, -4.0, 2.5), (0, 0, 0)))
    view = blendtruth.render_view(camera, scene="cube", width=64, height=48, rgb=False,
                                  passes="object_coords,position")  # fmt: skip
    depth, _, _, mask = ray_box(camera.intrinsics, camera.cam_to_world, (-1, -1, -1), (1, 1, 1))
    hit = (camera_rays(camera.intrinsics) * depth[..., None]) @ camera.cam_to_world[:3, :3].T
    hit += camera.cam_to_world[:3, 3]
    nocs = hit / (2 * np.sqrt(3)) + 0.5  # bbox [-1, 1]^3, diagonal 2*sqrt(3)
    both = mask & view.mask
    assert (mask != view.mask).sum() <= 8
    got = view.extra["object_coords"]
    assert np.abs(got[both] - nocs[both]).max() < 2e-6
    assert got[both].min() >= 0.5 - 1 / (2 * np.sqrt(3)) - 1e-6
    assert np.abs(got[~view.mask]).max() == 0
    # A flipped axis would fail: the NOCS x grows with world x.
    assert np.corrcoef(got[both][:, 0], hit[both][:, 0])[0, 1] > 0.99


def test_uv_on_the_plane_primitive_is_analytic():
    # Blender's 2x2 plane: vertex (x, y) has uv ((x + 1) / 2, (y + 1) / 2).
    camera = Camera(Intrinsics.from_fov(60.0, 48, 40), look_at((0.3, -1.2, 2.0), (0, 0, 0)))
    view = blendtruth.render_view(camera, scene="plane", width=48, height=40, rgb=False,
                                  passes="uv")  # fmt: skip
    d = camera_rays(camera.intrinsics) @ camera.cam_to_world[:3, :3].T
    o = camera.cam_to_world[:3, 3]
    t = -o[2] / d[..., 2]
    hit = o + d * t[..., None]
    inside = (np.abs(hit[..., 0]) < 1 - 1e-3) & (np.abs(hit[..., 1]) < 1 - 1e-3)
    uv = (hit[..., :2] + 1) / 2
    assert inside.sum() > 200
    assert view.mask[inside].all()
    err = np.abs(view.extra["uv"][inside] - uv[inside]).max()
    assert err < 1e-5, err
    assert np.abs(view.extra["uv"][~view.mask]).max() == 0


def test_every_pass_is_background_outside_the_mask(three):
    view = three[0]
    assert set(view.passes()) == set(ALL)
    for name, array in view.passes().items():
        spec = PASSES[name]
        spec.check(array, *view.mask.shape)
        bg = spec.empty(*view.mask.shape)
        np.testing.assert_array_equal(array[~view.mask], bg[~view.mask], err_msg=name)
    assert (view.extra["instance"][view.mask] > 0).all()
    for name in ("normal", "normal_geometric", "normal_bump"):
        n = np.linalg.norm(view.passes()[name][view.mask], axis=-1)
        assert np.abs(n - 1).max() < 1e-5, name


def test_amodal_masks_equal_each_instance_rendered_alone(three, tmp_path):
    from blendtruth.amodal import unpack

    _, table, world, camera, files = three
    spec = SceneSpec(models=tuple(files), normalize=False, light="ambient")
    view = blendtruth.render_view(camera, scene=spec, width=96, height=80, rgb=False,
                                  amodal=True)  # fmt: skip
    ids = view.extra["amodal_ids"]
    masks = unpack(view.extra["amodal"], 80, 96)
    assert sorted(ids.tolist()) == [i.id for i in table.instances]
    by_id = {i.id: i.object for i in table.instances}
    instance = view.extra["instance"]
    for inst, mask in zip(ids.tolist(), masks, strict=True):
        # Independent truth: Embree with only this object in the scene.
        _, part, _, _ = _embree({by_id[inst]: world[by_id[inst]]}, camera)
        alone = part >= 0
        assert (mask != alone).sum() <= 0.002 * mask.size
        assert (mask | ~(instance == inst)).all()  # the visible part lies inside
        info = view.meta["amodal"][str(inst)]
        assert info["amodal_pixels"] == mask.sum()
        assert info["visible_fraction"] == pytest.approx((instance == inst).sum() / mask.sum())
    # Something is really occluded in this scene: an amodal mask larger than the visible.
    fractions = [v["visible_fraction"] for v in view.meta["amodal"].values()]
    assert min(fractions) < 0.9, fractions
    # Round trip through the view file.
    from blendtruth.writers.npz import read_view_npz, write_view_npz

    write_view_npz(tmp_path / "v.npz", view)
    back = read_view_npz(tmp_path / "v.npz")
    np.testing.assert_array_equal(unpack(back.extra["amodal"], 80, 96), masks)


def test_semantic_map_overrides_classes(three):
    _, _, _, camera, files = three
    spec = SceneSpec(models=tuple(files), normalize=False, light="ambient",
                     semantic_map=(("ball*", 7), ("box_b", 9)))  # fmt: skip
    view = blendtruth.render_view(camera, scene=spec, width=96, height=80, rgb=False,
                                  passes="semantic,instance")  # fmt: skip
    table = blendtruth.api.backend_for(spec).info.table
    want = {"ball": 7, "box_b": 9, "box_a": 1}  # box_a keeps its file's class
    for inst in table.instances:
        assert inst.semantic == want[inst.object], inst.object
        sel = view.extra["instance"] == inst.id
        assert (view.extra["semantic"][sel] == want[inst.object]).all()
    by_material = SceneSpec(models=tuple(files), normalize=False, light="ambient",
                            semantic="material")  # fmt: skip
    view = blendtruth.render_view(camera, scene=by_material, width=96, height=80, rgb=False,
                                  passes="semantic,material")  # fmt: skip
    np.testing.assert_array_equal(view.extra["semantic"], view.extra["material"])
