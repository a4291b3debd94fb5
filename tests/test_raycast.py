"""The ray caster, the incremental point fusion and the background writer (no bpy).

Truth: analytic ray-box / ray-sphere casts in float64 (tests/analytic.py) and trimesh's
own ray caster, each built from K and the pose independently of blendtruth.geometry.rays.
"""

from __future__ import annotations

import threading
import time
import zipfile

import numpy as np
import pytest

pytest.importorskip("embreex")
trimesh = pytest.importorskip("trimesh")

from blendtruth import Camera, Intrinsics, View  # noqa: E402
from blendtruth.errors import BlendtruthError  # noqa: E402
from blendtruth.geometry.frames import look_at  # noqa: E402
from blendtruth.geometry.pointfusion import VoxelAccumulator  # noqa: E402
from blendtruth.multiview import _view_points, fuse_points  # noqa: E402
from blendtruth.raycast.cast import RayCaster  # noqa: E402
from blendtruth.raycast.scene import TriangleScene, concatenate, from_arrays  # noqa: E402
from blendtruth.writers.background import BackgroundWriter  # noqa: E402
from blendtruth.writers.npz import read_view_npz, write_view_npz  # noqa: E402

from analytic import camera_rays, ray_box, ray_sphere  # noqa: E402

W, H = 96, 64


def _camera(eye=(3.0, -4.0, 2.5), target=(0.0, 0.0, 0.0), intr=None) -> Camera:
    intr = intr or Intrinsics(fx=90.0, fy=95.0, cx=50.3, cy=30.9, width=W, height=H)
    return Camera(intr, look_at(np.array(eye), np.array(target)))


def _box_scene(offset=(0.0, 0.0, 0.0)) -> TriangleScene:
    box = trimesh.creation.box(extents=(2, 2, 2))
    return from_arrays(box.vertices + np.asarray(offset), box.faces)


def test_box_matches_analytic_in_float64():
    camera = _camera()
    out = RayCaster(_box_scene()).cast(camera)
    depth, dist, normal_world, mask = ray_box(
        camera.intrinsics, camera.cam_to_world, -np.ones(3), np.ones(3)
    )
    assert np.array_equal(out["mask"], mask) and mask.sum() > 1000
    # float32 storage is the only error: <= half an ulp (6e-8) relative.
    rel = np.abs(out["depth"][mask] - depth[mask]) / depth[mask]
    assert rel.max() <= 1.2e-7, rel.max()
    rel = np.abs(out["distance"][mask] - dist[mask]) / dist[mask]
    assert rel.max() <= 1.2e-7, rel.max()
    normal_cam = normal_world @ camera.cam_to_world[:3, :3]
    assert np.abs(out["normal"][mask] - normal_cam[mask]).max() < 1e-6
    assert np.abs(out["normal_geometric"][mask] - normal_cam[mask]).max() < 1e-6
    # position = camera centre + depth * ray (world), and all passes share the silhouette.
    rays = camera_rays(camera.intrinsics) @ camera.cam_to_world[:3, :3].T
    pos = camera.cam_to_world[:3, 3] + rays * depth[..., None]
    assert np.abs(out["position"][mask] - pos[mask]).max() < 1e-6
    for name in ("depth", "distance", "normal", "instance", "position"):
        assert not out[name][~mask].any(), name
    assert set(np.unique(out["instance"][mask])) == {1}


def test_far_from_origin_keeps_float64_depth():
    # 1e4 units away, float32 vertices alone would be off by ~1e-3; the float64 plane
    # refinement keeps depth exact.
    shift = np.array([1e4, -2e4, 5e3])
    camera = _camera(eye=shift + (3.0, -4.0, 2.5), target=shift)
    out = RayCaster(_box_scene(shift)).cast(camera, ("depth", "mask"))
    depth, _, _, mask = ray_box(camera.intrinsics, camera.cam_to_world, shift - 1, shift + 1)
    both = mask & out["mask"]
    assert (mask != out["mask"]).sum() <= 2
    rel = np.abs(out["depth"][both] - depth[both]) / depth[both]
    assert rel.max() <= 1.2e-7, rel.max()


def test_half_pixel_shift_would_be_caught():
    camera = _camera()
    i = camera.intrinsics
    moved = Camera(Intrinsics(i.fx, i.fy, i.cx + 0.5, i.cy, W, H), camera.cam_to_world)
    out = RayCaster(_box_scene()).cast(moved, ("depth", "mask"))
    depth, _, _, mask = ray_box(i, camera.cam_to_world, -np.ones(3), np.ones(3))
    both = mask & out["mask"]
    assert np.abs(out["depth"][both] - depth[both]).max() > 1e-3


