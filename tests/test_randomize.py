"""Seeded domain randomisation: drawn without bpy, recorded in scene.json, RGB-only."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from scipy.spatial.transform import Rotation

from blendtruth.cli import main
from blendtruth.errors import BlendtruthError
from blendtruth.scenes.lights import HDRI_NAMES
from blendtruth.scenes.randomize import RandomizeOptions, draw, jitter_poses, parse_parts

trimesh = pytest.importorskip("trimesh")

GEOMETRY = ("depth", "distance", "normal", "mask", "instance", "semantic", "amodal", "amodal_ids")


def test_draw_is_seeded_and_in_range():
    poses = [np.eye(4) for _ in range(3)]
    poses[1][:3, 3] = [2.0, 0.0, 0.0]
    opts = RandomizeOptions(("materials", "lights"), (2, 2), (10.0, 20.0), ("point", "sun"))
    a, b = draw(opts, 5, poses), draw(opts, 5, poses)
    assert a == b and a != draw(opts, 6, poses)
    assert len(a["materials"]) == 3 and len(a["lights"]) == 2
    for m in a["materials"]:
        assert all(0.05 <= c <= 0.95 for c in m["base_color"]) and 0 <= m["roughness"] <= 1
        assert m["texture"] in ("none", "noise", "voronoi", "checker")
    centre = np.mean([p[:3, 3] for p in poses], axis=0)
    for light in a["lights"]:
        assert light["type"] in ("point", "sun")
        lo, hi = (10.0, 20.0) if light["type"] == "point" else (0.05, 0.1)
        assert lo <= light["strength"] <= hi
        assert light["position"][2] > centre[2]  # upper half of the shell
        np.testing.assert_allclose(light["target"], centre)
    ceiling = a["ceiling"]
    np.testing.assert_allclose(ceiling["position"][:2], centre[:2])
    assert ceiling["position"][2] > centre[2] and 20.0 <= ceiling["strength"] <= 40.0
    assert "lights" not in draw(RandomizeOptions(("materials",)), 5, poses)
    assert parse_parts("all") == ("materials", "lights", "hdri", "camera")
    assert parse_parts(None) == ()
    hdri = draw(RandomizeOptions(("hdri",)), 5, poses)["hdri"]
    assert hdri["name"] in HDRI_NAMES and 0 <= hdri["rotation_deg"] < 360
    # The parts draw from one stream in a fixed order: materials alone are the same
    # draws as materials within "all".
    assert draw(RandomizeOptions(("materials",)), 5, poses)["materials"] == a["materials"]


def test_camera_jitter_is_a_bounded_rotation_about_the_centre():
    rng = np.random.default_rng(0)
    poses = []
    for _ in range(20):
        pose = np.eye(4)
        pose[:3, :3] = Rotation.random(random_state=rng).as_matrix()
        pose[:3, 3] = rng.normal(size=3)
        poses.append(pose)
    record = {"jitter_deg": 4.0, "seed": 11}
    out = jitter_poses(poses, record)
    assert all(np.array_equal(a, b) for a, b in zip(out, jitter_poses(poses, record), strict=True))
    angles = []
    for before, after in zip(poses, out, strict=True):
        np.testing.assert_array_equal(after[:3, 3], before[:3, 3])
        turn = Rotation.from_matrix(after[:3, :3] @ before[:3, :3].T)
        angles.append(np.degrees(turn.magnitude()))
        np.testing.assert_allclose(after[:3, :3] @ after[:3, :3].T, np.eye(3), atol=1e-12)
    assert max(angles) <= 4.0 + 1e-9 and min(angles) > 0 and max(angles) > 2.0


def test_bad_randomize_options():
    with pytest.raises(BlendtruthError, match="--randomize: unknown part texture"):
        RandomizeOptions(("texture",))
    with pytest.raises(BlendtruthError, match="--light-count"):
        RandomizeOptions(("lights",), (3, 1))
    with pytest.raises(BlendtruthError, match="--light-types"):
        RandomizeOptions(("lights",), light_types=("laser",))
    with pytest.raises(BlendtruthError, match="--camera-jitter"):
        RandomizeOptions(("camera",), camera_jitter_deg=-1.0)


def _arrays(folder: Path) -> dict[str, dict[str, np.ndarray]]:
    out = {}
    for path in sorted((folder / "views").glob("*.npz")):
        with np.load(path) as data:
            out[path.stem] = {k: data[k] for k in data.files}
    return out


@pytest.mark.render
def test_randomized_scene_same_geometry_other_rgb_same_bits(tmp_path):
    trimesh.creation.box(extents=(0.8, 0.5, 0.3)).export(tmp_path / "box.obj")
    trimesh.creation.icosphere(subdivisions=2, radius=0.5).export(tmp_path / "ball.obj")
    pool = [str(tmp_path / "box.obj"), str(tmp_path / "ball.obj")]
    common = ["--objects", "3", "--width", "48", "--height", "36", "--views", "1"]
    common += ["--samples", "2", "--seed", "7", "--passes", "instance,semantic", "--amodal"]
    common += ["--radius", "4", "--elevation", "40"]
    rand = ["--randomize", "materials,lights,hdri", "--light-count", "2,2"]
    assert main(["scene", *pool, *common, "--out", str(tmp_path / "plain")]) == 0
    assert main(["scene", *pool, *common, *rand, "--out", str(tmp_path / "a")]) == 0
    assert main(["scene", *pool, *common, *rand, "--out", str(tmp_path / "b")]) == 0
    plain = json.loads((tmp_path / "plain" / "scene.json").read_text())
    saved = json.loads((tmp_path / "a" / "scene.json").read_text())
    assert "randomization" not in plain and len(saved["randomization"]["lights"]) == 2
    assert saved["randomization"]["hdri"]["name"] in HDRI_NAMES
    assert saved["objects"] == plain["objects"]  # the same objects in the same places
    # Same seed, same bits (RGB included); materials and lights change RGB only.
    x, y, z = _arrays(tmp_path / "a"), _arrays(tmp_path / "b"), _arrays(tmp_path / "plain")
    for name in x:
        for key in x[name]:
            assert np.array_equal(x[name][key], y[name][key]), (name, key)
        for key in GEOMETRY:
            assert np.array_equal(x[name][key], z[name][key]), (name, key)
        assert np.abs(x[name]["rgb"].astype(int) - z[name]["rgb"]).mean() > 5
    # The saved scene re-renders bit-identically.
    again = [c for c in common if c not in ("--objects", "3")]
    scene_file = str(tmp_path / "a" / "scene.json")
    assert main(["render", "--scene-file", scene_file, *again, "--out", str(tmp_path / "r")]) == 0
    r = _arrays(tmp_path / "r")
    for name in x:
        for key in x[name]:
            assert np.array_equal(x[name][key], r[name][key]), (name, key)
    # Camera jitter: the same centres, views turned by at most --camera-jitter degrees.
    jit = ["--randomize", "camera", "--camera-jitter", "3"]
    assert main(["scene", *pool, *common, *jit, "--out", str(tmp_path / "j")]) == 0
    j = _arrays(tmp_path / "j")
    for name in j:
        before, after = z[name]["cam_to_world"], j[name]["cam_to_world"]
        np.testing.assert_array_equal(after[:3, 3], before[:3, 3])
        turn = Rotation.from_matrix(after[:3, :3] @ before[:3, :3].T).magnitude()
        assert 0 < np.degrees(turn) <= 3 + 1e-9
        assert not np.array_equal(j[name]["depth"], z[name]["depth"])


@pytest.mark.render
def test_container_keeps_the_pile_inside_its_walls(tmp_path, capsys):
    trimesh.creation.box(extents=(0.8, 0.5, 0.3)).export(tmp_path / "box.obj")
    common = ["--objects", "6", "--width", "32", "--height", "24", "--views", "1"]
    common += ["--samples", "1", "--seed", "2", "--no-rgb", "--container"]
    assert main(["scene", str(tmp_path / "box.obj"), *common, "--out", str(tmp_path / "c")]) == 0
    saved = json.loads((tmp_path / "c" / "scene.json").read_text())
    half = saved["physics"]["container"]["half_width"]
    assert saved["physics"]["settled"]
    # Every settled vertex (the file's mesh through the saved matrix) is inside the walls
    # (to Bullet's contact tolerance, 1e-3 of the largest radius, as test_scenes.py).
    tol = 1e-3 * max(o["scale"] for o in saved["objects"])
    reach = 0.0
    for obj in saved["objects"]:
        mesh = trimesh.load(obj["model"], force="mesh", process=False)
        mesh.apply_transform(np.array(obj["model_to_world"]))
        reach = max(reach, float(np.abs(mesh.vertices[:, :2]).max()))
    assert reach <= half + tol, (reach, half)
    code = main(["scene", str(tmp_path / "box.obj"), "--no-ground", "--container"])
    assert code == 2 and "--container" in capsys.readouterr().err
