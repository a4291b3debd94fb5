"""Run a dataset: sources -> shard -> skip done -> executor -> manifest, index, summary."""

from __future__ import annotations

import dataclasses
import json
import os
import shutil
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from blendtruth.dataset.job import ModelJob
from blendtruth.dataset.manifest import Manifest, manifest_name, read_records
from blendtruth.dataset.sources import expand_sources, in_shard, model_id, model_seed
from blendtruth.multiview import ViewPlan
from blendtruth.output import prepare_out_dir
from blendtruth.scene import SceneSpec
from blendtruth.settings import RenderSettings
from blendtruth.writers.atomic import write_bytes


@dataclass(frozen=True)
class DatasetOptions:
    """How to run: ``workers`` local processes (or Ray at ``address``), one shard of
    ``shard = (i, N)``, ``retries`` extra attempts for crashes/timeouts/errors (not for
    bad input files), a per-model ``timeout`` in seconds."""

    workers: int = 1
    shard: tuple[int, int] = (0, 1)
    retries: int = 1
    timeout: float | None = 600.0
    executor: str = "local"
    address: str | None = None
    recycle_after: int = 200
    progress: bool = True


def plan_jobs(
    sources,
    out: Path,
    scene: SceneSpec,
    plan: ViewPlan,
    settings: RenderSettings,
    shard: tuple[int, int],
) -> list[ModelJob]:
    """Every model of this shard as a job: ``scene`` is a template (normalisation, light,
    material) that gets the job's model; each job has its own deterministic seed."""
    jobs = []
    for path in expand_sources(sources):
        mid = model_id(path)
        if not in_shard(mid, shard):
            continue
        jobs.append(
            ModelJob(
                mid=mid,
                source=path,
                out=Path(out),
                scene=dataclasses.replace(scene, models=(path,)),
                plan=plan,
                settings=dataclasses.replace(settings, seed=model_seed(settings.seed, mid)),
            )
        )
    return jobs


def run_dataset(
    sources,
    out: Path,
    scene: SceneSpec,
    plan: ViewPlan,
    settings: RenderSettings,
    options: DatasetOptions,
) -> dict[str, Any]:
    """Render every model not yet done; return the summary (also written to
    ``summary.json``; ``index.json`` lists every finished model of all shards)."""
    out = Path(out)
    jobs = plan_jobs(sources, out, scene, plan, settings, options.shard)  # checks sources
    prepare_out_dir(out)
    (out / "models").mkdir(exist_ok=True)
    records = read_records(out)
    todo = [j for j in jobs if not _is_done(records.get(j.mid), j)]
    _remove_stale_tmp(out, {j.mid for j in jobs})
    manifest = Manifest(out / manifest_name(options.shard))
    manifest.path.touch()  # a shard that got no models still leaves its (empty) record
    stats = {"done": 0, "failed": 0, "views": 0, "failures": []}
    start = time.perf_counter()

    with _Progress(len(todo), options.progress) as bar:

        def on_result(job: ModelJob, outcome: dict[str, Any]):
            attempt = outcome["attempt"]
            if not outcome["ok"] and outcome.get("retryable") and attempt < options.retries:
                return [(job, attempt + 1)]
            record = {
                "id": job.mid,
                "source": str(job.source),
                "attempts": attempt + 1,
                "time": time.time(),
            }
            if outcome["ok"]:
                record.update(
                    status="done",
                    views=outcome["views"],
                    files=outcome["files"],
                    seconds=outcome["seconds"],
                    warnings=outcome["warnings"],
                )
                stats["done"] += 1
                stats["views"] += outcome["views"]
            else:
                record.update(status="failed", reason=outcome["reason"])
                stats["failed"] += 1
                stats["failures"].append(
                    {"id": job.mid, "source": str(job.source), "reason": outcome["reason"]}
                )
            manifest.append(record)
            bar.advance(stats, time.perf_counter() - start)
            return []

        executor = _executor(options, settings, out / "logs")
        executor.run([(j, 0) for j in todo], on_result)

    seconds = time.perf_counter() - start
    summary = {
        "models_total": len(jobs),
        "skipped_already_done": len(jobs) - len(todo),
        "models_done": stats["done"],
        "models_failed": stats["failed"],
        "views": stats["views"],
        "seconds": round(seconds, 3),
        "models_per_second": round(stats["done"] / seconds, 4) if seconds else None,
        "views_per_second": round(stats["views"] / seconds, 4) if seconds else None,
        "failures": stats["failures"],
        "shard": list(options.shard),
        "executor": options.executor,
        "workers": options.workers,
    }
    write_bytes(
        out
        / (
            "summary.json"
            if options.shard[1] == 1
            else f"summary.shard-{options.shard[0]}-of-{options.shard[1]}.json"
        ),
        (json.dumps(summary, indent=2) + "\n").encode(),
    )
    write_index(out)
    return summary