def test_smooth_sphere_normals_are_interpolated_and_match_trimesh():
    sphere = trimesh.creation.icosphere(subdivisions=3)
    scene = from_arrays(sphere.vertices, sphere.faces, vertex_normals=sphere.vertex_normals,
                        uv=sphere.vertices[:, :2] * 0.5 + 0.5, material=7, instance=3)  # fmt: skip
    camera = _camera(eye=(0.5, -3.0, 1.0))
    out = RayCaster(scene).cast(camera, internals=True)
    # Independent: trimesh's ray caster on the same triangles (its own rays from K).
    rays = camera_rays(camera.intrinsics) @ camera.cam_to_world[:3, :3].T
    origins = np.broadcast_to(camera.cam_to_world[:3, 3], rays.reshape(-1, 3).shape)
    tm = trimesh.Trimesh(sphere.vertices, sphere.faces, process=False)
    locs, ray_idx, tri_idx = tm.ray.intersects_location(origins, rays.reshape(-1, 3),
                                                         multiple_hits=False)  # fmt: skip
    mask = np.zeros(H * W, bool)
    mask[ray_idx] = True
    assert (mask.reshape(H, W) != out["mask"]).sum() <= 3
    tri = np.full(H * W, -1)
    tri[ray_idx] = tri_idx
    same = (tri.reshape(H, W) == out["triangle"]) & out["mask"]
    assert same.sum() > 0.99 * out["mask"].sum()
    pos = np.zeros((H * W, 3))
    pos[ray_idx] = locs
    pos = pos.reshape(H, W, 3)
    assert np.abs(out["position"][same] - pos[same]).max() < 1e-5
    # Shading normal = normalised barycentric blend of the vertex normals, camera frame.
    bary = trimesh.triangles.points_to_barycentric(tm.triangles[tri_idx], locs)
    blend = np.einsum("ij,ijk->ik", bary, sphere.vertex_normals[sphere.faces[tri_idx]])
    blend /= np.linalg.norm(blend, axis=1, keepdims=True)
    expect = np.zeros((H * W, 3))
    expect[ray_idx] = blend @ camera.cam_to_world[:3, :3]
    expect = expect.reshape(H, W, 3)
    assert np.abs(out["normal"][same] - expect[same]).max() < 1e-5
    # Close to the analytic sphere normal, but not the face normal: it is interpolated.
    _, exact, _ = ray_sphere(camera.intrinsics, (0, 0, 0), 1.0, camera.cam_to_world)
    m = out["mask"]
    err_interp = np.degrees(np.arccos(np.clip((out["normal"][m] * exact[m]).sum(-1), -1, 1)))
    err_face = np.degrees(
        np.arccos(np.clip((out["normal_geometric"][m] * exact[m]).sum(-1), -1, 1))
    )
    assert np.median(err_interp) < 0.3 * np.median(err_face)
    uv_expect = np.zeros((H * W, 2))
    uv_expect[ray_idx] = np.einsum("ij,ijk->ik", bary, (sphere.vertices[:, :2] * 0.5 + 0.5)
                                   [sphere.faces[tri_idx]])  # fmt: skip
    assert np.abs(out["uv"][same] - uv_expect.reshape(H, W, 2)[same]).max() < 1e-5
    assert set(np.unique(out["material"][m])) == {7} and set(np.unique(out["instance"][m])) == {3}


def test_back_faces_flip_the_shading_normal_like_cycles():
    # A single triangle seen from behind: normal_geometric faces the camera, and so does
    # the (flat) shading normal; a smooth one is flipped with it.
    v = np.array([[-1.0, -1.0, 0.0], [1.0, -1.0, 0.0], [0.0, 1.0, 0.0]])
    f = np.array([[0, 1, 2]])  # front side +z
    camera = _camera(eye=(0.1, 0.2, -3.0))  # looks at the back
    for normals in (None, np.tile([0.0, 0.3, 1.0], (3, 1))):
        out = RayCaster(from_arrays(v, f, vertex_normals=normals)).cast(camera)
        m = out["mask"]
        assert m.sum() > 100
        rays = camera_rays(camera.intrinsics)[m]
        assert np.all(np.sum(out["normal_geometric"][m] * rays, -1) < 0)
        assert np.all(np.sum(out["normal"][m] * rays, -1) < 0)


