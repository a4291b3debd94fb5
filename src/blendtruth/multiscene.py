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
from collections.abc import Callable
from pathlib import Path

from blendtruth.models import check_model_file, default_up
from blendtruth.placement import (
    Ground,
    LayoutOptions,
    SceneFile,
    default_ground_size,
    initial_layout,
    read_scene_file,
    write_scene_file,
)
from blendtruth.scene import SceneSpec


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

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    write_scene_file(out / "scene.json", make_scene(pool, options))
    saved = read_scene_file(out / "scene.json")
    written = render_model(scene_spec(saved, template), plan, settings, out)
    return [out / "scene.json", *written]


def scene_seed(seed: int, index: int) -> int:
    """Seed of scene ``index`` of a K-scene dataset made with ``seed``."""
    return int(hashlib.sha256(f"{seed}:scene{index}".encode()).hexdigest()[:8], 16) % 2**31


def render_scenes(
    pool: list[Path],
    count: int,
    options: LayoutOptions,
    template: SceneSpec,
    plan,
    settings,
    out: Path,
    on_scene: Callable[[int, int, bool], None] | None = None,
) -> list[Path]:
    """K scenes into ``out/scenes/NNNN/``, scene k seeded with :func:`scene_seed`. Each is
    made in a dot-folder and renamed into place when complete; finished folders are
    kept, so re-running resumes."""
    root = Path(out) / "scenes"
    root.mkdir(parents=True, exist_ok=True)
    done = []
    for k in range(count):
        final = root / f"{k:04d}"
        if (final / "scene.json").is_file():
            done.append(final)
            if on_scene:
                on_scene(k + 1, count, True)
            continue
        tmp = root / f".{k:04d}.tmp-{os.getpid()}"
        shutil.rmtree(tmp, ignore_errors=True)
        seed = scene_seed(options.seed, k)
        render_scene(
            pool,
            dataclasses.replace(options, seed=seed),
            template,
            plan,
            dataclasses.replace(settings, seed=seed),
            tmp,
        )
        shutil.rmtree(final, ignore_errors=True)
        os.rename(tmp, final)
        done.append(final)
        if on_scene:
            on_scene(k + 1, count, False)
    return done
