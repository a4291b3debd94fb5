"""Orthographic, equirectangular and fisheye cameras: the documented ray definitions
(docs/conventions.md#camera-models), re-derived here, against Blender's renders, against
an independent ray cast (slab method, trimesh/embree) and against OpenCV's fisheye."""

from __future__ import annotations

import json
import math

import cv2
import numpy as np
import pytest

from blendtruth.errors import BlendtruthError
from blendtruth.geometry.camera import Intrinsics
from blendtruth.geometry.frames import look_at
from blendtruth.geometry.projection import camera_rays, model_intrinsics
from blendtruth.view import Camera
from blendtruth.writers.nerf import read_cameras, write_cameras_json, write_transforms_json


def _pixels(w: int, h: int) -> tuple[np.ndarray, np.ndarray]:
    return np.meshgrid(np.arange(w) + 0.5, np.arange(h) + 0.5)


def _equirect_dirs(w: int, h: int) -> np.ndarray:
    u, v = _pixels(w, h)
    lon, lat = (u / w - 0.5) * 2 * math.pi, (0.5 - v / h) * math.pi
    return np.dstack([np.cos(lat) * np.sin(lon), -np.sin(lat), np.cos(lat) * np.cos(lon)])


def _fisheye_dirs(w: int, h: int, fov_deg: float) -> tuple[np.ndarray, np.ndarray]:
    """Equidistant: the angle from the axis grows linearly to fov/2 at the frame's edges
    (horizontally over W/2, vertically over H/2)."""
    u, v = _pixels(w, h)
    half = math.radians(fov_deg) / 2
    a, b = (u - w / 2) / (w / 2) * half, (v - h / 2) / (h / 2) * half
    theta = np.hypot(a, b)
    phi = np.arctan2(b, a)
    d = np.dstack([np.sin(theta) * np.cos(phi), np.sin(theta) * np.sin(phi), np.cos(theta)])
    return d, theta <= half


# ---------- pure ----------


def test_rays_follow_the_documented_mappings():
    pose = look_at([1.0, 2.0, 3.0], [0.0, 0.0, 0.0])
    intr = Intrinsics(40.0, 40.0, 31.0, 25.0, 64, 48)
    o, d, valid = camera_rays(Camera(intr, pose))  # pinhole
    u, v = _pixels(64, 48)
    ref = np.dstack([(u - 31) / 40, (v - 25) / 40, np.ones_like(u)])
    np.testing.assert_allclose(d, ref / np.linalg.norm(ref, axis=-1, keepdims=True), atol=1e-12)
    assert np.all(o == 0) and valid.all()
    o, d, _ = camera_rays(Camera(intr, pose, "ortho"))
    np.testing.assert_allclose(o[..., 0], (u - 31) / 40, atol=1e-12)  # 1/40 units per pixel
    np.testing.assert_allclose(o[..., 2], 0) and np.testing.assert_allclose(d[..., 2], 1)
    eq = model_intrinsics("equirect", 64, 32)
    _, d, _ = camera_rays(Camera(eq, pose, "equirect"))
    np.testing.assert_allclose(d, _equirect_dirs(64, 32), atol=1e-12)
    for w, h, fov in [(48, 48, 180.0), (64, 48, 200.0)]:
        fe = model_intrinsics("fisheye", w, h, fov)
        _, d, valid = camera_rays(Camera(fe, pose, "fisheye", fov))
        ref, ref_valid = _fisheye_dirs(w, h, fov)
        np.testing.assert_allclose(d, ref, atol=1e-12)
        assert np.array_equal(valid, ref_valid)


def test_fisheye_is_opencv_fisheye_with_zero_distortion():
    """OpenCV's fisheye projection of our pixel rays lands on the pixel centres (fov up
    to 180°; beyond, OpenCV's atan(r/z) cannot reach the rays)."""
    w, h, fov = 64, 48, 170.0
    intr = model_intrinsics("fisheye", w, h, fov)
    _, d, valid = camera_rays(Camera(intr, np.eye(4), "fisheye", fov))
    pts = d[valid].reshape(-1, 1, 3)
    K = intr.K
    uv, _ = cv2.fisheye.projectPoints(pts, np.zeros(3), np.zeros(3), K, np.zeros(4))
    u, v = _pixels(w, h)
    expected = np.stack([u[valid], v[valid]], -1)
    np.testing.assert_allclose(uv.reshape(-1, 2), expected, atol=1e-6)


