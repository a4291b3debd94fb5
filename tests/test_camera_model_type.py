"""The camera-model type (geometry/camera_models.py): rays at arbitrary pixels equal the
documented rays (written out again here), ``project`` inverts ``rays`` to <= 1e-9 px, the
validity domains agree, the COLMAP / nerfstudio names and refusals, the meta keys, and
the room for distortion coefficients and a time."""

from __future__ import annotations

import math

import numpy as np
import pytest

from blendtruth.errors import BlendtruthError
from blendtruth.geometry.camera import Intrinsics
from blendtruth.geometry.camera_models import (
    MODELS,
    CannotExpress,
    Equirect,
    Fisheye,
    Ortho,
    Pinhole,
    camera_model,
)
from blendtruth.geometry.projection import model_intrinsics
from blendtruth.view import Camera, View

W, H = 64, 48


def _models() -> list:
    return [
        Pinhole(Intrinsics(50.0, 55.0, 30.3, 25.1, W, H)),
        Ortho(Intrinsics(20.0, 20.0, 31.0, 23.5, W, H)),
        Equirect(model_intrinsics("equirect", W, H)),
        Fisheye(model_intrinsics("fisheye", W, H, 150.0), 150.0),
        Fisheye(model_intrinsics("fisheye", W, W, 250.0), 250.0),
    ]


