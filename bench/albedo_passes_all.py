"""`--passes all` before and after albedo became a ray-cast pass, in one run.

Before, `albedo` needed Cycles, so `--passes all` made every pass with Cycles whatever
`--truth` said; `--truth cycles` is that route today (the same renders, the same files).
After, a scene whose materials the ray caster expresses is ray-cast. Both are the whole
process, `blendtruth render MODEL --passes all --no-rgb`, interleaved rounds, median
wall time; the ray-cast run's meta is checked to say raycast.

Run: python bench/albedo_passes_all.py [--model ../shared/meshes/BoxTextured.glb]
     [--views 8] [--width 256] [--rounds 3]
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
MESHES = HERE.parents[1] / "shared" / "meshes"
CLI = [sys.executable, "-m", "blendtruth.cli"]


def run(model: Path, truth: str, views: int, width: int, out: Path) -> float:
    """Seconds for one whole `render --passes all` process with ``--truth truth``."""
    cmd = [*CLI, "render", str(model), "--passes", "all", "--no-rgb", "--truth", truth,
           "--views", str(views), "--width", str(width), "--height", str(width),
           "--out", str(out)]  # fmt: skip
    start = time.perf_counter()
    subprocess.run(cmd, check=True, capture_output=True)
    return time.perf_counter() - start


def backend_of(out: Path) -> str:
    """The ground-truth backend named in the first view's meta."""
    view = next(iter(sorted(out.rglob("*.npz"))))
    with np.load(view, allow_pickle=False) as data:
        meta = json.loads(str(data["meta"]))
    return meta["ground_truth"]["backend"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", type=Path, default=MESHES / "BoxTextured.glb")
    parser.add_argument("--views", type=int, default=8)
    parser.add_argument("--width", type=int, default=256)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    times: dict[str, list[float]] = {"cycles": [], "raycast": []}
    with tempfile.TemporaryDirectory() as tmp:
        for r in range(args.rounds):
            for truth in ("cycles", "raycast"):
                out = Path(tmp) / f"{truth}{r}"
                times[truth].append(run(args.model, truth, args.views, args.width, out))
                assert backend_of(out) == truth, (truth, backend_of(out))
    before, after = statistics.median(times["cycles"]), statistics.median(times["raycast"])
    print(f"model {args.model.name}, {args.views} views at {args.width}^2, --passes all --no-rgb")
    print(f"before (all ground truth from Cycles): {before:.2f} s  rounds {times['cycles']}")
    print(f"after (ray-cast, albedo included):     {after:.2f} s  rounds {times['raycast']}")
    print(f"ratio before / after: {before / after:.2f}")


if __name__ == "__main__":
    main()
