"""K multi-object scenes through the dataset runner: `dataset POOL --scenes K` and
`scene POOL --scenes K` share shards, manifest, resume, failures and the executors."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import blendtruth
from blendtruth.cli import main
from blendtruth.dataset.manifest import read_records
from blendtruth.dataset.scene_job import _read_pool, plan_scene_jobs, write_pool
from blendtruth.errors import BlendtruthError
from blendtruth.multiscene import POOL_LISTED, pool_record, scene_seed
from blendtruth.multiview import ViewPlan
from blendtruth.scene import SceneSpec
from blendtruth.scenes.placement import LayoutOptions
from blendtruth.settings import RenderSettings
from folders import assert_same_outputs

trimesh = pytest.importorskip("trimesh")

SMALL = ["--objects", "2", "--no-ground", "--width", "24", "--height", "16", "--views", "1"]
SMALL += ["--no-rgb", "--no-progress", "--seed", "3"]


@pytest.fixture(scope="module")
def pool(tmp_path_factory) -> list[Path]:
    folder = tmp_path_factory.mktemp("pool")
    trimesh.creation.box(extents=(0.8, 0.5, 0.3)).export(folder / "box.obj")
    trimesh.creation.icosphere(subdivisions=2, radius=0.5).export(folder / "ball.obj")
    return [folder / "box.obj", folder / "ball.obj"]


def _dataset(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "blendtruth.cli", "dataset", *args],
                          capture_output=True, text=True, timeout=900)  # fmt: skip


# ---------- pure ----------


def test_scene_jobs_are_seeded_by_index_and_split_by_shard(pool, tmp_path):
    shared = write_pool(tmp_path, pool)
    args = (LayoutOptions(seed=5), tmp_path, SceneSpec(primitive="cube"), ViewPlan(),
            RenderSettings(seed=5))  # fmt: skip
    every = plan_scene_jobs(shared, 6, args[0], *args[1:], shard=(0, 1))
    assert [j.mid for j in every] == ["0000", "0001", "0002", "0003", "0004", "0005"]
    assert [j.seed for j in every] == [scene_seed(5, k) for k in range(6)]
    assert len({j.seed for j in every}) == 6
    halves = [plan_scene_jobs(shared, 6, *args, shard=(i, 2)) for i in (0, 1)]
    assert sorted(j.mid for h in halves for j in h) == [j.mid for j in every]
    assert not {j.mid for j in halves[0]} & {j.mid for j in halves[1]}
    assert every[2].final_dir == tmp_path / "scenes" / "0002"
    assert every[2].record() == {"source": f"scene 0002 (seed {every[2].seed})",
                                 "seed": every[2].seed}  # fmt: skip


def test_jobs_carry_the_pool_file_not_its_paths(tmp_path):
    # A job is pickled to its worker: its size must not grow with the pool, and the
    # worker reads the pool back exactly, or refuses a file changed under it.
    import pickle

    small = [tmp_path / f"m{i}.obj" for i in range(3)]
    large = [tmp_path / f"model_{i:06d}.obj" for i in range(20_000)]
    sizes = []
    for models in (small, large):
        shared = write_pool(tmp_path, models)
        assert shared.models() == models
        job = plan_scene_jobs(shared, 1, LayoutOptions(), tmp_path, SceneSpec(primitive="cube"),
                              ViewPlan(), RenderSettings(), (0, 1))[0]  # fmt: skip
        sizes.append(len(pickle.dumps(job)))
    assert sizes[1] < sizes[0] + 200, sizes  # 20,000 paths would be ~0.5 MB
    assert shared.record == pool_record(large) and "pool_size" in shared.record
    shared.file.write_text(json.dumps([str(p) for p in large[:-1]]))
    _read_pool.cache_clear()  # a fresh worker
    with pytest.raises(BlendtruthError, match="scene pool file was changed"):
        shared.models()


def test_scene_ids_past_9999_sort_by_number():
    from blendtruth.exports.source import item_order

    ids = ["10000", "0002", "9999", "0010", "bunny.obj-0123456789"]
    assert sorted(ids, key=item_order) == [
        "bunny.obj-0123456789", "0002", "0010", "9999", "10000"]  # fmt: skip


def test_a_large_pool_is_summarised_in_scene_json():
    small = [Path(f"/m/{i}.obj") for i in range(POOL_LISTED)]
    assert pool_record(small) == {"pool": [str(p) for p in small]}
    large = [Path(f"/m/{i}.obj") for i in range(POOL_LISTED + 1)]
    record = pool_record(large)
    assert record["pool_size"] == POOL_LISTED + 1 and len(record["pool_sha256"]) == 64
    assert pool_record(large[::-1]) != record  # the digest is of the list as drawn from


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (["--objects", "3"], "--objects is a scene option"),
        (["--no-ground"], "--ground is a scene option"),
        (["--scale", "1,2"], "--scale is a scene option"),
        (["--scenes", "0"], "--scenes must be"),
        (["--scenes", "2", "--scale", "2,1"], "--scale"),
    ],
)
def test_scene_options_of_dataset_are_checked(pool, tmp_path, capsys, args, needle):
    code = main(["dataset", str(pool[0]), "--out", str(tmp_path / "o"), "--no-rgb", *args])
    err = capsys.readouterr().err.strip()
    assert code == 2 and len(err.splitlines()) == 1 and needle in err, err
    assert not (tmp_path / "o" / "scenes").exists()


# ---------- render ----------


@pytest.mark.render
def test_dataset_scenes_shard_resume_index_and_load(pool, tmp_path):
    whole, split = tmp_path / "whole", tmp_path / "split"
    assert main(["scene", *map(str, pool), *SMALL, "--scenes", "3", "--out", str(whole)]) == 0
    for shard in ("0/2", "1/2"):
        run = _dataset(*map(str, pool), *SMALL, "--scenes", "3", "--shard", shard,
                       "--workers", "1", "--out", str(split))  # fmt: skip
        assert run.returncode == 0, run.stderr
    for k in ("0000", "0001", "0002"):  # the same scene whatever the shard or command
        assert_same_outputs(whole / "scenes" / k, split / "scenes" / k)
        scene = json.loads((split / "scenes" / k / "scene.json").read_text())
        assert scene["seed"] == scene_seed(3, int(k))
    assert not list((split / "scenes").glob(".*")) and not (split / "models").exists()
    records = read_records(split)
    assert sorted(records) == ["0000", "0001", "0002"]
    assert all(r["status"] == "done" and r["seed"] == scene_seed(3, int(m))
               for m, r in records.items())  # fmt: skip
    index = json.loads((split / "index.json").read_text())
    assert index["models"] == [] and [s["folder"] for s in index["scenes"]] == [
        "scenes/0000", "scenes/0001", "scenes/0002"]  # fmt: skip
    assert all((split / v).is_file() for s in index["scenes"] for v in s["views"])
    views = list(blendtruth.load(split))
    assert [v.meta["loaded_from"]["model"] for v in views] == ["0000", "0001", "0002"]
    assert all(v.mask.any() and np.isfinite(v.depth[v.mask]).all() for v in views)
    # Resume: a finished scene is kept; a deleted one is made again, identically.
    stamp = (split / "scenes" / "0000" / "scene.json").stat().st_mtime_ns
    again = split / "scenes" / "0001"
    saved = again.with_name("saved")
    again.rename(saved)
    run = _dataset(*map(str, pool), *SMALL, "--scenes", "3", "--out", str(split))
    assert run.returncode == 0, run.stderr
    summary = json.loads((split / "summary.json").read_text())
    assert summary["kind"] == "scenes" and summary["models_done"] == 1
    assert summary["skipped_already_done"] == 2
    assert (split / "scenes" / "0000" / "scene.json").stat().st_mtime_ns == stamp
    assert_same_outputs(saved, again)


@pytest.mark.render
def test_a_bad_model_fails_its_scenes_with_one_line(pool, tmp_path):
    bad = tmp_path / "nan.obj"
    bad.write_text("v 0 0 0\nv 1 0 nan\nv 0 1 0\nf 1 2 3\n")
    out = tmp_path / "o"
    run = _dataset(str(bad), *SMALL, "--scenes", "2", "--out", str(out))
    assert run.returncode == 1
    failed = [line for line in run.stderr.splitlines() if "failed:" in line]
    assert len(failed) == 2 and all("scene 000" in f and "nan.obj" in f for f in failed), failed
    records = read_records(out)
    assert {r["status"] for r in records.values()} == {"failed"}
    assert all(r["attempts"] == 1 for r in records.values())  # bad input is not retried
    assert not list((out / "scenes").iterdir())  # nothing that looks like a scene


@pytest.mark.render
@pytest.mark.slow
def test_scenes_on_the_ray_executor(pool, tmp_path):
    pytest.importorskip("ray")
    local, ray = tmp_path / "local", tmp_path / "ray"
    assert main(["scene", *map(str, pool), *SMALL, "--scenes", "2", "--out", str(local)]) == 0
    run = _dataset(*map(str, pool), *SMALL, "--scenes", "2", "--executor", "ray",
                   "--out", str(ray))  # fmt: skip
    assert run.returncode == 0, run.stderr
    for k in ("0000", "0001"):
        assert_same_outputs(local / "scenes" / k, ray / "scenes" / k)