def _documented(model) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The documented rays (docs/conventions.md#camera-models), written out again."""
    i = model.intrinsics
    u, v = np.meshgrid(np.arange(i.width) + 0.5, np.arange(i.height) + 0.5)
    zero = np.zeros_like(u)
    if model.name == "pinhole":
        d = np.dstack([(u - i.cx) / i.fx, (v - i.cy) / i.fy, np.ones_like(u)])
        return np.zeros_like(d), d / np.linalg.norm(d, axis=-1, keepdims=True), u > 0
    if model.name == "ortho":
        o = np.dstack([(u - i.cx) / i.fx, (v - i.cy) / i.fy, zero])
        return o, np.dstack([zero, zero, zero + 1]), u > 0
    if model.name == "equirect":
        lon, lat = 2 * np.pi * (u / i.width - 0.5), np.pi * (0.5 - v / i.height)
        d = np.dstack([np.cos(lat) * np.sin(lon), -np.sin(lat), np.cos(lat) * np.cos(lon)])
        return np.zeros_like(d), d, u > 0
    a, b = (u - i.cx) / i.fx, (v - i.cy) / i.fy
    t = np.hypot(a, b)
    phi = np.arctan2(b, a)
    d = np.dstack([np.sin(t) * np.cos(phi), np.sin(t) * np.sin(phi), np.cos(t)])
    return np.zeros_like(d), d, t <= math.radians(model.fov_deg) / 2


@pytest.mark.parametrize("model", _models(), ids=lambda m: m.name)
def test_grid_rays_are_the_documented_rays(model):
    o, d, valid = model.rays(model.pixel_grid())
    want_o, want_d, want_valid = _documented(model)
    assert np.allclose(o, want_o, rtol=0, atol=1e-15)
    assert np.allclose(d, want_d, rtol=0, atol=1e-15)  # a flipped axis is off by ~1
    assert np.array_equal(valid, want_valid)
    assert np.allclose(np.linalg.norm(d, axis=-1), 1.0, rtol=0, atol=1e-15)
    # arbitrary pixels give exactly the rays of the same pixels on the grid
    some = np.array([[0.5, 0.5], [W - 0.5, 0.5], [10.5, 20.5]])
    o2, d2, v2 = model.rays(some)
    rows, cols = (some[:, 1] - 0.5).astype(int), (some[:, 0] - 0.5).astype(int)
    assert np.array_equal(d2, d[rows, cols]) and np.array_equal(o2, o[rows, cols])
    assert np.array_equal(v2, valid[rows, cols])


@pytest.mark.parametrize("model", _models(), ids=lambda m: m.name)
def test_project_inverts_rays(model):
    rng = np.random.default_rng(3)
    i = model.intrinsics
    px = rng.uniform([0, 0], [i.width, i.height], size=(4000, 2))
    o, d, valid = model.rays(px)
    t = rng.uniform(0.1, 50.0, size=len(px))
    points = o + d * t[:, None]
    uv, depth, ok = model.project(points)
    assert np.array_equal(ok, valid)  # the validity domains agree
    err = np.abs(uv - px)[valid].max()
    assert err <= 1e-9, err
    want_depth = t if model.depth_is_distance else points[:, 2]
    assert np.allclose(depth[valid], want_depth[valid], rtol=1e-12, atol=0)
    assert np.allclose(model.depth_of(o, d, t)[valid], depth[valid], rtol=1e-12, atol=0)


def test_project_rejects_points_outside_the_domain():
    pin = _models()[0]
    assert not pin.project(np.array([[0.0, 0.0, -1.0]]))[2][0]
    ortho = _models()[1]
    assert not ortho.project(np.array([[0.0, 0.0, -1.0]]))[2][0]
    fish = _models()[3]  # 150 deg: a point 80 deg off-axis is outside
    p = np.array([[math.sin(math.radians(80)), 0.0, math.cos(math.radians(80))]])
    assert not fish.project(p)[2][0]
    assert fish.project(p * [1, 0, 1] + [0, 0, 1])[2][0]
    wide = _models()[4]  # 250 deg sees behind (120 deg off-axis)
    back = np.array([[math.sin(math.radians(120)), 0.0, math.cos(math.radians(120))]])
    uv, r, ok = wide.project(back)
    assert ok[0] and r[0] == pytest.approx(1.0)
    assert uv[0, 0] == pytest.approx(W / 2 + wide.intrinsics.fx * math.radians(120), abs=1e-9)


def test_colmap_names_and_refusals():
    pin, ortho, eq, fish, wide = _models()
    assert pin.colmap() == ("PINHOLE", [50.0, 55.0, 30.3, 25.1])
    name, params = fish.colmap()
    i = fish.intrinsics
    assert name == "OPENCV_FISHEYE" and params == [i.fx, i.fy, i.cx, i.cy, 0, 0, 0, 0]
    for m, word in ((ortho, "ortho"), (eq, "equirect"), (wide, "250")):
        with pytest.raises(CannotExpress, match=word):
            m.colmap()
        with pytest.raises(CannotExpress, match=word):
            m.nerfstudio()
    assert pin.nerfstudio() == {"camera_model": "OPENCV", "fl_x": 50.0, "fl_y": 55.0,
                                "cx": 30.3, "cy": 25.1}  # fmt: skip
    got = fish.nerfstudio()
    assert got["camera_model"] == "OPENCV_FISHEYE"
    assert [got[k] for k in ("fl_x", "fl_y", "cx", "cy", "k1", "k2", "k3", "k4")] == params


def test_meta_keys_are_unchanged():
    pin, ortho, eq, fish, _ = _models()
    assert pin.meta() == {}
    assert set(ortho.meta()) == {"camera_model", "pixel_size", "ortho_scale", "depth_kind"}
    assert ortho.meta()["ortho_scale"] == pytest.approx(W / 20.0)
    assert set(eq.meta()) == {"camera_model", "depth_kind"}
    assert fish.meta()["fisheye_fov_deg"] == 150.0
    assert set(fish.meta()) == {"camera_model", "depth_kind", "fisheye_fov_deg", "fisheye"}


def test_camera_carries_its_model_and_checks_it():
    intr = model_intrinsics("fisheye", W, H, 190.0)
    cam = Camera(intr, np.eye(4), "fisheye", 190.0)
    assert isinstance(cam.projection, Fisheye) and cam.projection.fov_deg == 190.0
    assert cam.fov_deg == cam.fisheye_fov_deg == 190.0  # the old name still reads
    assert isinstance(Camera(intr, np.eye(4)).projection, Pinhole)
    assert set(MODELS) == {"pinhole", "ortho", "equirect", "fisheye"}
    with pytest.raises(BlendtruthError, match="--camera must be one of"):
        camera_model("spherical", intr)
    with pytest.raises(BlendtruthError, match="fisheye-fov"):
        camera_model("fisheye", intr, None)
    with pytest.raises(BlendtruthError, match="distortion"):
        Pinhole(intr, distortion=(0.1,))
    with pytest.raises(BlendtruthError, match="distortion"):
        Fisheye(intr, 190.0, distortion=(0.1, 0, 0, 0))
    timed = Fisheye(intr, 190.0, time=0.25)  # room for a time; keyword-only, after fov
    assert timed.time == 0.25 and timed.fov_deg == 190.0 and timed.distortion == ()
    with pytest.raises(BlendtruthError, match="time"):
        Pinhole(intr, time=float("nan"))


# ---------- every pure consumer on non-pinhole views: uses the model or refuses ----------

R, CENTRE = 2.0, np.array([0.3, -0.2, 1.1])


def _inside_sphere(model_name: str) -> View:
    """A camera at CENTRE inside a sphere of radius R (closed-form hits): panoramic rays
    hit at distance R; ortho rays from the image plane z = 0 at √(R² − ox² − oy²)."""
    from blendtruth.geometry.frames import look_at

    intr = {
        "pinhole": Intrinsics(8.0, 9.0, 8.2, 5.9, 16, 12),
        "ortho": Intrinsics(8.0, 8.0, 8.0, 6.0, 16, 12),
        "equirect": model_intrinsics("equirect", 16, 8),
        "fisheye": model_intrinsics("fisheye", 16, 12, 200.0),
    }[model_name]
    pose = look_at(CENTRE, CENTRE + [1.0, 0.5, 0.2])
    cam = Camera(intr, pose, model_name, 200.0 if model_name == "fisheye" else None)
    o, d, valid = cam.projection.rays(cam.projection.pixel_grid())
    od = np.sum(o * d, axis=-1)
    t = -od + np.sqrt(od**2 - np.sum(o * o, axis=-1) + R**2)  # |o + t d| = R, t > 0
    depth = cam.projection.depth_of(o, d, t)
    depth, t = np.where(valid, depth, 0.0), np.where(valid, t, 0.0)
    normal = np.where(valid[..., None], -(o + d * t[..., None]) / R, 0.0)
    return View(cam, depth.astype(np.float32), t.astype(np.float32),
                normal.astype(np.float32), valid)  # fmt: skip


@pytest.mark.parametrize("name", ["pinhole", "ortho", "equirect", "fisheye"])
def test_pure_consumers_use_the_model(name, tmp_path):
    from blendtruth.geometry.pointfusion import VoxelAccumulator
    from blendtruth.geometry.reproject import project, ray_points
    from blendtruth.writers.npz import read_view_npz, write_view_npz

    view = _inside_sphere(name)
    rows, cols = np.nonzero(view.mask)
    assert len(rows) > 50
    # point fusion: every fused point lies on the sphere (float32 depth: <= 1e-6 R)
    acc = VoxelAccumulator(1e-5, CENTRE, 2 * R)
    acc.add_view(view)
    points, _, _ = acc.result()
    assert len(points) == len(rows)
    assert np.abs(np.linalg.norm(points - CENTRE, axis=1) - R).max() <= 2e-6
    # reproject: the points land back on their pixel centres with the view's depth
    centres = np.stack([cols + 0.5, rows + 0.5], axis=1)
    world = ray_points(view.camera, centres, view.depth[rows, cols])
    assert np.abs(np.linalg.norm(world - CENTRE, axis=1) - R).max() <= 2e-6
    uv, depth = project(world, view.camera)
    assert np.abs(uv - centres).max() <= 1e-9
    assert np.allclose(depth, view.depth[rows, cols], rtol=1e-12, atol=0)
    # a view file gives back the same camera model
    write_view_npz(tmp_path / "v.npz", view)
    back = read_view_npz(tmp_path / "v.npz").camera
    assert (back.model, back.fisheye_fov_deg) == (name, view.camera.fisheye_fov_deg)


@pytest.mark.parametrize("name", ["ortho", "equirect", "fisheye"])
def test_flow_refuses_non_pinhole_views(name):
    from blendtruth.geometry.correspondence import flow_between

    view = _inside_sphere(name)
    with pytest.raises(BlendtruthError, match="pinhole cameras only"):
        flow_between(view, view)


@pytest.mark.parametrize("name", ["ortho", "fisheye"])
def test_pure_consumers_refuse_what_they_cannot_do(name, tmp_path):
    import json

    from blendtruth.writers.nerf import write_transforms_json

    view = _inside_sphere(name)  # the fisheye here is 200 deg
    write_transforms_json(tmp_path / "t.json", [view.camera], None)
    data = json.loads((tmp_path / "t.json").read_text())
    assert data["frames"] == [] and name in data["blendtruth"]["cannot_express"]


def test_transforms_json_writes_a_fisheye_up_to_180_as_opencv_fisheye(tmp_path):
    import json

    from blendtruth.writers.nerf import write_transforms_json

    intr = model_intrinsics("fisheye", 32, 24, 170.0)
    write_transforms_json(tmp_path / "t.json", [Camera(intr, np.eye(4), "fisheye", 170.0)], None)
    data = json.loads((tmp_path / "t.json").read_text())
    assert data["camera_model"] == "OPENCV_FISHEYE" and len(data["frames"]) == 1
    assert [data[k] for k in ("fl_x", "fl_y", "cx", "cy")] == [intr.fx, intr.fy, 16, 12]
    assert [data[k] for k in ("k1", "k2", "k3", "k4")] == [0.0] * 4 and "p1" not in data


def _nerfstudio_rays(data: dict, pose_gl: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """World ray directions H×W×3 as nerfstudio's Cameras.generate_rays makes them
    (nerfstudio/cameras/cameras.py) for its FISHEYE and EQUIRECTANGULAR types, written
    from its formulas: pixel centres at +0.5, c = ((u - cx)/fl_x, -(v - cy)/fl_y)."""
    w, h = data["w"], data["h"]
    u, v = np.meshgrid(np.arange(w) + 0.5, np.arange(h) + 0.5)
    cx, cy = (u - data["cx"]) / data["fl_x"], -(v - data["cy"]) / data["fl_y"]
    if data["camera_model"] == "OPENCV_FISHEYE":
        theta = np.clip(np.hypot(cx, cy), 0.0, np.pi)
        s = np.sin(theta) / theta
        d = np.stack([cx * s, cy * s, -np.cos(theta)], -1)
    else:  # EQUIRECTANGULAR
        theta, phi = -np.pi * cx, np.pi * (0.5 - cy)
        d = np.stack([-np.sin(theta) * np.sin(phi), np.cos(phi), -np.cos(theta) * np.sin(phi)], -1)
    return d @ pose_gl[:3, :3].T, pose_gl[:3, 3]


@pytest.mark.parametrize(("name", "w", "h"), [("equirect", 32, 16), ("fisheye", 32, 24)])
def test_transforms_json_panoramic_rays_are_nerfstudios(name, w, h, tmp_path):
    import json

    from blendtruth.geometry.frames import look_at
    from blendtruth.writers.nerf import write_transforms_json

    fov = 170.0 if name == "fisheye" else None
    cam = Camera(model_intrinsics(name, w, h, fov), look_at([1.0, -2, 0.5], [0, 0, 0]), name, fov)
    write_transforms_json(tmp_path / "t.json", [cam], None)
    data = json.loads((tmp_path / "t.json").read_text())
    assert data["camera_model"] == {"equirect": "EQUIRECTANGULAR"}.get(name, "OPENCV_FISHEYE")
    theirs, origin = _nerfstudio_rays(data, np.array(data["frames"][0]["transform_matrix"]))
    o, d, valid = cam.projection.rays(cam.projection.pixel_grid())
    ours = d @ cam.cam_to_world[:3, :3].T
    assert np.abs(theirs - ours)[valid].max() <= 1e-9  # a flipped axis or half pixel: >> 1e-3
    assert np.allclose(origin, cam.cam_to_world[:3, 3], rtol=0, atol=1e-12)


def test_transforms_json_refuses_an_equirect_that_is_not_2_to_1(tmp_path):
    import json

    from blendtruth.writers.nerf import write_transforms_json

    cam = Camera(model_intrinsics("equirect", 32, 20), np.eye(4), "equirect")
    write_transforms_json(tmp_path / "t.json", [cam], None)
    data = json.loads((tmp_path / "t.json").read_text())
    assert data["frames"] == [] and "width = 2 x height" in data["blendtruth"]["cannot_express"]
