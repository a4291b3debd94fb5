"""``blendtruth render --frames``: the files, against closed-form rigid motion read from the
.blend with bpy, and the bad inputs (one line, exit 2). 64×48 px, no RGB."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest

pytest.importorskip("bpy")
pytest.importorskip("embreex")

from blendtruth.blender._bpy import bpy  # noqa: E402
from blendtruth.blender.scene import reset_scene  # noqa: E402
from blendtruth.writers.tracks import read_tracks  # noqa: E402

pytestmark = pytest.mark.render
W, H = 64, 48


def _cli(*args, rgb=False):
    argv = [*args, "--width", W, "--height", H] + ([] if rgb else ["--no-rgb"])
    return subprocess.run([sys.executable, "-m", "blendtruth.cli", "render", *map(str, argv)],
                          capture_output=True, text=True, timeout=300)  # fmt: skip


@pytest.fixture(scope="module")
def animated(tmp_path_factory):
    reset_scene(use_empty=True)
    bpy.ops.mesh.primitive_cube_add(size=0.8, location=(-0.4, 0, 0))
    cube = bpy.context.object
    cube.keyframe_insert("location", frame=1)
    cube.keyframe_insert("rotation_euler", frame=1)
    cube.location, cube.rotation_euler = (0.1, 0.3, 0.2), (0.2, 0.1, 0.7)
    cube.keyframe_insert("location", frame=4)
    cube.keyframe_insert("rotation_euler", frame=4)
    bpy.ops.mesh.primitive_uv_sphere_add(radius=0.4, location=(0.9, 0, 0))
    bpy.context.scene.frame_set(1)
    path = tmp_path_factory.mktemp("anim") / "anim.blend"
    bpy.ops.wm.save_as_mainfile(filepath=str(path))
    matrices = []
    for f in range(1, 5):
        bpy.context.scene.frame_set(f)
        matrices.append(np.array(bpy.data.objects["Cube"].matrix_world, float))
    return path, matrices


def _views(out):
    cams = json.loads((out / "cameras.json").read_text())["frames"]
    return {(c["frame"], c["camera_index"]): c for c in cams}


def test_frames_flow_and_tracks_equal_closed_form(animated, tmp_path):
    path, matrices = animated
    out = tmp_path / "out"
    run = _cli(path, "--out", out, "--views", 2, "--no-normalize", "--frames", "1:4",
               "--fps", 12, "--tracks", 40)  # fmt: skip
    assert run.returncode == 0, run.stderr
    views = _views(out)
    assert len(views) == 8 and views[(3, 1)]["time"] == pytest.approx(2 / 12)
    meta = json.loads(str(np.load(out / "views" / "f0003_c01.npz")["meta"]))
    assert (meta["frame"], meta["camera_index"]) == (3, 1)
    table = json.loads((out / "instances.json").read_text())["instances"]
    cube_id = next(i["id"] for i in table if i["object"] == "Cube")
    for t, s in ((1, 2), (3, 2)):
        cam_t, cam_s = views[(t, 0)], views[(s, 0)]
        k, pose_t, pose_s = (np.array(cam_t[x]) for x in ("K", "cam_to_world", "cam_to_world"))
        pose_s = np.array(cam_s["cam_to_world"])
        view = np.load(out / "views" / f"f{t:04d}_c00.npz")
        depth, ids = view["depth"].astype(float), view["instance"]
        u, v = np.meshgrid(np.arange(W) + 0.5, np.arange(H) + 0.5)
        hit = depth > 0
        rays = np.stack([(u - k[0, 2]) / k[0, 0], (v - k[1, 2]) / k[1, 1], np.ones_like(u)], -1)
        world = (rays[hit] * depth[hit][:, None]) @ pose_t[:3, :3].T + pose_t[:3, 3]
        rel = matrices[s - 1] @ np.linalg.inv(matrices[t - 1])
        moving = ids[hit] == cube_id
        world[moving] = world[moving] @ rel[:3, :3].T + rel[:3, 3]
        cam = (world - pose_s[:3, 3]) @ pose_s[:3, :3]
        uv = np.column_stack([k[0, 0] * cam[:, 0] / cam[:, 2] + k[0, 2],
                              k[1, 1] * cam[:, 1] / cam[:, 2] + k[1, 2]])  # fmt: skip
        flow = np.load(out / "flow" / f"f{t:04d}_c00_to_f{s:04d}.npz")
        valid = flow["valid"][hit]
        assert valid.sum() > 100 and moving.sum() > 50
        expected = uv - np.column_stack([u[hit], v[hit]])
        # depth is stored float32: 1e-3 px holds at this scale (see the report's numbers)
        assert np.abs(flow["flow"][hit][valid] - expected[valid]).max() <= 1e-3
        assert np.abs(flow["flow"][hit][moving & valid]).max() > 0.5
    tracks, tmeta = read_tracks(out / "tracks.npz")
    assert tracks["tracks_2d"].shape == (4, 40, 2) and tmeta["frames"] == [1, 2, 3, 4]
    first = tracks["tracks_2d"][0]
    assert np.all((first - 0.5) == np.round(first - 0.5))  # pixel centres of frame 1
    assert tracks["visible"][0].all()
    assert (out / "tracks_c01.npz").is_file()
    # Formats read back by their consumers: OpenCV for .flo, KITTI's PNG rule.
    import cv2

    from blendtruth.exports.flo import export_flo
    from blendtruth.exports.kitti_flow import export_kitti, read_kitti

    flos, pngs = export_flo(out, out), export_kitti(out, out)
    assert len(flos) == len(pngs) == 12
    for flo_path, png in zip(flos, pngs, strict=True):
        data = np.load(out / "flow" / (flo_path.stem + ".npz"))
        back = cv2.readOpticalFlow(str(flo_path))
        np.testing.assert_array_equal(back[data["valid"]], data["flow"][data["valid"]])
        kitti, ok = read_kitti(png)
        np.testing.assert_array_equal(ok, data["valid"])
        assert np.abs(kitti[ok] - data["flow"][ok]).max() <= 1 / 128 + 1e-6


def test_normalized_animation_keeps_its_load_transform(animated, tmp_path):
    """Frame 1 of --frames equals the static render of the file (saved at frame 1): the
    normalisation survives frame_set."""
    path, _ = animated
    static, moving = tmp_path / "static", tmp_path / "moving"
    assert _cli(path, "--out", static, "--views", 3).returncode == 0
    run = _cli(path, "--out", moving, "--views", 3, "--frames", "1:2")
    assert run.returncode == 0, run.stderr
    table = json.loads((static / "instances.json").read_text())["instances"]
    cube_id = next(i["id"] for i in table if i["object"] == "Cube")
    cube_pixels = 0
    for i in range(3):
        a = np.load(static / "views" / f"{i:04d}.npz")
        b = np.load(moving / "views" / f"f0001_c{i:02d}.npz")
        cube_pixels += int((a["instance"] == cube_id).sum())
        np.testing.assert_array_equal(b["instance"], a["instance"])
        np.testing.assert_allclose(b["depth"], a["depth"], atol=1e-5)
    assert cube_pixels > 200


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("--frames", "1:99"), "--frames 1:99 is outside the file's animation (frames 1:4)"),
        (("--frames", "1:20000"), "more than the cap of 10000"),
        (("--tracks", "5"), "--animation and --tracks need --frames"),
        (("--frames", "1:3", "--animation", "jump"), "--animation 'jump' is not one of"),
    ],
)
def test_bad_frames_one_line_exit_2(animated, tmp_path, args, message):
    path, _ = animated
    run = _cli(path, "--out", tmp_path / "o", "--views", 1, *args)
    assert run.returncode == 2, run.stderr
    lines = [x for x in run.stderr.splitlines() if x.strip()]
    assert len(lines) == 1 and message in lines[0], run.stderr
    assert not (tmp_path / "o" / "views").exists()


def test_static_model_with_frames_says_so_once(meshes, tmp_path):
    run = _cli(meshes / "fandisk.obj", "--out", tmp_path / "o", "--views", 1, "--frames", "1:2")
    assert run.returncode == 0, run.stderr
    assert run.stderr.count("no animation") == 1, run.stderr
    flow = np.load(tmp_path / "o" / "flow" / "f0001_c00_to_f0002.npz")
    assert flow["valid"].sum() > 100
    assert np.abs(flow["flow"]).max() < 1e-9 and flow["covisible"][flow["valid"]].all()


@pytest.fixture(scope="module")
def clips(tmp_path_factory):
    """A GLB with two animations of one cube: 'slide' (+x) and 'lift' (Blender +z, glTF +y)."""
    reset_scene(use_empty=True)
    bpy.ops.mesh.primitive_cube_add(size=0.6)
    cube = bpy.context.object
    anim = cube.animation_data_create()
    for name, end in (("slide", (1.0, 0, 0)), ("lift", (0, 0, 1.0))):
        cube.location = (0, 0, 0)
        cube.keyframe_insert("location", frame=1)
        cube.location = end
        cube.keyframe_insert("location", frame=10)
        action = anim.action
        action.name = name
        track = anim.nla_tracks.new()
        track.name = name  # NLA_TRACKS export names each glTF animation after its track
        track.strips.new(name, 1, action)
        anim.action = None
    bpy.ops.mesh.primitive_uv_sphere_add(radius=0.3, location=(0, 1.0, 0))
    path = tmp_path_factory.mktemp("clips") / "clips.glb"
    bpy.ops.export_scene.gltf(filepath=str(path), export_animation_mode="NLA_TRACKS")
    return path


@pytest.mark.parametrize("choice", ["0", "1", "lift"])
def test_gltf_clip_choice(clips, tmp_path, choice):
    from blendtruth.inputs.gltf import animation_names

    names = animation_names(clips)
    assert sorted(names) == ["lift", "slide"]
    name = names[int(choice)] if choice.isdigit() else choice
    out = tmp_path / "o"
    run = _cli(clips, "--out", out, "--views", 1, "--frames", "1:10:9", "--animation", choice,
               "--tracks", 30)  # fmt: skip
    assert run.returncode == 0, run.stderr
    tracks, _ = read_tracks(out / "tracks.npz")
    table = json.loads((out / "instances.json").read_text())["instances"]
    cube_id = next(i["id"] for i in table if i["object"] == "Cube")
    on_cube = tracks["instance"] == cube_id
    assert on_cube.sum() >= 3
    move = (tracks["tracks_3d_world"][1] - tracks["tracks_3d_world"][0])[on_cube]
    # One rigid translation, along glTF +x (slide) or glTF +y (lift: Blender's +z).
    axis = np.array([1.0, 0, 0]) if name == "slide" else np.array([0, 1.0, 0])
    assert np.abs(move - move[0]).max() <= 1e-5
    length = np.linalg.norm(move[0])
    assert length > 0.2 and np.abs(move[0] / length - axis).max() <= 1e-5
    still = tracks["tracks_3d_world"][:, ~on_cube]
    assert np.abs(still[1] - still[0]).max() <= 1e-6  # the sphere does not move


def test_tapvid_export_from_a_render(clips, tmp_path):
    import pickle

    from blendtruth.exports.tapvid import compute_metrics, export_tapvid

    out = tmp_path / "o"
    run = _cli(clips, "--out", out, "--views", 1, "--frames", "1:10:3", "--tracks", 25,
               "--samples", 1, rgb=True)  # fmt: skip
    assert run.returncode == 0, run.stderr
    pkl, ev_path = export_tapvid(out, out)
    tracks, _ = read_tracks(out / "tracks.npz")
    entry = pickle.loads(pkl.read_bytes())["o"]
    assert entry["video"].shape == (4, H, W, 3) and entry["video"].dtype == np.uint8
    assert entry["video"].max() > 0
    np.testing.assert_allclose(entry["points"] * [W, H], tracks["tracks_2d"].transpose(1, 0, 2),
                               atol=1e-4)  # fmt: skip
    ev = dict(np.load(ev_path))
    perfect = compute_metrics(ev["query_points"], ev["occluded"], ev["target_points"],
                              ev["occluded"], ev["target_points"], (H, W))  # fmt: skip
    assert perfect["average_jaccard"] == 1.0 and perfect["occlusion_accuracy"] == 1.0
    shifted = compute_metrics(ev["query_points"], ev["occluded"], ev["target_points"],
                              ev["occluded"], ev["target_points"] + 0.5, (H, W))  # fmt: skip
    assert shifted["average_jaccard"] < 1.0 and shifted["pts_within_1"] == 0.0