def test_model_validation():
    pose = np.eye(4)
    with pytest.raises(BlendtruthError, match="square pixels"):
        Camera(Intrinsics(10.0, 11.0, 8, 8, 16, 16), pose, "ortho")
    with pytest.raises(BlendtruthError, match="--camera equirect: intrinsics must be"):
        Camera(Intrinsics(10.0, 10.0, 8, 8, 16, 8), pose, "equirect")
    with pytest.raises(BlendtruthError, match="--fisheye-fov"):
        Camera(model_intrinsics("fisheye", 16, 16, 180.0), pose, "fisheye", None)
    with pytest.raises(BlendtruthError, match="--camera must be one of"):
        Camera(Intrinsics(10.0, 10.0, 8, 8, 16, 16), pose, "spherical")


def test_panoramic_rgb_needs_cycles(tmp_path, capsys):
    from blendtruth.cli import main

    args = ["render", "cube", "--camera", "fisheye", "--engine", "eevee", "--out", str(tmp_path)]
    assert main(args) == 2
    err = capsys.readouterr().err.strip()
    assert "only Cycles renders panoramic" in err and len(err.splitlines()) == 1


def test_camera_files_say_what_they_cannot_express(tmp_path):
    cams = [
        Camera(Intrinsics(20.0, 20.0, 16, 12, 32, 24), look_at([0, -3, 1], [0, 0, 0]), "ortho"),
        Camera(model_intrinsics("fisheye", 32, 24, 190.0), np.eye(4), "fisheye", 190.0),
    ]
    write_cameras_json(tmp_path / "cameras.json", cams, ["a", "b"])
    frames = json.loads((tmp_path / "cameras.json").read_text())["frames"]
    assert frames[0]["camera_model"] == "ortho" and frames[0]["pixel_size"] == 1 / 20
    assert frames[0]["ortho_scale"] == 32 / 20 and frames[1]["fisheye_fov_deg"] == 190.0
    back = read_cameras(tmp_path / "cameras.json")
    assert [(c.model, c.fov_deg) for c in back] == [("ortho", None), ("fisheye", 190.0)]
    write_transforms_json(tmp_path / "transforms.json", cams, ["a.png", "b.png"])
    data = json.loads((tmp_path / "transforms.json").read_text())
    assert data["frames"] == [] and "fisheye, ortho" in data["blendtruth"]["cannot_express"]


# ---------- render ----------


def _slab(origins: np.ndarray, dirs: np.ndarray, lo, hi) -> tuple[np.ndarray, np.ndarray]:
    """Ray parameter of the entry into the box [lo, hi] (inf = miss), per ray."""
    with np.errstate(divide="ignore", invalid="ignore"):
        t1, t2 = (np.asarray(lo) - origins) / dirs, (np.asarray(hi) - origins) / dirs
    near = np.nanmax(np.minimum(t1, t2), axis=-1)
    far = np.nanmin(np.maximum(t1, t2), axis=-1)
    hit = (near <= far) & (near > 0)
    return np.where(hit, near, np.inf), hit


