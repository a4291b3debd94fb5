"""Ground-truth speed: --truth raycast and --truth cycles against Open3D, in one run.

1. Same mesh, cameras and resolution (default: stanford-bunny, 24 views, 512²), ground
   truth only, interleaved rounds, median: our `render_model` (every default writer) with
   each backend, and Open3D's `RaycastingScene.cast_rays` + `np.savez` of depth, normal
   and mask on the same world triangles and pixel-centre rays. Then the whole processes:
   `blendtruth render MESH --views N --no-rgb` against a script that imports Open3D,
   loads the mesh, casts and saves.
2. Cost growth: steady-state per-view time at 1k, 10k, 100k and 1M triangles
   (height-field grids): the median interval between consecutive views of an N-view
   render, median of interleaved rounds; what a render does once (loading, extraction,
   BVH, mesh.ply, tables) is printed beside it.
3. Dataset: `blendtruth dataset` on the shared meshes (default 16 x 8 views, 256²,
   --no-rgb) against the objaverse-style baseline (bench/objaverse_style.py: a fresh
   Blender process per model, Z + Normal to EXR) run two at a time; views/s and CPU.

Run: python bench/truth_speed.py [--views 24] [--size 512] [--rounds 3] [--skip-growth]
     [--skip-dataset] [--growth 1000,10000,100000,1000000] [--growth-rounds 3]
"""

from __future__ import annotations

import argparse
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
MESHES = HERE.parents[1] / "shared" / "meshes"
CLI = [sys.executable, "-m", "blendtruth.cli"]

_O3D_SCRIPT = r"""
import sys, time, numpy as np, open3d as o3d, trimesh, json
mesh = trimesh.load(sys.argv[1], force="mesh", process=False)
cams = json.load(open(sys.argv[2]))
out = sys.argv[3]
scene = o3d.t.geometry.RaycastingScene()
scene.add_triangles(o3d.core.Tensor(mesh.vertices.astype(np.float32)),
                    o3d.core.Tensor(mesh.faces.astype(np.uint32)))
for i, c in enumerate(cams):
    K, pose, w, h = np.array(c["K"]), np.array(c["pose"]), c["w"], c["h"]
    u, v = np.meshgrid(np.arange(w) + 0.5, np.arange(h) + 0.5)
    d = np.dstack([(u - K[0, 2]) / K[0, 0], (v - K[1, 2]) / K[1, 1], np.ones_like(u)])
    d = d @ pose[:3, :3].T
    rays = np.concatenate([np.broadcast_to(pose[:3, 3], d.shape), d], -1).astype(np.float32)
    r = scene.cast_rays(o3d.core.Tensor(rays))
    t = r["t_hit"].numpy(); mask = np.isfinite(t)
    np.savez(f"{out}/{i:04d}.npz", depth=np.where(mask, t, 0).astype(np.float32),
             normal=r["primitive_normals"].numpy(), mask=mask)
"""


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def _ours(spec, plan, settings, out: Path) -> float:
    """Seconds for render_model (scene already loaded and warmed)."""
    from blendtruth.multiview import render_model

    shutil.rmtree(out, ignore_errors=True)
    start = time.perf_counter()
    render_model(spec, plan, settings, out)
    return time.perf_counter() - start


def _ours_steady(spec, plan, settings, out: Path) -> tuple[float, float]:
    """(steady-state seconds per view, seconds the render spends once): the median
    interval between consecutive views handed to the writer (whose queue is short, so a
    slow writer holds the caster back and shows in the intervals), and the whole
    render minus that per view. A difference of two renders' wall times would hide
    the cost of views cast while mesh.ply is being written."""
    from blendtruth.multiview import render_model

    shutil.rmtree(out, ignore_errors=True)
    stamps: list[float] = []
    start = time.perf_counter()
    render_model(spec, plan, settings, out, on_view=lambda i, n: stamps.append(time.perf_counter()))
    total = time.perf_counter() - start
    steady = statistics.median(np.diff(stamps))
    return steady, total - steady * len(stamps)


