"""Resident memory of one long-lived Blender process rendering model after model.

Loads the shared test meshes in turn (each load resets the scene), renders 2 ground-truth
views of each at 64 px, and prints the process's RSS after 30 and after N models, and
their ratio (target: within 10%).
Run: python bench/worker_memory.py [--models 300]
"""

from __future__ import annotations

import argparse
import itertools
import tempfile
from pathlib import Path

from blendtruth.multiview import ViewPlan, render_model
from blendtruth.scene import SceneSpec
from blendtruth.settings import RenderSettings

MESHES = Path(__file__).resolve().parents[2] / "shared" / "meshes"


def rss_mib() -> float:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    raise RuntimeError("no VmRSS")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", type=int, default=300)
    args = parser.parse_args()
    models = sorted(p for p in MESHES.iterdir() if p.suffix.lower() in
                    (".obj", ".ply", ".stl", ".glb"))  # fmt: skip
    settings = RenderSettings(width=64, height=64, rgb=False)
    marks = {}
    with tempfile.TemporaryDirectory() as tmp:
        for i, path in enumerate(itertools.islice(itertools.cycle(models), args.models), 1):
            render_model(SceneSpec(models=(path,)), ViewPlan(views=2), settings, Path(tmp) / "m")
            if i in (1, 30, args.models) or i % 50 == 0:
                marks[i] = rss_mib()
                print(f"after {i:4d} models: RSS {marks[i]:7.1f} MiB", flush=True)
    print(f"RSS after {args.models} / after 30: {marks[args.models] / marks[30]:.3f}")


if __name__ == "__main__":
    main()
