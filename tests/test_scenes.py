"""Multi-object scenes: seeded layout, scene files, and (render) physics-settled scenes
checked against an independent trimesh reconstruction of the final world triangles."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from blendtruth.cli import main
from blendtruth.errors import BlendtruthError
from blendtruth.scenes.placement import (
    Ground,
    LayoutOptions,
    Placement,
    SceneFile,
    initial_layout,
    read_scene_file,
)
from blendtruth.writers.scene_file import write_scene_file
from folders import assert_same_outputs

trimesh = pytest.importorskip("trimesh")

# Resting contact: Bullet leaves bodies touching to within this fraction of the
# largest model radius (measured over 5 seeds x 8 models: model-model penetration
# <= 8.4e-5, floor penetration <= 2.3e-4, floor gap <= 4e-5).
CONTACT_TOL = 1e-3


@pytest.fixture(scope="module")
def pool(tmp_path_factory) -> list[Path]:
    folder = tmp_path_factory.mktemp("pool")
    box = trimesh.creation.box(extents=(0.8, 0.5, 0.3))
    ball = trimesh.creation.icosphere(subdivisions=2, radius=0.5)
    box.export(folder / "box.obj")
    ball.export(folder / "ball.obj")
    return [folder / "box.obj", folder / "ball.obj"]


# ---------- pure ----------


def test_layout_is_seeded_and_spheres_do_not_overlap(pool):
    opts = LayoutOptions(objects=12, seed=4)
    a = initial_layout(pool, opts, ["+y", "+y"])
    b = initial_layout(pool, opts, ["+y", "+y"])
    c = initial_layout(pool, LayoutOptions(objects=12, seed=5), ["+y", "+y"])
    assert [s.position.tolist() for s in a] == [s.position.tolist() for s in b]
    assert [s.position.tolist() for s in a] != [s.position.tolist() for s in c]
    for i, s in enumerate(a):
        assert 0.5 <= s.scale <= 1.0 and s.position[2] > s.scale  # above the plane
        np.testing.assert_allclose(s.rotation @ s.rotation.T, np.eye(3), atol=1e-12)
        assert np.linalg.det(s.rotation) == pytest.approx(1.0)
        for t in a[i + 1 :]:
            assert np.linalg.norm(s.position - t.position) > s.scale + t.scale
    volume = initial_layout(pool, LayoutOptions(objects=12, seed=4, ground=False), ["+z"] * 2)
    assert min(s.position[2] for s in volume) < 0  # a volume around the origin
    upright = initial_layout(pool, LayoutOptions(objects=3, upright=True), ["+y", "+z"])
    for s in upright:
        np.testing.assert_allclose(s.rotation[:, 2], [0, 0, 1], atol=1e-12)
        assert s.stand_up == (s.model == pool[0])


def test_layout_options_are_checked():
    for kwargs, needle in [
        ({"objects": 0}, "--objects"),
        ({"scale_range": (1.0, 0.5)}, "--scale"),
        ({"collision": "sphere"}, "--collision"),
        ({"ground_size": -1.0}, "--ground-size"),
        ({"seed": -1}, "--seed"),
    ]:
        with pytest.raises(BlendtruthError, match=needle):
            LayoutOptions(**kwargs)


def test_scene_file_round_trip_is_exact(tmp_path):
    m = np.eye(4)
    m[:3, :3] = np.array([[0.1, 0.2, 0.3], [0.4, 0.5, 0.6], [0.7, 0.8, 0.9]]) / 3.0
    m[:3, 3] = [1 / 3, -2 / 7, np.pi]
    scene = SceneFile(
        (Placement(tmp_path / "a.obj", m, 0.7, ["p000.a"]),), Ground(12.5, False), 9, {}, {}
    )
    write_scene_file(tmp_path / "scene.json", scene)
    back = read_scene_file(tmp_path / "scene.json")
    assert back.placements == scene.placements and back.ground == scene.ground
    assert np.array_equal(back.placements[0].matrix, m)  # bit-identical floats
    (tmp_path / "bad.json").write_text("{")
    (tmp_path / "other.json").write_text('{"format": "x"}')
    for name, needle in [
        ("none.json", "no such file"),
        ("bad.json", "not a readable JSON"),
        ("other.json", "not a blendtruth scene"),
    ]:
        with pytest.raises(BlendtruthError, match=needle):
            read_scene_file(tmp_path / name)


def test_bad_scene_options_are_one_line(pool, tmp_path, capsys):
    for args, needle in [
        (["scene", str(pool[0]), "--objects", "0"], "--objects"),
        (["scene", str(pool[0]), "--scale", "big"], "--scale"),
        (["scene", str(tmp_path / "none.obj")], "no such file"),
        (["scene", str(pool[0]), "--scenes", "0"], "--scenes"),
        (["scene", str(pool[0]), "--ground-size", "0"], "--ground-size"),
        (["render", "--scene-file", str(tmp_path / "none.json")], "no such file"),
        (["render", str(pool[0]), "--scene-file", str(pool[0])], "--scene-file"),
    ]:
        code = main([*args, "--out", str(tmp_path / "o")])
        err = capsys.readouterr().err.strip()
        assert code == 2 and needle in err and len(err.splitlines()) == 1, err


# ---------- render ----------


def _world_meshes(scene_json: Path) -> list:
    """The placed models rebuilt with trimesh from the files and the saved matrices."""
    data = json.loads(scene_json.read_text())
    meshes = []
    for obj in data["objects"]:
        mesh = trimesh.load(obj["model"], force="mesh", process=False)
        mesh.apply_transform(np.array(obj["model_to_world"]))
        meshes.append(mesh)
    return meshes


def _penetration(a, b, rng) -> float:
    """Deepest point of ``a``'s surface (vertices plus 3000 samples) inside ``b``
    (trimesh signed distance: positive inside, by ray-cast containment)."""
    pts = np.concatenate([a.vertices, trimesh.sample.sample_surface(a, 3000, seed=rng)[0]])
    near = np.linalg.norm(pts - b.bounding_sphere.primitive.center, axis=1)
    pts = pts[near <= b.bounding_sphere.primitive.radius * 1.01]
    if len(pts) == 0:
        return -np.inf
    return float(trimesh.proximity.signed_distance(b, pts).max())


def _gap(a, b) -> float:
    """Smallest distance from ``a``'s vertices to ``b``'s surface."""
    return float(np.abs(trimesh.proximity.signed_distance(b, a.vertices)).min())


@pytest.mark.render
def test_settled_scene_rests_without_interpenetration_and_rerenders(pool, tmp_path):
    common = ["--objects", "5", "--width", "48", "--height", "36", "--views", "2"]
    common += ["--samples", "2", "--seed", "3"]
    assert main(["scene", *map(str, pool), *common, "--out", str(tmp_path / "a")]) == 0
    data = json.loads((tmp_path / "a" / "scene.json").read_text())
    assert data["physics"]["settled"] and len(data["objects"]) == 5
    smax = max(o["scale"] for o in data["objects"])
    tol = CONTACT_TOL * smax
    meshes = _world_meshes(tmp_path / "a" / "scene.json")
    rng = 0
    worst = 0.0
    for i, a in enumerate(meshes):
        for j, b in enumerate(meshes):
            if i != j:
                worst = max(worst, _penetration(a, b, rng))
    assert worst <= tol, (worst, tol)
    # Resting: on the plane (lowest point within tol of z = 0) or touching a model whose
    # centre is lower.
    for i, a in enumerate(meshes):
        low = a.vertices[:, 2].min()
        assert low >= -tol, low
        if low <= tol:
            continue
        below = [b for j, b in enumerate(meshes) if j != i and b.centroid[2] < a.centroid[2]]
        assert below and min(_gap(a, b) for b in below) <= tol, i
    # The views' meta names the Blender objects of each placed model, as the file does.
    with np.load(tmp_path / "a" / "views" / "0000.npz") as v:
        meta = json.loads(str(v["meta"]))
    assert meta["scene"]["placed_objects"] == [o["blender_objects"] for o in data["objects"]]
    assert meta["scene"]["ground"]["in_truth"] is True
    # Same seed: the same scene file, byte for byte; another seed: another scene.
    assert main(["scene", *map(str, pool), *common, "--out", str(tmp_path / "b")]) == 0
    assert (tmp_path / "a/scene.json").read_bytes() == (tmp_path / "b/scene.json").read_bytes()
    assert_same_outputs(tmp_path / "a", tmp_path / "b")
    other = [*common[:-1], "4"]
    assert main(["scene", *map(str, pool), *other, "--out", str(tmp_path / "c")]) == 0
    assert (tmp_path / "a/scene.json").read_bytes() != (tmp_path / "c/scene.json").read_bytes()
    # The saved file re-renders bit-identically (every array, RGB and meta included).
    again = [c for c in common if c not in ("--objects", "5")]
    scene_file = str(tmp_path / "a" / "scene.json")
    assert main(["render", "--scene-file", scene_file, *again, "--out", str(tmp_path / "r")]) == 0
    for path in sorted((tmp_path / "a" / "views").glob("*.npz")):
        with np.load(path) as x, np.load(tmp_path / "r" / "views" / path.name) as y:
            assert x.files == y.files
            for key in x.files:
                assert np.array_equal(x[key], y[key]), (path.name, key)


@pytest.mark.render
def test_ground_left_out_of_the_ground_truth(pool, tmp_path):
    args = ["--objects", "3", "--width", "48", "--height", "36", "--views", "1", "--seed", "2"]
    args += ["--samples", "2", "--sampler", "orbit", "--elevation", "35"]
    assert main(["scene", *map(str, pool), *args, "--out", str(tmp_path / "in")]) == 0
    scene_file = tmp_path / "in" / "scene.json"
    data = json.loads(scene_file.read_text())
    data["ground"]["in_truth"] = False
    (tmp_path / "out.json").write_text(json.dumps(data))
    again = [a for a in args if a not in ("--objects", "3")]
    cmd = ["render", "--scene-file", str(tmp_path / "out.json"), *again]
    assert main([*cmd, "--out", str(tmp_path / "out")]) == 0
    views = tmp_path / "in/views/0000.npz", tmp_path / "out/views/0000.npz"
    with np.load(views[0]) as a, np.load(views[1]) as b:
        assert a["mask"].all()  # the ground fills the background at 35° elevation
        objects = b["mask"]
        assert 20 < objects.sum() < 0.8 * objects.size
        # The models' pixels are unchanged; the ground's pixels are empty in the truth.
        assert np.array_equal(a["depth"][objects], b["depth"][objects])
        assert np.array_equal(a["normal"][objects], b["normal"][objects])
        assert np.all(b["depth"][~objects] == 0)
        # Ground pixels: planar z = 0 surface, world normal +Z.
        ground = ~objects
        n_world = a["normal"][ground] @ a["cam_to_world"][:3, :3].T
        np.testing.assert_allclose(n_world, np.tile([0, 0, 1.0], (ground.sum(), 1)), atol=1e-5)
        # The RGB image shows the ground in both.
        assert np.array_equal(a["rgb"], b["rgb"])


@pytest.mark.render
def test_volume_scenes_and_the_k_scene_mode(pool, tmp_path):
    args = ["--objects", "3", "--no-ground", "--width", "32", "--height", "24", "--views", "1"]
    args += ["--no-rgb", "--scenes", "2", "--seed", "1"]
    assert main(["scene", *map(str, pool), *args, "--out", str(tmp_path / "k")]) == 0
    files = sorted((tmp_path / "k" / "scenes").glob("*/scene.json"))
    assert [f.parent.name for f in files] == ["0000", "0001"]
    assert files[0].read_bytes() != files[1].read_bytes()
    assert not list((tmp_path / "k" / "scenes").glob(".*"))  # no half-made scene left
    for f in files:
        data = json.loads(f.read_text())
        assert data["ground"] is None and data["layout"]["mode"] == "volume"
        meshes = _world_meshes(f)
        for i, a in enumerate(meshes):
            for b in meshes[i + 1 :]:
                assert _penetration(a, b, 0) < 0  # apart: no point of one inside the other
    stamp = files[0].stat().st_mtime_ns
    assert main(["scene", *map(str, pool), *args, "--out", str(tmp_path / "k")]) == 0
    assert files[0].stat().st_mtime_ns == stamp  # resumed: finished scenes are kept


@pytest.mark.render
@pytest.mark.slow
def test_k_scenes_do_not_depend_on_the_worker_count(pool, tmp_path):
    args = ["--objects", "3", "--width", "24", "--height", "16", "--views", "1", "--no-rgb"]
    args += ["--scenes", "2", "--seed", "8"]
    for workers in ("1", "2"):
        out = str(tmp_path / workers)
        assert main(["scene", *map(str, pool), *args, "--workers", workers, "--out", out]) == 0
    for k in ("0000", "0001"):
        assert_same_outputs(tmp_path / "1" / "scenes" / k, tmp_path / "2" / "scenes" / k)


@pytest.mark.render
def test_rig_cameras_under_the_ground_are_moved_above_it(pool, tmp_path, capsys):
    # zero123's rig has cameras below the objects' plane; each must see an object.
    args = ["--objects", "2", "--width", "32", "--height", "24", "--rig", "zero123",
            "--seed", "1", "--no-rgb", "--no-ground-in-truth"]  # fmt: skip
    assert main(["scene", *map(str, pool), *args, "--out", str(tmp_path / "z")]) == 0
    err = capsys.readouterr().err
    moved = [line for line in err.splitlines() if "from under the ground plane" in line]
    assert len(moved) == 1 and moved[0].startswith("blendtruth: warning: moved "), err
    views = sorted((tmp_path / "z" / "views").glob("*.npz"))
    assert len(views) == 12
    for path in views:
        with np.load(path) as v:
            # Without the ground in the truth, the mask is the objects alone.
            assert v["mask"].sum() > 10, path.name
            assert v["cam_to_world"][2, 3] > 0, path.name