@pytest.mark.render
@pytest.mark.parametrize("truth", ["raycast", "cycles"])
def test_orthographic_cube_matches_a_parallel_ray_cast(truth):
    import blendtruth

    w, h, scale = 64, 48, 5.0  # view width 5 scene units across the larger side
    f = w / scale
    pose = look_at([4.0, -3.0, 2.5], [0.0, 0.0, 0.0])
    cam = Camera(Intrinsics(f, f, w / 2, h / 2, w, h), pose, "ortho")
    view = blendtruth.render_view(cam, scene="cube", width=w, height=h, rgb=False, truth=truth)
    assert view.meta["ground_truth"]["backend"] == truth
    u, v = _pixels(w, h)
    local = np.dstack([(u - w / 2) / f, (v - h / 2) / f, np.zeros_like(u)])
    origins = local @ pose[:3, :3].T + pose[:3, 3]
    dirs = np.broadcast_to(pose[:3, 2], origins.shape)
    t, hit = _slab(origins, dirs, [-1, -1, -1], [1, 1, 1])
    grown = _slab(origins, dirs, [-1.001] * 3, [1.001] * 3)[1]
    shrunk = _slab(origins, dirs, [-0.999] * 3, [0.999] * 3)[1]
    edge = grown != shrunk
    assert hit.sum() > 300
    assert np.array_equal(view.mask[~edge], hit[~edge])
    both = view.mask & hit & ~edge
    # Depth: along the parallel rays from the image plane; 5e-6 relative (float32;
    # measured 3.3e-7).
    rel = np.abs(view.depth[both] - t[both]) / t[both]
    assert rel.max() <= 5e-6, rel.max()
    assert np.array_equal(view.distance, view.depth)
    assert view.meta["camera_model"] == "ortho" and view.meta["pixel_size"] == 1 / f


@pytest.mark.render
def test_orthographic_pixel_size_square_covers_the_predicted_pixels():
    import blendtruth

    # The 2×2 plane seen straight down with a 3-unit-wide 64 px view: pixel size
    # 3/64; centres (k + ½)·3/64 <= 1 for k <= 20, so exactly 42×42 pixels, 6 units away.
    w = h = 64
    f = w / 3.0
    pose = look_at([0.0, 0.0, 6.0], [0.0, 0.0, 0.0], up=(0.0, 1.0, 0.0))
    view = blendtruth.render_view(
        Camera(Intrinsics(f, f, 32, 32, w, h), pose, "ortho"), scene="plane", rgb=False,
        width=w, height=h,
    )  # fmt: skip
    rows, cols = np.nonzero(view.mask)
    assert view.mask.sum() == 42 * 42
    assert (rows.min(), rows.max(), cols.min(), cols.max()) == (11, 52, 11, 52)
    np.testing.assert_allclose(view.depth[view.mask], 6.0, rtol=1e-6)


def _shell_scene(tmp_path):
    """A closed icosphere (radius 4) around the camera plus a 3×3 square at z = -1."""
    trimesh = pytest.importorskip("trimesh")
    shell = trimesh.creation.icosphere(subdivisions=3, radius=4.0)
    shell.invert()  # normals inward; geometry unchanged
    square = trimesh.Trimesh(
        [[-1.5, -1.5, -1], [1.5, -1.5, -1], [1.5, 1.5, -1], [-1.5, 1.5, -1]],
        [[0, 1, 2], [0, 2, 3]],
    )
    both = trimesh.util.concatenate([shell, square])
    both.export(tmp_path / "shell.ply")
    return tmp_path / "shell.ply", both


def _cast(mesh, origin: np.ndarray, dirs_world: np.ndarray) -> np.ndarray:
    """Distance to the first hit per ray (inf = miss), trimesh with embree."""
    flat = dirs_world.reshape(-1, 3)
    locs, idx, _ = mesh.ray.intersects_location(
        np.broadcast_to(origin, flat.shape), flat, multiple_hits=False
    )
    t = np.full(len(flat), np.inf)
    t[idx] = np.linalg.norm(locs - origin, axis=1)
    return t.reshape(dirs_world.shape[:2])


def _near_square_edge(origin, dirs_world) -> np.ndarray:
    """Rays meeting z = -1 within 1e-3 of the square's border (hit or miss is ambiguous)."""
    with np.errstate(divide="ignore", invalid="ignore"):
        t = (-1 - origin[2]) / dirs_world[..., 2]
    p = origin + dirs_world * t[..., None]
    m = np.maximum(np.abs(p[..., 0]), np.abs(p[..., 1]))
    return (t > 0) & (np.abs(m - 1.5) < 1e-3)