def _open3d_views(scene_tris: np.ndarray, cameras, out: Path) -> float:
    """Seconds for Open3D casts + np.savez of every camera (scene and BVH built once,
    untimed)."""
    import open3d as o3d

    verts = scene_tris.reshape(-1, 3).astype(np.float32)
    faces = np.arange(len(verts), dtype=np.uint32).reshape(-1, 3)
    scene = o3d.t.geometry.RaycastingScene()
    scene.add_triangles(o3d.core.Tensor(verts), o3d.core.Tensor(faces))
    # Open3D builds its BVH on the first cast; like our caster's, that is not per view.
    scene.cast_rays(o3d.core.Tensor(np.array([[0, 0, 5, 0, 0, -1]], np.float32)))
    shutil.rmtree(out, ignore_errors=True)
    out.mkdir(parents=True)
    start = time.perf_counter()
    for i, cam in enumerate(cameras):
        K, pose = cam.K, cam.cam_to_world
        u, v = np.meshgrid(np.arange(cam.width) + 0.5, np.arange(cam.height) + 0.5)
        d = np.dstack([(u - K[0, 2]) / K[0, 0], (v - K[1, 2]) / K[1, 1], np.ones_like(u)])
        d = d @ pose[:3, :3].T
        rays = np.concatenate([np.broadcast_to(pose[:3, 3], d.shape), d], -1)
        hit = scene.cast_rays(o3d.core.Tensor(rays.astype(np.float32)))
        t = hit["t_hit"].numpy()
        mask = np.isfinite(t)
        np.savez(
            out / f"{i:04d}.npz",
            depth=np.where(mask, t, 0).astype(np.float32),
            normal=hit["primitive_normals"].numpy(),
            mask=mask,
        )
    return time.perf_counter() - start


