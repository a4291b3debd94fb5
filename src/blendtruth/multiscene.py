"""``blendtruth scene``: make seeded multi-object scenes, save them, render their views.

A scene is made once (layout, then Blender's rigid-body simulation) and written as
``scene.json``; its views are then always rendered *from that file*, so rendering the
file again later (``blendtruth render --scene-file scene.json``) gives the same bytes.
Layout of ``out`` for one scene: ``scene.json`` plus the files of
:func:`blendtruth.multiview.render_model`; for K scenes (``--scenes K``, run by the dataset
runner, :mod:`blendtruth.dataset.scene_job`): ``scenes/NNNN/`` each.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from pathlib import Path

import numpy as np

from blendtruth.models import check_model_file, default_up
from blendtruth.scene import SceneSpec
from blendtruth.scenes.placement import (
    Ground,
    LayoutOptions,
    SceneFile,
    default_ground_size,
    initial_layout,
    read_scene_file,
)
from blendtruth.writers.scene_file import write_scene_file

POOL_LISTED = 64  # pools up to this size are listed file by file in scene.json


def make_scene(pool: list[Path], options: LayoutOptions, record: dict | None = None) -> SceneFile:
    """Lay out ``options.objects`` models from ``pool`` with ``options.seed`` and, with a
    ground, settle them with Blender's rigid-body simulation. Only the drawn models are
    checked and loaded, so a large pool costs nothing per scene. ``record``: what
    scene.json says of the pool (:func:`pool_record`), when the caller already has it."""
    spawns = initial_layout(pool, options, [default_up([p]) for p in pool])
    main_count = len(spawns)
    spawns += distractor_spawns(options, spawns)
    for path in sorted({s.model for s in spawns}):
        check_model_file(path)
    layout = {
        **(record if record is not None else pool_record(pool)),
        "objects": options.objects,
        "scale_range": list(options.scale_range),
        "upright": options.upright,
        "mode": "ground" if options.ground else "volume",
        "spawn": "bounding spheres without overlap, numpy.random.default_rng(seed)",
    }
    if options.container:
        layout["container"] = "four walls around the spawns while settling (not rendered)"
    if options.distractor_count:
        layout["distractors"] = {
            "pool": [str(p) for p in options.distractors],
            "count": options.distractor_count,
            "spawn": "as the objects, seed sha256('{seed}:distractors'), above the objects",
        }
    from blendtruth.api import forget_loaded_scene
    from blendtruth.blender import physics

    forget_loaded_scene()  # the physics run resets Blender
    if not options.ground:
        placements = _flag(physics.place_without_physics(spawns), main_count)
        drawn = _randomization(options, placements)
        return SceneFile(tuple(placements), None, options.seed, layout, {"engine": None}, drawn)
    size = default_ground_size(options)
    placements, meta = physics.settle(spawns, options, size)
    placements = _flag(placements, main_count)
    ground = Ground(size, options.ground_in_truth)
    drawn = _randomization(options, placements)
    return SceneFile(tuple(placements), ground, options.seed, layout, meta, drawn)


def distractor_spawns(options: LayoutOptions, spawns: list) -> list:
    """``distractor_count`` spawns from the distractor pool, drawn from their own stream
    (so the objects' draws do not change) and lifted above every object's sphere."""
    if not options.distractor_count:
        return []
    seed = int(hashlib.sha256(f"{options.seed}:distractors".encode()).hexdigest()[:8], 16)
    sub = dataclasses.replace(
        options, objects=options.distractor_count, seed=seed % 2**31, distractor_count=0
    )
    pool = list(options.distractors)
    drawn = initial_layout(pool, sub, [default_up([p]) for p in pool])
    top = max(s.position[2] + s.scale for s in spawns)
    low = min(s.position[2] - s.scale for s in drawn)
    lift = np.array([0.0, 0.0, top - low + 0.02 * options.scale_range[1]])
    return [dataclasses.replace(s, position=s.position + lift) for s in drawn]


def _flag(placements: list, main_count: int) -> list:
    """Placements past the first ``main_count`` are distractors."""
    return [dataclasses.replace(p, distractor=True) if i >= main_count else p
            for i, p in enumerate(placements)]  # fmt: skip


def _randomization(options: LayoutOptions, placements) -> dict | None:
    """The drawn randomisation record (scenes/randomize.py), None without --randomize."""
    if options.randomize is None or not options.randomize.parts:
        return None
    from blendtruth.scenes.randomize import draw

    return draw(options.randomize, options.seed, [p.matrix for p in placements])


def pool_record(pool: list[Path]) -> dict:
    """The pool in scene.json: listed when small, else its size and a digest of the list
    (a million-model pool must not be copied into every scene)."""
    if len(pool) <= POOL_LISTED:
        return {"pool": [str(p) for p in pool]}
    return {"pool_size": len(pool), "pool_sha256": pool_digest(pool)}


def pool_digest(pool: list[Path]) -> str:
    """SHA-256 of the pool's paths, one per line (the order is the pool's)."""
    return hashlib.sha256("\n".join(str(p) for p in pool).encode()).hexdigest()


def scene_spec(scene: SceneFile, template: SceneSpec) -> SceneSpec:
    """The SceneSpec that renders ``scene`` with the template's light and material."""
    drawn = "" if scene.randomization is None else json.dumps(scene.randomization)
    return dataclasses.replace(
        template, models=(), primitive=None, normalize=False,
        placements=scene.placements, ground=scene.ground, randomization=drawn,
    )  # fmt: skip


def render_scene(
    pool: list[Path],
    options: LayoutOptions,
    template: SceneSpec,
    plan,
    settings,
    out: Path,
    record: dict | None = None,
) -> list[Path]:
    """Make one scene, write ``out/scene.json``, render its views from that file."""
    from blendtruth.multiview import render_model

    scene = make_scene(pool, options, record)  # before any output: a bad model leaves no folder
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    write_scene_file(out / "scene.json", scene)
    saved = read_scene_file(out / "scene.json")
    written = render_model(scene_spec(saved, template), plan, settings, out)
    return [out / "scene.json", *written]


def scene_seed(seed: int, index: int) -> int:
    """Seed of scene ``index`` of a K-scene dataset made with ``seed``."""
    return int(hashlib.sha256(f"{seed}:scene{index}".encode()).hexdigest()[:8], 16) % 2**31
