"""Run a dataset: sources -> shard -> skip done -> executor -> manifest, index, summary."""

from __future__ import annotations

import dataclasses
import json
import os
import shutil
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from blendtruth.dataset.disk import DiskFull, disk_full, is_disk_full
from blendtruth.dataset.job import ModelJob
from blendtruth.dataset.lock import OutLock
from blendtruth.dataset.manifest import Manifest, manifest_name, read_records
from blendtruth.dataset.sources import expand_sources, in_shard, model_id, model_seed
from blendtruth.errors import BlendtruthError
from blendtruth.layout import DatasetLayout, RenderLayout, item_order
from blendtruth.multiview import ViewPlan
from blendtruth.runtime.interrupts import Stopped, stop_on_signals
from blendtruth.scene import SceneSpec
from blendtruth.scenes.placement import LayoutOptions
from blendtruth.settings import RenderSettings
from blendtruth.writers.atomic import prepare_out_dir, write_bytes


@dataclass(frozen=True)
class DatasetOptions:
    """How to run: ``workers`` local processes (or Ray at ``address``), one shard of
    ``shard = (i, N)``, ``retries`` extra attempts after a worker crash or an unexpected
    error (not after a timeout, the memory limit or a bad input file: they fail the same
    way again), a per-model ``timeout`` in seconds."""

    workers: int = 1
    shard: tuple[int, int] = (0, 1)
    retries: int = 1
    timeout: float | None = 600.0
    executor: str = "local"
    address: str | None = None
    recycle_after: int = 200
    progress: bool = True
    max_memory: int | None = None  # bytes per worker / Ray task; None: no limit
    run: Callable | None = None  # replaces run_job in local workers (fault tests)
    # Makes each local worker's backend (picklable: a class or module-level function, e.g.
    # blendtruth.testing.FakeBackend); None: Blender's.
    backend: Callable | None = None


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
    # Not our outputs: the models folder is skipped.
    for path in expand_sources(sources, exclude=DatasetLayout(out).group_dir("models")):
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
    return run_jobs(out, jobs, "models", settings, options)


def run_scene_dataset(
    pool,
    count: int,
    layout: LayoutOptions,
    out: Path,
    template: SceneSpec,
    plan: ViewPlan,
    settings: RenderSettings,
    options: DatasetOptions,
) -> dict[str, Any]:
    """Make and render scenes 0..count-1 of this shard into ``out/scenes/NNNN`` (see
    :mod:`blendtruth.dataset.scene_job`); the same summary, manifest and index as models."""
    from blendtruth.dataset.scene_job import plan_scene_jobs, write_pool

    out = Path(out)
    if isinstance(count, bool) or not isinstance(count, int) or count < 1:
        raise BlendtruthError(f"--scenes must be a whole number >= 1, got {count!r}")
    # Not our mesh.ply files: the scenes folder is skipped.
    models = expand_sources(pool, exclude=DatasetLayout(out).group_dir("scenes"))
    prepare_out_dir(out)
    shared = write_pool(out, models)
    jobs = plan_scene_jobs(shared, count, layout, out, template, plan, settings, options.shard)
    return run_jobs(out, jobs, "scenes", settings, options)


def run_jobs(
    out: Path, jobs: list, group: str, settings: RenderSettings, options: DatasetOptions
) -> dict[str, Any]:
    """Run ``jobs`` (:class:`ModelJob` or scene jobs) whose folders go to ``out/group``."""
    prepare_out_dir(out)
    with OutLock(out, options.shard):
        return _run_locked(out, jobs, group, settings, options)


