"""Embree's 8-ray packets (raycast/embree.py) against embreex's one-ray loop and brute force.

Both paths of :class:`RayCaster` must find the same triangle for every pixel, for every
camera model, with and without a near clip, inside and outside the culling window; and
their hits must agree with every-ray-against-every-triangle in float64 (an independent
truth) except where a pixel centre lies on a shared edge (bounded).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("embreex")
pytest.importorskip("numba")
trimesh = pytest.importorskip("trimesh")  # loads the bunny

from blendtruth import Camera, Intrinsics  # noqa: E402
from blendtruth.geometry.frames import look_at  # noqa: E402
from blendtruth.geometry.projection import camera_rays, model_intrinsics  # noqa: E402
from blendtruth.raycast.cast import RayCaster  # noqa: E402
from blendtruth.raycast.embree import EmbreexScene, PacketScene, packets_available  # noqa: E402
from blendtruth.raycast.scene import from_arrays  # noqa: E402

BUNNY = Path(__file__).resolve().parents[2] / "shared" / "meshes" / "stanford-bunny.obj"

pytestmark = pytest.mark.skipif(not packets_available(), reason="no bundled Embree library")


@pytest.fixture(scope="module")
def bunny():
    mesh = trimesh.load(BUNNY, force="mesh", process=False)
    scene = from_arrays(mesh.vertices, mesh.faces, vertex_normals=mesh.vertex_normals)
    # The rasteriser is off: these tests are about Embree's two ways of casting.
    packets, single = RayCaster(scene, raster=False), RayCaster(scene, packets=False, raster=False)
    return mesh, scene, packets, single


def _cameras(mesh) -> list[Camera]:
    c, r = mesh.bounds.mean(0), float(np.linalg.norm(mesh.extents))
    eye = c + np.array([0.9, -1.1, 0.5]) * r
    pose = look_at(eye, c)
    near = look_at(c + np.array([0.1, -0.25, 0.05]) * r, c)  # inside the box: no window
    wide = Intrinsics(70.0, 70.0, 63.0, 47.5, 127, 95)  # odd size: partial 4x4 tiles
    tight = Intrinsics(300.0, 300.0, 40.0, 30.0, 81, 61)  # the bunny fills the view
    ortho = Intrinsics(127 / r, 127 / r, 63.5, 47.5, 127, 95)
    return [
        Camera(wide, pose),
        Camera(tight, pose),
        Camera(wide, near),
        Camera(ortho, look_at(c + np.array([0.0, -2.0, 0.3]) * r, c), "ortho"),
        Camera(model_intrinsics("equirect", 128, 64), near, "equirect"),
        Camera(model_intrinsics("fisheye", 96, 96, 200.0), near, "fisheye", 200.0),
    ]


def test_packets_find_the_same_triangles_as_one_ray_at_a_time(bunny):
    mesh, _, packets, single = bunny
    assert isinstance(packets._embree, PacketScene)
    assert isinstance(single._embree, EmbreexScene)
    for camera in _cameras(mesh):
        for near in (0.0, 0.02 * float(np.linalg.norm(mesh.extents))):
            a = packets.cast(camera, ("depth", "normal", "mask"), internals=True, near=near)
            b = single.cast(camera, ("depth", "normal", "mask"), internals=True, near=near)
            assert a["mask"].sum() > 50, camera.model  # the view sees the bunny
            np.testing.assert_array_equal(a["triangle"], b["triangle"], err_msg=camera.model)
            np.testing.assert_array_equal(a["depth"], b["depth"])
            np.testing.assert_array_equal(a["normal"], b["normal"])


def _brute_force(corners: np.ndarray, origins: np.ndarray, dirs: np.ndarray):
    """Nearest hit triangle (-1 = none) and ray parameter of each ray against every
    triangle: Moller-Trumbore in float64, all pairs, no acceleration structure."""
    e1, e2 = corners[:, 1] - corners[:, 0], corners[:, 2] - corners[:, 0]
    tri = np.full(len(dirs), -1)
    best = np.full(len(dirs), np.inf)
    for i, (o, d) in enumerate(zip(origins, dirs, strict=True)):
        p = np.cross(d, e2)
        det = np.einsum("ij,ij->i", e1, p)
        with np.errstate(divide="ignore", invalid="ignore"):
            inv = 1.0 / det
            s = o - corners[:, 0]
            u = np.einsum("ij,ij->i", s, p) * inv
            q = np.cross(s, e1)
            v = (q @ d) * inv
            t = np.einsum("ij,ij->i", e2, q) * inv
        ok = (det != 0) & (u >= 0) & (v >= 0) & (u + v <= 1) & (t > 0)
        if ok.any():
            k = np.flatnonzero(ok)[np.argmin(t[ok])]
            tri[i], best[i] = k, t[k]
    return tri, best


def test_packet_hits_agree_with_brute_force(bunny):
    """Every ray against every triangle in float64, on a sample of pixels (half of them
    on the bunny): the same triangle on all but shared-edge pixels (<= 1%; a flipped or
    shifted image differs on far more), and Embree's float32 ray parameter within 1e-5
    relative of the float64 one."""
    mesh, scene, packets, _ = bunny
    rng = np.random.default_rng(3)
    for camera in _cameras(mesh)[:2] + _cameras(mesh)[3:4]:
        o, d, _ = camera_rays(camera)
        pose = camera.cam_to_world
        full = packets.cast(camera, ("mask",), internals=True)["triangle"].reshape(-1)
        on = np.flatnonzero(full >= 0)
        pick = np.concatenate([rng.choice(full.size, 150, replace=False),
                               rng.choice(on, 150, replace=False)])  # fmt: skip
        origins = o.reshape(-1, 3)[pick] @ pose[:3, :3].T + pose[:3, 3]
        dirs = d.reshape(-1, 3)[pick] @ pose[:3, :3].T
        ref, ref_t = _brute_force(scene.corners, origins, dirs)
        out = full[pick]
        assert (ref >= 0).sum() >= 150, camera.model
        assert np.mean(out != ref) <= 1e-2, camera.model
        same = np.flatnonzero((out == ref) & (ref >= 0))
        prim, tfar = packets._embree.hits(origins - packets._offset, dirs, np.eye(3),
                                          distances=True)  # fmt: skip
        assert np.array_equal(prim[same], out[same])
        np.testing.assert_allclose(tfar[same], ref_t[same], rtol=1e-5)


def test_an_embree_build_failure_is_one_clear_line(monkeypatch):
    """Embree reports errors through rtcGetDeviceError, not by failing the call: a scene
    it could not build (2 = out of memory) must stop with one line, not cast garbage."""
    import blendtruth.raycast.embree as embree
    from blendtruth.errors import BlendtruthError

    lib, loop = embree._library()

    class OutOfMemory:
        def __getattr__(self, name):
            return getattr(lib, name)

        @staticmethod
        def rtcGetDeviceError(device):
            return 2

    monkeypatch.setitem(embree._STATE, "lib", (OutOfMemory(), loop))
    v = np.array([[0.0, 0, 0], [1, 0, 0], [0, 1, 0]])
    with pytest.raises(
        BlendtruthError, match=r"could not build the scene of 1 triangles.*out of memory"
    ):
        RayCaster(from_arrays(v, np.array([[0, 1, 2]])))
