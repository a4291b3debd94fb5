"""Scenes as dataset jobs: scene k of a K-scene dataset is made from the pool with its
own seed, settled, saved as ``scene.json`` and rendered into ``out/scenes/NNNN``, through
the same runner as models (manifest, shards, resume, workers or Ray, limits)."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from blendtruth.dataset.sources import in_shard
from blendtruth.multiview import ViewPlan
from blendtruth.scene import SceneSpec
from blendtruth.scenes.multiscene import render_scene, scene_seed
from blendtruth.scenes.placement import LayoutOptions
from blendtruth.settings import RenderSettings


@dataclass(frozen=True)
class SceneJob:
    """Make scene ``index`` from ``pool`` and render it into ``out/scenes/NNNN``.
    ``options`` and ``settings`` carry the run's seed; the scene's own seed is
    :func:`scene_seed` of it, so a scene does not depend on workers, shards or order."""

    group = "scenes"
    index: int
    pool: tuple[Path, ...]
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
        return self.out / self.group / self.mid

    def tmp_dir(self, tag: str) -> Path:
        return self.out / self.group / f".{self.mid}.tmp-{tag}"

    def record(self) -> dict[str, Any]:
        return {"source": self.source, "seed": self.seed}

    def render_into(self, folder: Path) -> None:
        seed = self.seed
        render_scene(
            list(self.pool),
            dataclasses.replace(self.options, seed=seed),
            self.template,
            self.plan,
            dataclasses.replace(self.settings, seed=seed),
            folder,
        )


def plan_scene_jobs(
    pool: list[Path],
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
        job = SceneJob(k, tuple(pool), options, template, plan, settings, Path(out))
        if in_shard(job.mid, shard):
            jobs.append(job)
    return jobs