@pytest.mark.render
@pytest.mark.parametrize("truth", ["raycast", "cycles"])
@pytest.mark.parametrize(
    ("model", "w", "h", "fov"),
    [("equirect", 64, 32, None), ("fisheye", 48, 48, 180.0), ("fisheye", 64, 48, 230.0)],
)
def test_panoramic_depth_matches_rays_from_the_documented_mapping(
    tmp_path, model, w, h, fov, truth
):
    import blendtruth
    from blendtruth.scene import SceneSpec

    path, mesh = _shell_scene(tmp_path)
    pose = look_at([0.3, -0.2, 0.4], [1.0, 0.5, -0.3])
    cam = Camera(model_intrinsics(model, w, h, fov), pose, model, fov)
    spec = SceneSpec(models=(path,), normalize=False, light="ambient")
    view = blendtruth.render_view(cam, scene=spec, width=w, height=h, rgb=False, truth=truth)
    assert view.meta["ground_truth"]["backend"] == truth
    if model == "equirect":
        d, valid = _equirect_dirs(w, h), np.ones((h, w), bool)
    else:
        d, valid = _fisheye_dirs(w, h, fov)
    dw = d @ pose[:3, :3].T
    t = _cast(mesh, pose[:3, 3], dw)
    t[~valid] = np.inf
    edge = _near_square_edge(pose[:3, 3], dw)
    # Inside a closed shell every valid ray hits; outside the fisheye's circle none.
    assert np.array_equal(view.mask[~edge], np.isfinite(t)[~edge])
    ok = view.mask & ~edge
    # `depth` is the ray distance for panoramic cameras, equal to `distance`; 5e-6
    # relative (measured <= 7.1e-7).
    rel = np.abs(view.depth[ok] - t[ok]) / t[ok]
    assert rel.max() <= 5e-6, rel.max()
    assert np.array_equal(view.depth, view.distance)
    assert (np.abs(t[ok] - 4.0) < 0.5).mean() > 0.3 and (t[ok] < 3.0).mean() > 0.05
    assert view.meta["camera_model"] == model


@pytest.mark.render
@pytest.mark.parametrize("model", ["ortho", "equirect"])
def test_multiview_files_and_points_for_a_camera_model(tmp_path, model):
    """render --camera MODEL: the fused points.ply lies on the UV sphere (radius 1, the
    faceted mesh within 2%) and each view reads back with its model."""
    trimesh = pytest.importorskip("trimesh")
    from blendtruth.cli import main
    from blendtruth.writers.npz import read_view_npz

    out = tmp_path / "o"
    args = ["render", "uv_sphere", "--camera", model, "--views", "2", "--no-rgb", "--points"]
    assert main([*args, "--width", "48", "--height", "32", "--out", str(out)]) == 0
    cloud = trimesh.load(out / "points.ply")
    radii = np.linalg.norm(np.asarray(cloud.vertices), axis=1)
    assert len(radii) > 30 and np.all(np.abs(radii - 1) < 0.02), (radii.min(), radii.max())
    view = read_view_npz(out / "views" / "0001.npz")
    assert view.camera.model == model and view.meta["camera_model"] == model
    frames = json.loads((out / "cameras.json").read_text())["frames"]
    assert all(f["camera_model"] == model for f in frames)


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (["--camera", "ortho", "--ortho-scale", "-1"], "--ortho-scale"),
        (["--camera", "fisheye", "--fisheye-fov", "400"], "--fisheye-fov"),
        (["--camera", "ortho", "--K", "50,50,16,16"], "excludes --K and --rig"),
        (["--camera", "equirect", "--rig", "zero123"], "excludes --K and --rig"),
        (["--rig", "syncdreamer-16", "--views", "4"], "fixed number of views"),
        (["--background", "purple"], "--background"),
        (["--camera", "ortho", "--cameras", "nothere.json"], "no such file"),
        (["--camera", "ortho", "--cameras", __file__], "exclude each other"),
    ],
)
def test_bad_camera_and_rig_options_are_one_line(tmp_path, capsys, args, needle):
    from blendtruth.cli import main

    assert main(["render", "cube", *args, "--out", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err.strip()
    assert needle in err and len(err.splitlines()) == 1, err
    assert not (tmp_path / "o").exists()
