"""Scenes as dataset jobs: scene k of a K-scene dataset is made from the pool with its
own seed, settled, saved as ``scene.json`` and rendered into ``out/scenes/NNNN``, through
the same runner as models (manifest, shards, resume, workers or Ray, limits)."""

from __future__ import annotations

import dataclasses
import functools
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from blendtruth.dataset.sources import in_shard
from blendtruth.errors import BlendtruthError
from blendtruth.layout import DatasetLayout
from blendtruth.multiscene import pool_digest, pool_record, render_scene, scene_seed
from blendtruth.multiview import ViewPlan
from blendtruth.scene import SceneSpec
from blendtruth.scenes.placement import LayoutOptions
from blendtruth.settings import RenderSettings
from blendtruth.writers.atomic import write_bytes


@dataclass(frozen=True)
class ScenePool:
    """A K-scene run's model pool as its jobs carry it: the file that lists it (written
    once, so a job does not pickle a million paths to its worker), its digest, and what
    each scene.json says of it."""

    file: Path
    digest: str
    record: dict

    def models(self) -> list[Path]:
        return list(_read_pool(str(self.file), self.digest))


def write_pool(out: Path, models: list[Path]) -> ScenePool:
    """``out/scene_pool-<digest>.json``: the pool's paths (named by its digest, so shards
    of different pools never share one file)."""
    digest = pool_digest(models)
    file = Path(out) / f"scene_pool-{digest[:16]}.json"
    write_bytes(file, json.dumps([str(p) for p in models]).encode())
    return ScenePool(file, digest, pool_record(models))


@functools.lru_cache(maxsize=2)
def _read_pool(file: str, digest: str) -> tuple[Path, ...]:
    """The pool file's paths, read once per worker process and checked against its digest."""
    try:
        paths = tuple(Path(p) for p in json.loads(Path(file).read_text()))
    except (OSError, ValueError, TypeError) as exc:
        raise BlendtruthError(f"{file}: cannot read the scene pool ({exc})") from None
    if pool_digest(list(paths)) != digest:
        raise BlendtruthError(f"{file}: the scene pool file was changed during the run")
    return paths


@dataclass(frozen=True)
class SceneJob:
    """Make scene ``index`` from the pool and render it into ``out/scenes/NNNN``.
    ``options`` and ``settings`` carry the run's seed; the scene's own seed is
    :func:`scene_seed` of it, so a scene does not depend on workers, shards or order."""

    group = "scenes"
    index: int
    pool: ScenePool
    options: LayoutOptions
    template: SceneSpec
    plan: ViewPlan
    settings: RenderSettings
    out: Path

    @property
    def mid(self) -> str:
        return f"{self.index:04d}"

    @property
    def seed(self) -> int:
        return scene_seed(self.options.seed, self.index)

    @property
    def source(self) -> str:
        return f"scene {self.mid} (seed {self.seed})"

    @property
    def label(self) -> str:
        return f"scene {self.mid}"

    @property
    def final_dir(self) -> Path:
        return DatasetLayout(self.out).item(self.group, self.mid).root

    def tmp_dir(self, tag: str) -> Path:
        return DatasetLayout(self.out).tmp_item(self.group, self.mid, tag)

    def record(self) -> dict[str, Any]:
        return {"source": self.source, "seed": self.seed}

    def render_into(self, folder: Path) -> None:
        seed = self.seed
        render_scene(
            self.pool.models(),
            dataclasses.replace(self.options, seed=seed),
            self.template,
            self.plan,
            dataclasses.replace(self.settings, seed=seed),
            folder,
            self.pool.record,
        )


def plan_scene_jobs(
    pool: ScenePool,
    count: int,
    options: LayoutOptions,
    out: Path,
    template: SceneSpec,
    plan: ViewPlan,
    settings: RenderSettings,
    shard: tuple[int, int],
) -> list[SceneJob]:
    """Scenes 0..count-1 that fall in ``shard`` (by a hash of their id, like models)."""
    jobs = []
    for k in range(count):
        job = SceneJob(k, pool, options, template, plan, settings, Path(out))
        if in_shard(job.mid, shard):
            jobs.append(job)
    return jobs
