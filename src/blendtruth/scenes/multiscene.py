"""``blendtruth scene``: make seeded multi-object scenes, save them, render their views.

A scene is made once (layout, then Blender's rigid-body simulation) and written as
``scene.json``; its views are then always rendered *from that file*, so rendering the
file again later (``blendtruth render --scene-file scene.json``) gives the same bytes.
Layout of ``out`` for one scene: ``scene.json`` plus the files of
:func:`blendtruth.multiview.render_model`; for K scenes: ``scenes/NNNN/`` each.
"""

from __future__ import annotations

import dataclasses
import hashlib
import os
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from blendtruth.models import check_model_file, default_up
from blendtruth.scene import SceneSpec
from blendtruth.scenes.placement import (
    Ground,
    LayoutOptions,
    SceneFile,
    default_ground_size,
    initial_layout,
    read_scene_file,
    write_scene_file,
)


def make_scene(pool: list[Path], options: LayoutOptions) -> SceneFile:
    """Lay out ``options.objects`` models from ``pool`` with ``options.seed`` and, with a
    ground, settle them with Blender's rigid-body simulation."""
    for path in pool:
        check_model_file(path)
    spawns = initial_layout(pool, options, [default_up([p]) for p in pool])
    layout = {
        "pool": [str(p) for p in pool],
        "objects": options.objects,
        "scale_range": list(options.scale_range),
        "upright": options.upright,
        "mode": "ground" if options.ground else "volume",
        "spawn": "bounding spheres without overlap, numpy.random.default_rng(seed)",
    }
    from blendtruth.api import forget_loaded_scene
    from blendtruth.blender import physics

    forget_loaded_scene()  # the physics run resets Blender
    if not options.ground:
        placements = physics.place_without_physics(spawns)
        return SceneFile(tuple(placements), None, options.seed, layout, {"engine": None})
    size = default_ground_size(options)
    placements, meta = physics.settle(spawns, options, size)
    ground = Ground(size, options.ground_in_truth)
    return SceneFile(tuple(placements), ground, options.seed, layout, meta)


def scene_spec(scene: SceneFile, template: SceneSpec) -> SceneSpec:
    """The SceneSpec that renders ``scene`` with the template's light and material."""
    return dataclasses.replace(
        template, models=(), primitive=None, normalize=False,
        placements=scene.placements, ground=scene.ground,
    )  # fmt: skip


def render_scene(
    pool: list[Path], options: LayoutOptions, template: SceneSpec, plan, settings, out: Path
) -> list[Path]:
    """Make one scene, write ``out/scene.json``, render its views from that file."""
    from blendtruth.multiview import render_model

    scene = make_scene(pool, options)  # before any output: a bad model leaves no folder
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    write_scene_file(out / "scene.json", scene)
    saved = read_scene_file(out / "scene.json")
    written = render_model(scene_spec(saved, template), plan, settings, out)
    return [out / "scene.json", *written]


def scene_seed(seed: int, index: int) -> int:
    """Seed of scene ``index`` of a K-scene dataset made with ``seed``."""
    return int(hashlib.sha256(f"{seed}:scene{index}".encode()).hexdigest()[:8], 16) % 2**31


@dataclass(frozen=True)
class SceneJob:
    """Scene ``index`` of a K-scene run (picklable: sent to a worker process)."""

    index: int
    pool: tuple[Path, ...]
    options: LayoutOptions
    template: SceneSpec
    plan: Any
    settings: Any
    out: Path


def run_scene_job(job: SceneJob) -> dict[str, Any]:
    """Make and render one scene into a dot-folder, then rename it to ``scenes/NNNN``."""
    root = Path(job.out) / "scenes"
    final = root / f"{job.index:04d}"
    tmp = root / f".{job.index:04d}.tmp-{os.getpid()}"
    shutil.rmtree(tmp, ignore_errors=True)
    seed = scene_seed(job.options.seed, job.index)
    render_scene(
        list(job.pool),
        dataclasses.replace(job.options, seed=seed),
        job.template,
        job.plan,
        dataclasses.replace(job.settings, seed=seed),
        tmp,
    )
    shutil.rmtree(final, ignore_errors=True)
    os.rename(tmp, final)
    return {"scene": str(final)}


def render_scenes(
    pool: list[Path],
    count: int,
    options: LayoutOptions,
    template: SceneSpec,
    plan,
    settings,
    out: Path,
    workers: int = 1,
    timeout: float | None = None,
) -> tuple[list[Path], list[str]]:
    """K scenes into ``out/scenes/NNNN/``, scene k seeded with :func:`scene_seed`, so the
    files do not depend on ``workers``. Each is made in a dot-folder and renamed into
    place when complete; finished folders are kept, so re-running resumes. One worker:
    in this process, an error stops the run; more: the dataset command's worker
    processes (one retry after a crash or timeout), failures are returned as reasons."""
    root = Path(out) / "scenes"
    root.mkdir(parents=True, exist_ok=True)
    jobs = [
        SceneJob(k, tuple(pool), options, template, plan, settings, Path(out))
        for k in range(count)
        if not (root / f"{k:04d}" / "scene.json").is_file()
    ]
    failures: list[str] = []
    if workers == 1:
        for job in jobs:
            run_scene_job(job)
    elif jobs:
        from blendtruth.dataset.local import LocalExecutor

        def on_result(job: SceneJob, outcome: dict[str, Any]):
            if outcome["ok"]:
                return None
            if outcome.get("retryable") and outcome["attempt"] == 0:
                return [(job, 1)]
            failures.append(f"scene {job.index:04d}: {outcome['reason']}")
            return None

        executor = LocalExecutor(workers, timeout=timeout, run=run_scene_job)
        executor.run([(job, 0) for job in jobs], on_result)
    done = [root / f"{k:04d}" for k in range(count) if (root / f"{k:04d}" / "scene.json").is_file()]
    return done, failures