def same_cameras(mesh: Path, views: int, size: int, rounds: int, tmp: Path) -> dict:
    import dataclasses

    from blendtruth.api import backend_for
    from blendtruth.multiview import ViewPlan, plan_cameras
    from blendtruth.scene import SceneSpec
    from blendtruth.settings import RenderSettings

    spec = SceneSpec(models=(mesh,), normalize=True)
    plan = ViewPlan(views=views)
    base = RenderSettings(width=size, height=size, rgb=False)
    backend = backend_for(spec)
    cameras = plan_cameras(plan, backend.info, base, base.seed)
    tris = backend.caster(0).scene.corners
    times: dict[str, list[float]] = {"raycast": [], "cycles": [], "open3d": []}
    warm = ViewPlan(views=2)
    for truth in ("raycast", "cycles"):
        _ours(spec, warm, dataclasses.replace(base, truth=truth), tmp / "warm")
    for _ in range(rounds):
        for truth in ("raycast", "cycles"):
            s = dataclasses.replace(base, truth=truth)
            times[truth].append(_ours(spec, plan, s, tmp / truth))
        times["open3d"].append(_open3d_views(tris, cameras, tmp / "o3d"))
    per_view = {k: statistics.median(v) / views for k, v in times.items()}
    # Whole processes, interleaved.
    cams_json = tmp / "cams.json"
    import json

    cams_json.write_text(
        json.dumps(
            [
                {"K": c.K.tolist(), "pose": c.cam_to_world.tolist(), "w": c.width, "h": c.height}
                for c in cameras
            ]
        )
    )
    (tmp / "o3d_script.py").write_text(_O3D_SCRIPT)
    whole = {"blendtruth render": [], "open3d script": []}
    for _ in range(2):
        out = tmp / "whole"
        shutil.rmtree(out, ignore_errors=True)
        t0 = time.perf_counter()
        subprocess.run(
            CLI
            + [
                "render",
                str(mesh),
                "--views",
                str(views),
                "--no-rgb",
                "--width",
                str(size),
                "--height",
                str(size),
                "--out",
                str(out),
            ],
            check=True,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        whole["blendtruth render"].append(time.perf_counter() - t0)
        o3d_out = tmp / "o3d_whole"
        shutil.rmtree(o3d_out, ignore_errors=True)
        o3d_out.mkdir()
        t0 = time.perf_counter()
        subprocess.run(
            [sys.executable, str(tmp / "o3d_script.py"), str(mesh), str(cams_json), str(o3d_out)],
            check=True,
            stdout=subprocess.DEVNULL,
        )
        whole["open3d script"].append(time.perf_counter() - t0)
    return {
        "per_view_s": per_view,
        "whole_s": {k: min(v) for k, v in whole.items()},
        "triangles": len(tris),
    }


def _grid(n_tris: int, path: Path) -> None:
    """A height-field grid of about ``n_tris`` triangles, as a binary PLY."""
    import trimesh

    from cast_breakdown import grid

    trimesh.Trimesh(*grid(n_tris), process=False).export(path)


def growth(sizes: list[int], views: int, size: int, rounds: int, tmp: Path) -> list[dict]:
    """Per size: the median over ``rounds`` of each way's steady-state seconds per view
    (rounds interleaved over the sizes, so that a slow spell of this shared machine does
    not fall on one size only) and of what a render spends once."""
    import dataclasses

    from blendtruth.api import backend_for
    from blendtruth.multiview import ViewPlan, plan_cameras
    from blendtruth.scene import SceneSpec
    from blendtruth.settings import RenderSettings

    setups = []
    for n in sizes:
        path = tmp / f"grid_{n}.ply"
        _grid(n, path)
        spec = SceneSpec(models=(path,), normalize=True)
        base = RenderSettings(width=size, height=size, rgb=False)
        backend = backend_for(spec)
        cameras = plan_cameras(ViewPlan(views=views), backend.info, base, base.seed)
        tris = backend.caster(0).scene.corners
        setups.append((spec, base, cameras, tris))
    runs: list[dict[str, list[float]]] = [{} for _ in sizes]
    for _ in range(rounds):
        for (spec, base, cameras, tris), run in zip(setups, runs, strict=True):
            for truth in ("raycast", "cycles"):
                s = dataclasses.replace(base, truth=truth)
                _ours(spec, ViewPlan(views=1), s, tmp / "warm")
                steady, once = _ours_steady(spec, ViewPlan(views=views), s, tmp / truth)
                run.setdefault(truth, []).append(steady)
                run.setdefault(truth + "_once", []).append(once)
            run.setdefault("open3d", []).append(_open3d_views(tris, cameras, tmp / "o3d") / views)
    return [
        {"triangles": len(tris)} | {k: statistics.median(v) for k, v in run.items()}
        for (_, _, _, tris), run in zip(setups, runs, strict=True)
    ]


def dataset(models: int, views: int, size: int, tmp: Path) -> dict:
    pool = sorted(
        p for p in MESHES.iterdir() if p.suffix.lower() in (".obj", ".ply", ".stl", ".glb")
    )
    src = tmp / "dsrc"
    src.mkdir()
    for i in range(models):
        model = pool[i % len(pool)]
        shutil.copy(model, src / f"{i:03d}_{model.name}")
        if model.suffix == ".obj" and (model.parent / f"{model.name}.mtl").exists():
            shutil.copy(model.parent / f"{model.name}.mtl", src)
    files = sorted(p for p in src.iterdir() if p.suffix.lower() in (".obj", ".ply", ".stl", ".glb"))
    cores = os.cpu_count() or 1
    result = {}
    out = tmp / "dout"
    cpu0, t0 = _children_cpu(), time.perf_counter()
    subprocess.run(
        CLI
        + [
            "dataset",
            str(src),
            "--out",
            str(out),
            "--views",
            str(views),
            "--width",
            str(size),
            "--height",
            str(size),
            "--no-rgb",
            "--no-progress",
        ],
        check=True,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    wall = time.perf_counter() - t0
    result["blendtruth dataset"] = (
        len(files) * views / wall,
        (_children_cpu() - cpu0) / (wall * cores),
    )

    def one(path: Path) -> None:
        subprocess.run(
            [
                sys.executable,
                str(HERE / "objaverse_style.py"),
                str(path),
                str(tmp / "objv" / path.stem),
                str(views),
                str(size),
            ],
            check=True,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )

    cpu0, t0 = _children_cpu(), time.perf_counter()
    with ThreadPoolExecutor(2) as pool_:
        list(pool_.map(one, files))
    wall = time.perf_counter() - t0
    result["objaverse-style, 2 at a time"] = (
        len(files) * views / wall,
        (_children_cpu() - cpu0) / (wall * cores),
    )
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mesh", type=Path, default=MESHES / "stanford-bunny.obj")
    parser.add_argument("--views", type=int, default=24)
    parser.add_argument("--size", type=int, default=512)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--growth", default="1000,10000,100000,1000000")
    parser.add_argument("--growth-views", type=int, default=12)
    parser.add_argument("--growth-rounds", type=int, default=3)
    parser.add_argument("--dataset-models", type=int, default=16)
    parser.add_argument("--skip-growth", action="store_true")
    parser.add_argument("--skip-dataset", action="store_true")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        r = same_cameras(args.mesh, args.views, args.size, args.rounds, tmp)
        pv = r["per_view_s"]
        print(
            f"## same cameras: {args.mesh.name} ({r['triangles']} triangles), "
            f"{args.views} views, {args.size}², ground truth only, median of {args.rounds}"
        )
        print("| way | ms/view | views/s | vs Open3D |\n|---|---:|---:|---:|")
        for key, label in (
            ("raycast", "blendtruth render_model --truth raycast"),
            ("cycles", "blendtruth render_model --truth cycles"),
            ("open3d", "Open3D cast_rays + np.savez"),
        ):
            print(
                f"| {label} | {pv[key] * 1e3:.1f} | {1 / pv[key]:.1f} | "
                f"{pv['open3d'] / pv[key]:.2f}x |"
            )
        w = r["whole_s"]
        print(
            f"\nwhole process: blendtruth render {w['blendtruth render']:.2f} s, Open3D "
            f"script {w['open3d script']:.2f} s, ratio "
            f"{w['blendtruth render'] / w['open3d script']:.2f}"
        )
        if not args.skip_growth:
            sizes = [int(x) for x in args.growth.split(",")]
            rows = growth(sizes, args.growth_views, args.size, args.growth_rounds, tmp)
            print(
                f"\n## cost growth, {args.size}², steady-state ms/view (median interval "
                f"between views of a {args.growth_views}-view render), and once per render "
                f"(s); median of {args.growth_rounds} interleaved rounds"
            )
            print(
                "| triangles | raycast | cycles | Open3D | raycast once | cycles once |\n"
                "|---:|---:|---:|---:|---:|---:|"
            )
            for row in rows:
                print(
                    f"| {row['triangles']} | {row['raycast'] * 1e3:.1f} | "
                    f"{row['cycles'] * 1e3:.1f} | {row['open3d'] * 1e3:.1f} | "
                    f"{row['raycast_once']:.2f} | {row['cycles_once']:.2f} |"
                )
            first, last = rows[0], rows[-1]
            print(
                "| growth | "
                + " | ".join(f"{last[k] / first[k]:.2f}x" for k in ("raycast", "cycles", "open3d"))
                + " | | |"
            )
        if not args.skip_dataset:
            d = dataset(args.dataset_models, 8, 256, tmp)
            print(f"\n## dataset: {args.dataset_models} shared meshes x 8 views, 256², --no-rgb")
            print("| way | views/s | CPU % |\n|---|---:|---:|")
            for key, (vps, cpu) in d.items():
                print(f"| {key} | {vps:.2f} | {cpu * 100:.0f} |")
            a, b = d["blendtruth dataset"][0], d["objaverse-style, 2 at a time"][0]
            print(f"ratio blendtruth / baseline: {a / b:.2f}")
        print(f"\nload average at the end: {os.getloadavg()}")


if __name__ == "__main__":
    main()