def write_index(out: Path) -> None:
    """``index.json``: every model finished by any shard, with its views."""
    models = []
    for mid, rec in sorted(read_records(out).items()):
        if rec.get("status") == "done" and (out / "models" / mid).is_dir():
            views = sorted(f for f in rec["files"] if f.startswith("views/"))
            models.append(
                {
                    "id": mid,
                    "source": rec["source"],
                    "folder": f"models/{mid}",
                    "views": [f"models/{mid}/{v}" for v in views],
                }
            )
    write_bytes(out / "index.json", (json.dumps({"models": models}, indent=2) + "\n").encode())


def _is_done(record: dict | None, job: ModelJob) -> bool:
    return bool(record) and record.get("status") == "done" and job.final_dir.is_dir()


def _remove_stale_tmp(out: Path, mids: set[str]) -> None:
    # Only this shard's models: another shard may be writing its own right now.
    for path in (out / "models").glob(".*.tmp-*"):
        if path.name[1:].split(".tmp-")[0] in mids:
            shutil.rmtree(path, ignore_errors=True)


def _executor(options: DatasetOptions, settings: RenderSettings, log_dir: Path):
    if options.executor == "ray":
        from blendtruth.dataset.ray_executor import RayExecutor

        return RayExecutor(
            options.address, options.timeout, cpus_per_model=max(1, settings.threads)
        )
    from blendtruth.dataset.local import LocalExecutor

    log_dir.mkdir(exist_ok=True)
    gpus = nvidia_gpus() if settings.device != "cpu" else []
    return LocalExecutor(
        options.workers, options.timeout, options.recycle_after, log_dir, gpus=gpus
    )


class _Progress:
    """A live bar: models done/total, views/s, failures, ETA (rich); silent when off."""

    def __init__(self, total: int, enabled: bool) -> None:
        self.total, self.enabled, self._bar = total, enabled, None

    def __enter__(self) -> _Progress:
        if self.enabled:
            from rich.progress import BarColumn, Progress, TextColumn, TimeRemainingColumn

            self._bar = Progress(
                TextColumn("models"),
                BarColumn(),
                TextColumn("{task.completed}/{task.total}"),
                TextColumn("{task.fields[rate]}"),
                TextColumn("{task.fields[failed]}"),
                TimeRemainingColumn(),
            )
            self._bar.start()
            self._task = self._bar.add_task("", total=self.total, rate="", failed="")
        return self

    def advance(self, stats: dict, seconds: float) -> None:
        if self._bar is None:
            return
        n = stats["done"] + stats["failed"]
        rate = f"{stats['done'] / seconds:.2f} models/s {stats['views'] / seconds:.1f} views/s"
        self._bar.update(self._task, completed=n, rate=rate, failed=f"{stats['failed']} failed")

    def __exit__(self, *exc) -> None:
        if self._bar is not None:
            self._bar.stop()


def default_workers(device: str = "auto", rgb: bool = True) -> int:
    """One worker per NVIDIA GPU when there are GPUs (and the device allows them). On CPUs
    (measured, docs/performance.md): ground truth only, one per core, since a second
    worker overlaps I/O with rendering; with RGB, shading dominates and Cycles already uses
    every core, so one per 8 cores."""
    gpus = nvidia_gpus() if device != "cpu" else []
    if gpus:
        return len(gpus)
    cores = os.cpu_count() or 1
    return max(1, cores // 8) if rgb else cores


def nvidia_gpus() -> list[str]:
    """CUDA device ids from ``nvidia-smi -L`` (empty without NVIDIA GPUs)."""
    if os.environ.get("CUDA_VISIBLE_DEVICES") == "":
        return []
    try:
        listing = subprocess.run(
            ["nvidia-smi", "-L"], capture_output=True, text=True, timeout=20, check=True
        ).stdout
    except (OSError, subprocess.SubprocessError):
        return []
    return [str(i) for i, line in enumerate(listing.splitlines()) if line.startswith("GPU ")]
