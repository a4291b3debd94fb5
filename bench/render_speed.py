"""Seconds per view: the tutorial's way vs blendtruth in a warm process.

(a) tutorial: a fresh Python process per view that imports bpy, loads the factory scene
    and renders it (RGB + passes, 64 samples) - what the tutorial's script does per image;
(b) blendtruth warm process, ground truth only (--no-rgb);
(c) blendtruth warm process, ground truth + RGB at 64 samples.
Run: python bench/render_speed.py [--repeats N]
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

TUTORIAL_SCRIPT = """
import sys, bpy
w, h, out = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
bpy.ops.wm.read_factory_settings(use_empty=False)
s = bpy.context.scene
s.render.engine = "CYCLES"
s.cycles.samples = 64
s.cycles.use_denoising = False
s.render.resolution_x, s.render.resolution_y, s.render.resolution_percentage = w, h, 100
s.view_layers[0].use_pass_z = True
s.view_layers[0].use_pass_normal = True
s.render.filepath = out
bpy.ops.render.render(write_still=True)
"""


def tutorial_seconds(width: int, height: int, repeats: int) -> float:
    times = []
    with tempfile.TemporaryDirectory() as tmp:
        script = Path(tmp) / "tutorial.py"
        script.write_text(TUTORIAL_SCRIPT)
        for i in range(repeats):
            start = time.perf_counter()
            subprocess.run(
                [sys.executable, str(script), str(width), str(height), f"{tmp}/rgb{i}.png"],
                check=True,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
            times.append(time.perf_counter() - start)
    return statistics.median(times)


def warm_seconds(width: int, height: int, repeats: int, rgb: bool) -> float:
    import blendtruth

    blendtruth.render_view(width=width, height=height, rgb=rgb, samples=64)  # warm up
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        blendtruth.render_view(width=width, height=height, rgb=rgb, samples=64)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    print(
        f"{'size':>8} {'tutorial s/view':>16} {'GT only s/view':>15} {'GT+RGB64 s/view':>16}"
        f" {'tutorial/GT':>12} {'tutorial/GT+RGB':>16}"
    )
    for size in (256, 512):
        a = tutorial_seconds(size, size, args.repeats)
        b = warm_seconds(size, size, args.repeats, rgb=False)
        c = warm_seconds(size, size, args.repeats, rgb=True)
        print(f"{size:>5}^2 {a:>16.3f} {b:>15.3f} {c:>16.3f} {a / b:>12.1f}x {a / c:>15.2f}x")


if __name__ == "__main__":
    main()
