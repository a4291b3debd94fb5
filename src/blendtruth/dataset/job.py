"""One model of a dataset: what to render and how, run inside a worker process."""

from __future__ import annotations

import os
import shutil
import time
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from blendtruth.dataset.disk import disk_full, is_disk_full
from blendtruth.layout import DatasetLayout, RenderLayout
from blendtruth.multiview import ViewPlan
from blendtruth.scene import SceneSpec
from blendtruth.settings import RenderSettings


@dataclass(frozen=True)
class ModelJob:
    """Render ``scene`` (one model) with ``plan`` into ``out/models/<mid>``."""

    group = "models"  # the dataset folder's sub-folder of finished items
    mid: str
    source: Path
    out: Path
    scene: SceneSpec
    plan: ViewPlan
    settings: RenderSettings

    @property
    def final_dir(self) -> Path:
        return DatasetLayout(self.out).item(self.group, self.mid).root

    @property
    def label(self) -> str:
        """How failure lines name the model: its source file."""
        return str(self.source)

    def tmp_dir(self, tag: str) -> Path:
        return DatasetLayout(self.out).tmp_item(self.group, self.mid, tag)

    def record(self) -> dict[str, Any]:
        """What the manifest says of this job besides its outcome."""
        return {"source": str(self.source)}

    def render_into(self, folder: Path) -> None:
        from blendtruth.multiview import render_model

        render_model(self.scene, self.plan, self.settings, folder)


def run_job(job: ModelJob) -> dict[str, Any]:
    """Render ``job`` (a :class:`ModelJob` or a scene job: anything with ``render_into``,
    ``tmp_dir`` and ``final_dir``) into a temporary folder, then rename it into place.
    Returns the number of views, the files (relative to the final folder), seconds and
    any warnings."""
    start = time.perf_counter()
    tmp = job.tmp_dir(str(os.getpid()))
    shutil.rmtree(tmp, ignore_errors=True)
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            job.render_into(tmp)
        files = sorted(str(p.relative_to(tmp)) for p in tmp.rglob("*") if p.is_file())
        if job.final_dir.exists():  # an earlier run renamed it but died before recording it
            shutil.rmtree(job.final_dir)
        os.rename(tmp, job.final_dir)
        _fsync_dir(job.final_dir.parent)
    except BaseException as exc:
        shutil.rmtree(tmp, ignore_errors=True)  # no temp folder outlives a failed model
        if is_disk_full(exc):
            raise disk_full(exc, tmp) from None
        raise
    return {
        "views": sum(1 for f in files if RenderLayout.counts_as_view(f)),
        "files": files,
        "seconds": round(time.perf_counter() - start, 3),
        "warnings": [str(w.message) for w in caught],
    }


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