def _run_locked(
    out: Path, jobs: list, group: str, settings: RenderSettings, options: DatasetOptions
) -> dict[str, Any]:
    (out / group).mkdir(exist_ok=True)
    records = read_records(out, warn=True)
    todo = [j for j in jobs if not _is_done(records.get(j.mid), j)]
    mids = {j.mid for j in jobs}
    _remove_stale_tmp(out / group, mids)
    manifest = Manifest(out / manifest_name(options.shard))
    manifest.path.touch()  # a shard that got no models still leaves its (empty) record
    stats = {"done": 0, "failed": 0, "views": 0, "failures": []}
    start = time.perf_counter()
    stop: BaseException | None = None

    def on_result(job: ModelJob, outcome: dict[str, Any]):
        if outcome.get("disk_full"):  # stop the run; the model is not failed
            raise DiskFull(outcome["reason"])
        attempt = outcome["attempt"]
        if not outcome["ok"] and outcome.get("retryable") and attempt < options.retries:
            return [(job, attempt + 1)]
        record = {
            "id": job.mid,
            **job.record(),
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
        else:
            reason = _naming_model(outcome["reason"], job)
            record.update(status="failed", reason=reason)
        manifest.append(record)
        if outcome["ok"]:
            stats["done"] += 1
            stats["views"] += outcome["views"]
        else:
            stats["failed"] += 1
            stats["failures"].append({"id": job.mid, "source": str(job.source), "reason": reason})
        bar.advance(stats, time.perf_counter() - start)
        return []

    try:
        with _Progress(len(todo), options.progress) as bar:
            with stop_on_signals(f"stopping {_workers_text(options, len(todo))} now"):
                executor = _executor(options, settings, out / "logs")
                executor.run([(j, 0) for j in todo], on_result)
    except BaseException as exc:  # noqa: BLE001 - the summary is written whatever stopped us
        stop = exc
    finally:
        # The executor has stopped every worker: no temp folder of this shard is in use.
        _remove_stale_tmp(out / group, mids)

    seconds = time.perf_counter() - start
    summary = {
        "kind": group,
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
        "stopped": None if stop is None else _stop_reason(stop),
    }
    name = (
        DatasetLayout(out).summary_json.name
        if options.shard[1] == 1
        else f"summary.shard-{options.shard[0]}-of-{options.shard[1]}.json"
    )
    try:
        write_bytes(out / name, (json.dumps(summary, indent=2) + "\n").encode())
        write_index(out)
    except OSError as exc:
        if stop is None and not is_disk_full(exc):
            raise
        if stop is None:
            stop = disk_full(exc, out / name)
        # else: the error that stopped the run is the one to report
    if isinstance(stop, DiskFull):
        done = stats["done"] + len(jobs) - len(todo)
        raise DiskFull(
            f"disk full: {stop}; stopped with {done} of {len(jobs)} models done "
            "(nothing was marked failed); free space and re-run the same command"
        ) from None
    if stop is not None:
        stop.summary = summary  # the CLI prints what was finished
        raise stop
    return summary


def _naming_model(reason: str, job: ModelJob) -> str:
    """Failure lines always name the model (a timeout or a crash does not by itself)."""
    return reason if job.label in reason else f"{job.label}: {reason}"


def _workers_text(options: DatasetOptions, todo: int) -> str:
    if options.executor == "ray":
        return "the Ray tasks"
    n = min(options.workers, todo)
    return f"{n} worker{'s' if n != 1 else ''}"


def _stop_reason(stop: BaseException) -> str:
    if isinstance(stop, Stopped):
        return str(stop)
    if isinstance(stop, KeyboardInterrupt):
        return "SIGINT"
    if isinstance(stop, DiskFull):
        return str(stop)
    return f"{type(stop).__name__}: {stop}"


def write_index(out: Path) -> None:
    """``index.json``: every model (``models``) or scene (``scenes``) finished by any
    shard, with its folder and views."""
    lay = DatasetLayout(out)
    index: dict[str, list] = {"models": []}
    for mid, rec in sorted(read_records(out).items(), key=lambda kv: item_order(kv[0])):
        group = lay.group_of(mid)
        if rec.get("status") == "done" and group is not None:
            views = sorted(f for f in rec["files"] if RenderLayout.counts_as_view(f))
            entry = {"id": mid, "source": rec["source"], "folder": f"{group}/{mid}"}
            if "seed" in rec:
                entry["seed"] = rec["seed"]
            entry["views"] = [f"{group}/{mid}/{v}" for v in views]
            index.setdefault(group, []).append(entry)
    write_bytes(lay.index_json, (json.dumps(index, indent=2) + "\n").encode())


def _is_done(record: dict | None, job: ModelJob) -> bool:
    return bool(record) and record.get("status") == "done" and job.final_dir.is_dir()


def _remove_stale_tmp(folder: Path, mids: set[str]) -> None:
    # Only this shard's items: another shard may be writing its own right now. A temp
    # folder is exactly ".<id>.tmp-<digits>" (ids never start with "."), so no finished
    # folder can match.
    for path in folder.glob(".*.tmp-*"):
        mid, _, tag = path.name[1:].rpartition(".tmp-")
        if mid in mids and tag.isdigit():
            shutil.rmtree(path, ignore_errors=True)


def _executor(options: DatasetOptions, settings: RenderSettings, log_dir: Path):
    if options.executor == "ray":
        if options.backend is not None:
            raise BlendtruthError("DatasetOptions.backend: only local workers take a backend")
        from blendtruth.dataset.ray_executor import RayExecutor

        return RayExecutor(
            options.address,
            options.timeout,
            cpus_per_model=max(1, settings.threads),
            max_memory=options.max_memory,
        )
    from blendtruth.dataset.local import LocalExecutor

    log_dir.mkdir(exist_ok=True)
    gpus = nvidia_gpus() if settings.device != "cpu" else []
    return LocalExecutor(
        options.workers,
        options.timeout,
        options.recycle_after,
        log_dir,
        gpus=gpus,
        max_memory=options.max_memory,
        run=options.run,
        backend=options.backend,
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
