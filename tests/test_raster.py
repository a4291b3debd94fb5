"""The rasteriser (raycast/raster.py) against Embree and brute force (no bpy).

For a pinhole camera with the scene beyond its near plane, the rasterised hit triangle
of each pixel must be Embree's except on pixel centres within 1e-4 px of an edge (where
float32 and float64 may decide differently), and the ray-vs-every-triangle float64 truth
except on such centres; the answer must not depend on the thread count, and a pixel
centre on a shared edge must never fall through.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("embreex")
pytest.importorskip("numba")
trimesh = pytest.importorskip("trimesh")

from blendtruth import Camera, Intrinsics  # noqa: E402
from blendtruth.geometry.frames import look_at  # noqa: E402
from blendtruth.raycast.cast import RayCaster  # noqa: E402
from blendtruth.raycast.scene import from_arrays  # noqa: E402
from test_embree_packets import _brute_force  # noqa: E402

from raycast_compare import ambiguous  # noqa: E402

BUNNY = Path(__file__).resolve().parents[2] / "shared" / "meshes" / "stanford-bunny.obj"
PASSES = ("depth", "distance", "normal", "normal_geometric", "mask", "instance")


@pytest.fixture(scope="module")
def bunny():
    mesh = trimesh.load(BUNNY, force="mesh", process=False)
    scene = from_arrays(mesh.vertices, mesh.faces, vertex_normals=mesh.vertex_normals)
    return mesh, scene, RayCaster(scene), RayCaster(scene, raster=False)


def _cameras(mesh) -> list[Camera]:
    c, r = mesh.bounds.mean(0), float(np.linalg.norm(mesh.extents))
    pose = look_at(c + np.array([0.9, -1.1, 0.5]) * r, c)
    below = look_at(c + np.array([-0.4, 0.3, -1.2]) * r, c + np.array([0.02, 0, 0.01]) * r)
    return [
        Camera(Intrinsics(70.0, 70.0, 63.0, 47.5, 127, 95), pose),  # odd size
        Camera(Intrinsics(300.0, 310.0, 40.0, 30.0, 81, 61), pose),  # fills the view
        Camera(Intrinsics(150.0, 140.0, 20.3, 70.8, 96, 128), below),  # off-centre
    ]


def _rasterised(caster: RayCaster, camera: Camera, near: float = 0.0) -> dict:
    out = caster.cast(camera, PASSES, internals=True, near=near)
    assert caster._rasterizer is not None and caster.hits_by == "rasterised in float64"
    return out


def test_rasterised_hits_are_embrees_except_within_1e4_px_of_an_edge(bunny):
    mesh, _, raster, embree = bunny
    r = float(np.linalg.norm(mesh.extents))
    for camera in _cameras(mesh):
        for near in (0.0, 0.3 * r):  # the second still leaves the whole bunny beyond it
            a = _rasterised(raster, camera, near)
            b = embree.cast(camera, PASSES, internals=True, near=near)
            assert a["mask"].sum() > 300
            differ = a["triangle"] != b["triangle"]
            edges = ambiguous(raster, camera, 1e-4) | ambiguous(embree, camera, 1e-4)
            assert not (differ & ~edges).any(), np.argwhere(differ & ~edges)[:5]
            assert differ.mean() <= 1e-3
            # Where the triangle is the same, every pass is the same float64 refinement.
            same = ~differ
            for name in PASSES:
                assert np.array_equal(a[name][same], b[name][same]), name
            # On a shared edge both triangles give the same surface point.
            both = differ & a["mask"] & b["mask"]
            np.testing.assert_allclose(a["depth"][both], b["depth"][both], rtol=1e-6)


def test_rasterised_hits_agree_with_brute_force(bunny):
    """Every ray against every triangle in float64 on a sample of pixels, half on the
    bunny: the same triangle wherever the centre is not within 1e-4 px of an edge."""
    mesh, scene, raster, _ = bunny
    rng = np.random.default_rng(5)
    for camera in _cameras(mesh)[:2]:
        tri = _rasterised(raster, camera)["triangle"].reshape(-1)
        edges = ambiguous(raster, camera, 1e-4).reshape(-1)
        on = np.flatnonzero(tri >= 0)
        pick = np.concatenate([rng.choice(tri.size, 100, replace=False),
                               rng.choice(on, 150, replace=False)])  # fmt: skip
        i = camera.intrinsics
        u, v = pick % i.width + 0.5, pick // i.width + 0.5
        rays = np.stack([(u - i.cx) / i.fx, (v - i.cy) / i.fy, np.ones_like(u)], 1)
        pose = camera.cam_to_world
        ref, _ = _brute_force(scene.corners, np.broadcast_to(pose[:3, 3], rays.shape),
                              rays @ pose[:3, :3].T)  # fmt: skip
        assert (ref >= 0).sum() >= 150
        wrong = (tri[pick] != ref) & ~edges[pick]
        assert not wrong.any(), pick[wrong]


def test_the_thread_count_does_not_change_a_rasterised_hit(bunny):
    mesh, scene, raster, _ = bunny
    camera = _cameras(mesh)[1]
    reference = _rasterised(raster, camera)["triangle"]
    for threads in (1, 3, 5):
        again = _rasterised(RayCaster(scene, threads=threads), camera)["triangle"]
        assert np.array_equal(again, reference), threads


def test_a_pixel_centre_on_a_shared_edge_never_falls_through():
    # A square seen face-on whose diagonal runs through the pixel centres (k, k), split
    # both ways and as a fan of slivers sharing one corner: every pixel is covered.
    camera = Camera(Intrinsics(10.0, 10.0, 8.0, 8.0, 16, 16), np.eye(4))
    x = (np.array([-2.0, 18.0]) + 0.5 - 8.0) / 10.0  # pixel-centre coordinates -2 and 18
    square = np.array([[x[0], x[0], 1], [x[1], x[0], 1], [x[1], x[1], 1], [x[0], x[1], 1]])
    rim = np.linspace(0, 2 * np.pi, 97)[:-1]
    fan_v = np.vstack([[0.0, 0.0, 1.0], np.column_stack([3 * np.cos(rim), 3 * np.sin(rim),
                                                        np.ones_like(rim)])])  # fmt: skip
    fan_f = np.column_stack([np.zeros(96, int), 1 + np.arange(96), 1 + (np.arange(96) + 1) % 96])
    for vertices, faces in ((square, [[0, 1, 2], [0, 2, 3]]), (square, [[0, 1, 3], [1, 2, 3]]),
                            (fan_v, fan_f)):  # fmt: skip
        for flip in (False, True):  # either winding
            f = np.asarray(faces)[:, ::-1] if flip else np.asarray(faces)
            caster = RayCaster(from_arrays(vertices, f))
            out = _rasterised(caster, camera)
            assert out["mask"].all()
            np.testing.assert_allclose(out["depth"], 1.0, rtol=1e-12)


def test_embree_casts_where_the_rasteriser_cannot(bunny):
    # Inside the bounding box, or with the near plane cutting it, or a panoramic or
    # orthographic camera: the hits are Embree's, bit for bit.
    mesh, scene, _, embree = bunny
    c, r = mesh.bounds.mean(0), float(np.linalg.norm(mesh.extents))
    intr = Intrinsics(70.0, 70.0, 63.0, 47.5, 127, 95)
    inside = Camera(intr, look_at(c + np.array([0.1, -0.25, 0.05]) * r, c))
    outside = _cameras(mesh)[0]
    cut = float(np.linalg.norm(outside.cam_to_world[:3, 3] - c))  # through the centre
    for camera, near in ((inside, 0.0), (outside, cut)):
        fresh = RayCaster(scene)
        a = fresh.cast(camera, PASSES, internals=True, near=near)
        b = embree.cast(camera, PASSES, internals=True, near=near)
        assert fresh._rasterizer is None and fresh.hits_by.startswith("Embree 4")
        assert a["mask"].sum() > 100
        for name in PASSES + ("triangle",):
            assert np.array_equal(a[name], b[name]), name


def test_a_scene_of_corners_alone_is_rasterised_like_an_indexed_one(bunny):
    # select() drops the indexed vertices; every corner then is its own vertex.
    mesh, scene, raster, _ = bunny
    alone = scene.select(np.ones(len(scene.corners), bool))
    assert alone.faces is None
    for camera in _cameras(mesh)[:2]:
        a = _rasterised(RayCaster(alone), camera)
        b = _rasterised(raster, camera)
        differ = a["triangle"] != b["triangle"]
        assert not (differ & ~ambiguous(raster, camera, 1e-4)).any()
        assert np.array_equal(a["depth"][~differ], b["depth"][~differ])