def test_triangle_scene_rejects_bad_arrays():
    good = _box_scene()
    with pytest.raises(BlendtruthError, match="corner_normals"):
        TriangleScene(**{**good.__dict__, "corner_normals": good.corner_normals[:1]})
    with pytest.raises(BlendtruthError, match="NaN"):
        bad = good.corners.copy()
        bad[0, 0, 0] = np.nan
        TriangleScene(**{**good.__dict__, "corners": bad})
    with pytest.raises(BlendtruthError, match="no triangles"):
        concatenate([])
    both = concatenate([good, _box_scene((5.0, 0, 0))])
    assert both.triangle_count == 24 and list(np.unique(both.transform)) == [0, 1]


def test_missing_embreex_is_one_clear_line(monkeypatch):
    import builtins

    real = builtins.__import__

    def no_embree(name, *args, **kwargs):
        if name.startswith("embreex"):
            raise ImportError(name)
        return real(name, *args, **kwargs)

    import blendtruth.raycast.embree

    monkeypatch.setattr(blendtruth.raycast.embree, "_STATE", {})  # as in a fresh process
    monkeypatch.setattr(builtins, "__import__", no_embree)
    with pytest.raises(BlendtruthError, match=r"pip install embreex.*--truth cycles"):
        RayCaster(_box_scene())


def _random_view(rng, camera: Camera) -> View:
    out = RayCaster(_box_scene()).cast(camera)
    rgb = rng.integers(0, 255, (H, W, 3), dtype=np.uint8)
    return View(camera, out["depth"], out["distance"], out["normal"], out["mask"], rgb,
                extra={"instance": out["instance"]})  # fmt: skip


@pytest.mark.parametrize("pending_rows", [1 << 20, 100])  # one merge at the end; many
def test_incremental_fusion_equals_fusing_all_views_at_once(monkeypatch, pending_rows):
    import blendtruth.geometry.pointfusion

    monkeypatch.setattr(blendtruth.geometry.pointfusion, "_PENDING_ROWS", pending_rows)
    rng = np.random.default_rng(0)
    views = [_random_view(rng, _camera(eye=e)) for e in
             [(3, -4, 2.5), (-4, 1, 2), (1, 4, -3), (0.5, -0.2, 5)]]  # fmt: skip
    voxel = 1.0 / 16
    acc = VoxelAccumulator(voxel, np.zeros(3), np.sqrt(3))
    for v in views:
        acc.add_view(v)
    got = acc.result()
    want = fuse_points([_view_points(v) for v in views], voxel)
    assert len(got[0]) == len(want[0]) > 500
    np.testing.assert_allclose(got[0], want[0], atol=1e-12)
    np.testing.assert_allclose(got[1], want[1], atol=1e-12)
    assert np.array_equal(got[2], want[2])
    with pytest.raises(BlendtruthError, match="voxel"):
        VoxelAccumulator(0.0, np.zeros(3), 1.0)


def test_npz_holds_every_pass_uncompressed_by_default(tmp_path):
    view = _random_view(np.random.default_rng(1), _camera())
    write_view_npz(tmp_path / "a.npz", view)
    write_view_npz(tmp_path / "b.npz", view, compress=True)
    with zipfile.ZipFile(tmp_path / "a.npz") as z:
        assert {i.compress_type for i in z.infolist()} == {zipfile.ZIP_STORED}
    with zipfile.ZipFile(tmp_path / "b.npz") as z:
        assert {i.compress_type for i in z.infolist()} == {zipfile.ZIP_DEFLATED}
    for name in ("a.npz", "b.npz"):
        back = read_view_npz(tmp_path / name)
        assert np.array_equal(back.extra["instance"], view.extra["instance"])
        assert back.extra["instance"].dtype == np.int32
        assert np.array_equal(back.depth, view.depth) and np.array_equal(back.rgb, view.rgb)


def test_background_writer_runs_in_order_and_reraises():
    done: list[int] = []
    with BackgroundWriter() as w:
        for i in range(5):
            w.submit(lambda i=i: (time.sleep(0.01), done.append(i)))
    assert done == list(range(5))
    w = BackgroundWriter()
    w.submit(lambda: 1 / 0)
    with pytest.raises(ZeroDivisionError):
        w.close()
    assert not any(t.name == "blendtruth-writer" for t in threading.enumerate())


