"""`--passes all` before and after albedo became a ray-cast pass, in one run.

Before, `albedo` needed Cycles, so `--passes all` made every pass with Cycles whatever
`--truth` said; `--truth cycles` is that route today (the same renders, the same files).
After, a scene whose materials the ray caster expresses is ray-cast. Both are timed
as the whole process, `blendtruth render MODEL --passes all --no-rgb` (interleaved rounds,
median wall time; each run's meta is checked to name its backend), and per view in one
process after a warm-up view (`render_view` on cameras around the model; the median of
the rounds' mean ms/view).

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


def per_view(model: Path, views: int, width: int, rounds: int) -> dict[str, float]:
    """Median over ``rounds`` of the mean ms per `render_view(passes="all")` of ``views``
    cameras on a circle around the model, after one warm-up view, per backend."""
    import blendtruth
    from blendtruth import Camera, Intrinsics
    from blendtruth.geometry.frames import look_at
    from blendtruth.scene import SceneSpec

    spec = SceneSpec(models=(model,), light="ambient")
    cameras = []
    for k in range(views):
        a = 2 * np.pi * k / views
        eye = np.array([2.6 * np.cos(a), 2.6 * np.sin(a), 1.2])
        cameras.append(Camera(Intrinsics.from_fov(50, width, width), look_at(eye, np.zeros(3))))
    times: dict[str, list[float]] = {"cycles": [], "raycast": []}
    for r in range(rounds + 1):
        for truth in ("cycles", "raycast"):
            start = time.perf_counter()
            for cam in cameras if r else cameras[:1]:
                view = blendtruth.render_view(cam, scene=spec, width=width, height=width,
                                              rgb=False, truth=truth, passes="all")  # fmt: skip
                assert view.meta["ground_truth"]["backend"] == truth
            if r:
                times[truth].append(1000 * (time.perf_counter() - start) / views)
    return {k: statistics.median(v) for k, v in times.items()}


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
    ms = per_view(args.model, args.views, args.width, args.rounds)
    print(
        f"per view in one process: before {ms['cycles']:.1f} ms, after {ms['raycast']:.1f} ms, "
        f"ratio {ms['cycles'] / ms['raycast']:.2f}"
    )


if __name__ == "__main__":
    main()
