"""Accuracy and speed of normals from depth: the tutorial's Sobel vs the pinhole method.

Analytic sphere and plane tilted 30°, 512x512, fx != fy, off-centre principal point;
depth as float32, as a render gives it. Prints, per scene and method, mean / median / p95
angular error in degrees against the analytic normal (over the pixels the method marks
valid) and milliseconds per call (median of repeats).

Run: python bench/normals_accuracy.py   (results: docs/normals_accuracy.md)
"""

from __future__ import annotations

import statistics
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
from blendtruth.geometry.camera import Intrinsics  # noqa: E402
from blendtruth.geometry.normals import normals_from_depth  # noqa: E402

from analytic import ray_plane, ray_sphere  # noqa: E402

CAM = Intrinsics(fx=600.0, fy=560.0, cx=270.4, cy=244.9, width=512, height=512)
TILT = np.radians(30.0)


def _angles(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Angles in degrees between rows of N×3 ``a`` and ``b`` (atan2: exact near 0)."""
    a, b = a.astype(np.float64), b.astype(np.float64)
    return np.degrees(np.arctan2(np.linalg.norm(np.cross(a, b), axis=-1), np.sum(a * b, -1)))


def main(repeats: int = 7) -> None:
    scenes = {
        "sphere": ray_sphere(CAM, (0.1, -0.05, 3.0), 0.9),
        "plane 30°": ray_plane(CAM, (0.0, 0.0, 2.5), (0.0, np.sin(TILT), -np.cos(TILT))),
    }
    print("| scene | method | valid px | mean ° | median ° | p95 ° | ms/call |")
    print("|---|---|---:|---:|---:|---:|---:|")
    for name, (depth, truth, _) in scenes.items():
        depth = depth.astype(np.float32)
        for method in ("sobel", "pinhole"):
            times = []
            for _ in range(repeats):
                start = time.perf_counter()
                normal, valid = normals_from_depth(depth, CAM, method)
                times.append(time.perf_counter() - start)
            err = _angles(normal[valid], truth[valid])
            label = "sobel (tutorial)" if method == "sobel" else method
            print(
                f"| {name} | {label} | {valid.sum()} | {err.mean():.3f} | {np.median(err):.4f} "
                f"| {np.quantile(err, 0.95):.3f} | {1000 * statistics.median(times):.1f} |"
            )


if __name__ == "__main__":
    main()
