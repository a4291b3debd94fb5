"""Dataset throughput: views/s for three ways of rendering the same models and cameras.

(a) the tutorial's way: one fresh Python+Blender process per view;
(b) `blendtruth dataset --workers 1`: one long-lived worker, Cycles on all cores;
(c) `blendtruth dataset --workers 2 --threads 1`: two workers, one render thread each.
Each with ground truth only and with RGB. Prints views/s, the ratios (b)/(a) and (c)/(b),
and CPU utilisation (CPU seconds of all processes / (wall seconds x cores)).
(a) is timed on the first --fresh-models models (it is slow) and reported per view.
Run: python bench/dataset_throughput.py [--models 20] [--views 8] [--size 256]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

MESHES = Path(__file__).resolve().parents[2] / "shared" / "meshes"
CLI = [sys.executable, "-m", "blendtruth.cli"]


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def _timed(cmds: list[list[str]]) -> tuple[float, float]:
    """Run commands one after another; (wall seconds, CPU utilisation)."""
    cpu0, t0 = _children_cpu(), time.perf_counter()
    for cmd in cmds:
        subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    wall = time.perf_counter() - t0
    return wall, (_children_cpu() - cpu0) / (wall * (os.cpu_count() or 1))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", type=int, default=20)
    parser.add_argument("--views", type=int, default=8)
    parser.add_argument("--size", type=int, default=256)
    parser.add_argument("--samples", type=int, default=32)
    parser.add_argument("--fresh-models", type=int, default=3)
    args = parser.parse_args()
    pool = sorted(
        p for p in MESHES.iterdir() if p.suffix.lower() in (".obj", ".ply", ".stl", ".glb")
    )
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        src = tmp / "src"
        src.mkdir()
        for i in range(args.models):  # distinct files (and ids) even when the pool repeats
            model = pool[i % len(pool)]
            shutil.copy(model, src / f"{i:03d}_{model.name}")
            if model.suffix == ".obj" and (MESHES / f"{model.name}.mtl").exists():
                shutil.copy(MESHES / f"{model.name}.mtl", src / f"{model.name}.mtl")
        common = ["--views", str(args.views), "--width", str(args.size), "--height",
                  str(args.size), "--samples", str(args.samples), "--no-progress"]  # fmt: skip
        print(
            f"{args.models} models x {args.views} views at {args.size}^2, RGB "
            f"{args.samples} samples, {os.cpu_count()} cores"
        )
        print(f"{'mode':<8} {'way':<28} {'views/s':>8} {'CPU %':>6}")
        for mode, extra in (("GT", ["--no-rgb"]), ("GT+RGB", [])):
            rates = {}
            # (b) and (c): the dataset runner.
            for key, flags in (("b", ["--workers", "1"]),
                               ("c", ["--workers", "2", "--threads", "1"])):  # fmt: skip
                out = tmp / f"out_{mode}_{key}"
                wall, cpu = _timed([CLI + ["dataset", str(src), "--out", str(out),
                                           *common, *extra, *flags]])  # fmt: skip
                views = json.loads((out / "summary.json").read_text())["views"]
                rates[key] = views / wall
                label = {"b": "1 worker, all cores", "c": "2 workers x 1 thread"}[key]
                print(f"{mode:<8} {label:<28} {rates[key]:>8.2f} {100 * cpu:>6.0f}", flush=True)
            # (a): one fresh process per view, rendering the same cameras.
            cmds = []
            for model_dir in sorted((tmp / f"out_{mode}_b" / "models").iterdir())[
                : args.fresh_models
            ]:
                cams = json.loads((model_dir / "cameras.json").read_text())
                src_file = next(p for p in src.iterdir() if model_dir.name.startswith(p.name))
                for k, frame in enumerate(cams["frames"]):
                    one = tmp / f"cam_{model_dir.name}_{k}.json"
                    one.write_text(json.dumps({**cams, "frames": [frame]}))
                    cmds.append(CLI + ["render", str(src_file), "--out", str(tmp / "fresh"),
                                       "--cameras", str(one), "--samples", str(args.samples),
                                       *extra])  # fmt: skip
            wall, cpu = _timed(cmds)
            rates["a"] = len(cmds) / wall
            print(f"{mode:<8} {'fresh process per view':<28} {rates['a']:>8.2f} {100 * cpu:>6.0f}")
            print(
                f"{mode:<8} (b)/(a) = {rates['b'] / rates['a']:.2f}   "
                f"(c)/(b) = {rates['c'] / rates['b']:.2f}",
                flush=True,
            )


if __name__ == "__main__":
    main()