def test_bad_truth_option_is_one_line(capsys):
    from blendtruth.cli import main
    from blendtruth.settings import RenderSettings

    assert main(["render", "cube", "--truth", "embree", "--out", "unused"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "--truth" in err[0] and "raycast" in err[0], err
    with pytest.raises(BlendtruthError, match="--truth must be one of raycast, cycles"):
        RenderSettings(truth="embree")


def test_cast_passes_have_zero_background():
    # cast.py fills images with zeros; the pass table must agree.
    from blendtruth.passes import PASSES
    from blendtruth.raycast.cast import CAST_PASSES

    assert all(PASSES[name].background == 0 for name in CAST_PASSES)


def test_compiled_refinement_equals_the_numpy_path(monkeypatch):
    # The numba loops (raycast/kernels.py) must give the numpy path's arrays bit for bit:
    # the refinement fused into the packet loop, and alone after embreex's or the
    # rasteriser's hits. Smooth
    # and flat triangles, back faces, two instances, every cast pass. Barycentric weights
    # (an internal) may differ in the last bits from summation order.
    import blendtruth.raycast.kernels as kernels
    from blendtruth.raycast.embree import packets_available

    if kernels.kernel() is None:
        pytest.skip("numba is not installed")
    sphere = trimesh.creation.icosphere(subdivisions=3, radius=1.0)
    smooth = from_arrays(sphere.vertices, sphere.faces, vertex_normals=sphere.vertex_normals,
                         uv=sphere.vertices[:, :2], material=3, instance=1)  # fmt: skip
    box = trimesh.creation.box(extents=(0.6, 3.0, 0.6))
    flat = from_arrays(box.vertices + [1.2, 0, 0], box.faces, material=4, instance=2)
    open_tri = from_arrays(np.array([[-2.0, 1.5, -1], [2, 1.5, -1], [0, 1.5, 2]]),
                           np.array([[0, 1, 2]]), instance=3)  # fmt: skip
    scene = concatenate([smooth, flat, open_tri])
    casters = {"embreex + compiled": RayCaster(scene, packets=False, raster=False),
               "rasterised + compiled": RayCaster(scene, packets=False)}  # fmt: skip
    if packets_available():
        casters["fused packets"] = RayCaster(scene, raster=False)
    from blendtruth.raycast.cast import CAST_PASSES

    seen = set()
    for eye in [(3.0, -4.0, 2.5), (0.3, 5.0, 0.4)]:  # the second sees the open triangle's back
        camera = _camera(eye=eye)
        for way, caster in casters.items():
            # Each against its own numpy path: the box's face and the open triangle are
            # coplanar, and each way may pick a different one of the two.
            monkeypatch.setitem(kernels._STATE, "refine", False)  # kernel() is None: numpy
            reference = caster.cast(camera, CAST_PASSES, internals=True)
            monkeypatch.undo()
            compiled = caster.cast(camera, CAST_PASSES, internals=True)
            assert sorted(compiled) == sorted(reference)
            seen |= set(np.unique(compiled["instance"]).tolist())
            for name, value in reference.items():
                assert compiled[name].dtype == value.dtype, (way, name)
                assert compiled[name].shape == value.shape, (way, name)
                if name == "barycentric":
                    np.testing.assert_allclose(compiled[name], value, rtol=0, atol=1e-12)
                else:
                    assert np.array_equal(compiled[name], value), (way, name)
    assert seen == {0, 1, 2, 3}
    assert casters["rasterised + compiled"]._rasterizer is not None  # it was the one used
    assert casters["embreex + compiled"]._rasterizer is None


def test_near_plane_clips_like_cycles_clip_start():
    # A small quad at camera z = 0.05 in front of a wall at z = 2: with near = 0.1 (the
    # plane where Cycles' clip_start cuts) the quad is not seen and the wall's depth is
    # measured from the camera centre; without it the quad hides the wall's centre.
    # At the origin looking down -Z (OpenCV axes: x right, y down, z forward).
    camera = Camera(Intrinsics(60.0, 60.0, 32.0, 24.0, 64, 48), np.diag([1.0, -1.0, -1.0, 1.0]))
    wall = from_arrays(np.array([[-9.0, -9, -2], [9, -9, -2], [9, 9, -2], [-9, 9, -2]]),
                       np.array([[0, 1, 2], [0, 2, 3]]), instance=1)  # fmt: skip
    quad = from_arrays(np.array([[-0.01, -0.01, -0.05], [0.01, -0.01, -0.05], [0.01, 0.01, -0.05],
                                 [-0.01, 0.01, -0.05]]), np.array([[0, 1, 2], [0, 2, 3]]),
                       instance=2)  # fmt: skip
    caster = RayCaster(concatenate([wall, quad]))
    plain = caster.cast(camera, ("depth", "instance"))
    clipped = caster.cast(camera, ("depth", "instance"), near=0.1)
    centre = plain["instance"] == 2
    assert centre.sum() > 50 and np.allclose(plain["depth"][centre], 0.05, rtol=1e-6)
    assert set(np.unique(clipped["instance"])) == {1}
    np.testing.assert_allclose(clipped["depth"], 2.0, rtol=1e-6)
    assert np.array_equal(clipped["depth"][~centre], plain["depth"][~centre])


def test_rays_outside_the_bounding_box_window_are_not_needed(monkeypatch):
    # Culling to the pixels whose rays can meet the scene's bounding box changes nothing:
    # every pass equals the full cast, for a small object in the frame, one cut by the
    # image border, and a camera inside the box (no culling).
    from blendtruth.raycast.cast import CAST_PASSES

    sphere = trimesh.creation.icosphere(subdivisions=3, radius=1.0)
    caster = RayCaster(from_arrays(sphere.vertices, sphere.faces,
                                   vertex_normals=sphere.vertex_normals))  # fmt: skip
    cameras = [_camera(eye=(6.0, -8.0, 5.0)), _camera(target=(1.6, 0.9, 0.0)),
               _camera(eye=(0.2, 0.1, 0.0), target=(1.0, 0.0, 0.0))]  # fmt: skip
    windows = [caster._window(c) for c in cameras]
    assert windows[0] is not None and 0 < len(windows[0]) < W * H / 4
    assert windows[1] is not None and windows[2] is None  # inside the box: cast all
    for camera in cameras:
        culled = caster.cast(camera, CAST_PASSES, internals=True)
        with monkeypatch.context() as m:
            m.setattr(caster, "_window", lambda camera: None)
            full = caster.cast(camera, CAST_PASSES, internals=True)
        assert full["mask"].any()
        for name, value in full.items():
            assert np.array_equal(culled[name], value), name


@pytest.mark.parametrize("model", ["equirect", "fisheye"])
def test_a_panoramic_camera_sees_an_object_far_off_its_axis(model):
    # The culling window projects the bounding box like a pinhole. A panoramic camera
    # outside the box, with the sphere 70 degrees off its optical axis, must still see
    # all of it: as many pixels as with every ray cast, and as an independent cast of
    # the camera's own rays against the analytic sphere.
    from blendtruth.geometry.projection import camera_rays as model_rays
    from blendtruth.geometry.projection import model_intrinsics

    sphere = trimesh.creation.icosphere(subdivisions=4, radius=1.0)
    caster = RayCaster(from_arrays(sphere.vertices, sphere.faces))
    fov = 180.0 if model == "fisheye" else None
    intr = model_intrinsics(model, 96, 96, fov) if fov else model_intrinsics(model, 256, 128)
    aim = np.radians(70.0)
    eye = np.array([0.0, -6.0, 0.0])
    pose = look_at(eye, eye + np.array([np.sin(aim), np.cos(aim), 0.0]))
    camera = Camera(intr, pose, model, *([fov] if fov else []))
    mask = caster.cast(camera, ("mask",))["mask"]
    o, d, ok = model_rays(camera)
    o = o.reshape(-1, 3) @ pose[:3, :3].T + pose[:3, 3]
    d = d.reshape(-1, 3) @ pose[:3, :3].T
    # A ray meets the unit sphere at the origin when its closest approach is within 1
    # and ahead of it.
    along = -np.einsum("ij,ij->i", o, d) / np.einsum("ij,ij->i", d, d)
    closest = o + along[:, None] * d
    hit = (along > 0) & (np.einsum("ij,ij->i", closest, closest) <= 1.0)
    expected = (hit & ok.reshape(-1)).reshape(mask.shape)
    assert expected.sum() > 50
    # Pixels whose ray grazes the sphere may differ (the mesh is inscribed in it).
    assert (mask != expected).sum() <= 0.2 * expected.sum()
    assert mask.sum() >= 0.8 * expected.sum()
