"""Where the ray caster's time goes per view, by size: Embree's traversal alone, the
float64 refinement as a second loop after it, the refinement fused into the packet loop,
and the whole `RayCaster.cast` (no bpy, no writers).

The meshes are the height-field grids of bench/truth_speed.py. Each has 12 cameras of the
sphere sampler, 512², 50° horizontal field of view, the grid's bounding sphere filling 0.8
of the frame. Rounds are interleaved over the ways, and each cell is the median over
cameras and rounds. The refinement's cost is a way's time minus the traversal in the same
run.

Run: python bench/cast_breakdown.py [--sizes 1000,1000000] [--rounds 5] [--threads 0]
"""

from __future__ import annotations

import argparse
import math
import statistics
import time

import numpy as np


def grid(n_tris: int) -> tuple[np.ndarray, np.ndarray]:
    """The vertices and faces of bench/truth_speed.py's grid of about ``n_tris`` triangles."""
    n = max(2, int(round(np.sqrt(n_tris / 2))))
    x, y = np.meshgrid(np.linspace(-1, 1, n + 1), np.linspace(-1, 1, n + 1))
    z = 0.15 * np.sin(3 * x) * np.cos(2 * y)
    verts = np.column_stack([x.ravel(), y.ravel(), z.ravel()])
    idx = np.arange((n + 1) ** 2).reshape(n + 1, n + 1)
    a, b, c, d = idx[:-1, :-1], idx[:-1, 1:], idx[1:, :-1], idx[1:, 1:]
    faces = np.concatenate(
        [np.stack([a, b, d], -1).reshape(-1, 3), np.stack([a, d, c], -1).reshape(-1, 3)]
    )
    return verts, faces


def ways(caster, size: int) -> dict:
    """name -> function(camera) for the four ways of casting one view."""
    from blendtruth.raycast.embree import PacketScene
    from blendtruth.raycast.kernels import kernel

    if not isinstance(caster._embree, PacketScene) or kernel() is None:
        raise SystemExit("this bench needs Embree packets and numba (see raycast/embree.py)")
    n = size * size
    passes = ("depth", "distance", "normal", "mask")

    def rays(camera):
        pose = camera.cam_to_world
        _, r, lengths, valid = caster._camera_rays(camera)
        origin = (pose[:3, 3] - caster._offset)[None]
        return origin, r, np.ascontiguousarray(pose[:3, :3]), lengths, valid

    def outputs(lengths):
        z = np.zeros
        return (lengths, caster._tri, caster._corner_normals, z(n, np.float32),
                z(n, np.float32), z((n, 3), np.float32), z((0, 3), np.float32),
                z(0, np.int32), z(0), z((0, 3)))  # fmt: skip

    def traversal(camera):
        o, r, rot, _, valid = rays(camera)
        caster._embree.hits(o, r, rot, 0.0, valid, caster._window(camera), caster._threads)

    def separate(camera):
        o, r, rot, lengths, valid = rays(camera)
        prim, _ = caster._embree.hits(o, r, rot, 0.0, valid, caster._window(camera),
                                      caster._threads)  # fmt: skip
        kernel()(prim, r, rot, o, *outputs(lengths))

    def fused(camera):
        o, r, rot, lengths, valid = rays(camera)
        caster._embree.refined_hits(o, r, rot, 0.0, valid, caster._window(camera),
                                    caster._threads, refine=outputs(lengths))  # fmt: skip

    return {"traversal": traversal, "separate loops": separate, "fused": fused,
            "RayCaster.cast": lambda camera: caster.cast(camera, passes)}  # fmt: skip


def main() -> None:
    from blendtruth.raycast.cast import RayCaster
    from blendtruth.raycast.scene import from_arrays
    from blendtruth.scenes.samplers import sample_cameras
    from blendtruth.view import Intrinsics

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="1000,1000000")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--threads", type=int, default=0)
    parser.add_argument("--size", type=int, default=512)
    args = parser.parse_args()
    f = args.size / 2 / math.tan(math.radians(25))
    intr = Intrinsics(f, f, args.size / 2, args.size / 2, args.size, args.size)
    print("| triangles | traversal | separate loops | fused | RayCaster.cast | refinement: "
          "separate | refinement: fused |\n|---:|---:|---:|---:|---:|---:|---:|")  # fmt: skip
    for n in (int(x) for x in args.sizes.split(",")):
        verts, faces = grid(n)
        caster = RayCaster(from_arrays(verts, faces), threads=args.threads)
        cameras = sample_cameras("sphere", 12, intr, object_radius=float(np.sqrt(2.0225)))
        run = ways(caster, args.size)
        for way in run.values():
            way(cameras[0])  # compile or load the loops, fault in the BVH
        times: dict[str, list[float]] = {k: [] for k in run}
        for _ in range(args.rounds):
            for name, way in run.items():
                for camera in cameras:
                    start = time.perf_counter()
                    way(camera)
                    times[name].append(time.perf_counter() - start)
        ms = {k: statistics.median(v) * 1e3 for k, v in times.items()}
        t = ms["traversal"]
        print(f"| {len(faces)} | " + " | ".join(f"{v:.2f}" for v in ms.values())
              + f" | {ms['separate loops'] - t:.2f} | {ms['fused'] - t:.2f} |")  # fmt: skip


if __name__ == "__main__":
    main()
