"""mesh.ply: the world triangles the ground truth was rendered from, as Blender
triangulated them; ray cast with the saved cameras it reproduces our depth."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

pytest.importorskip("bpy")
trimesh = pytest.importorskip("trimesh")

from blendtruth.geometry.rays import ray_directions  # noqa: E402
from blendtruth.writers.npz import read_view_npz  # noqa: E402

pytestmark = pytest.mark.render


@pytest.fixture(scope="module")
def suzanne(meshes, tmp_path_factory):
    # Suzanne has quads, and the bunny's scan is triangles: both must match exactly.
    out = tmp_path_factory.mktemp("suz") / "out"
    size = ["--width", "96", "--height", "72"]
    cmd = [sys.executable, "-m", "blendtruth.cli", "render", str(meshes / "suzanne.obj"),
           "--out", str(out), "--views", "3", *size, "--no-rgb"]  # fmt: skip
    run = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr
    return out


def test_mesh_ply_ray_cast_gives_our_depth(suzanne):
    from trimesh.ray.ray_pyembree import RayMeshIntersector

    mesh = trimesh.load(suzanne / "mesh.ply", process=False)
    assert len(mesh.faces) > 900 and len(mesh.vertices) < 3 * len(mesh.faces)  # shared
    caster = RayMeshIntersector(mesh)
    for path in sorted((suzanne / "views").glob("*.npz")):
        view = read_view_npz(path)
        pose = view.cam_to_world
        dirs = ray_directions(view.camera.intrinsics).reshape(-1, 3) @ pose[:3, :3].T
        origins = np.broadcast_to(pose[:3, 3], dirs.shape)
        locs, ray, _ = caster.intersects_location(origins, dirs, multiple_hits=False)
        depth = np.zeros(len(dirs))
        depth[ray] = (locs - pose[:3, 3]) @ pose[:3, 2]
        depth = depth.reshape(view.depth.shape)
        both = (depth > 0) & view.mask
        assert ((depth > 0) != view.mask).sum() <= 3  # pixel centres on silhouettes only
        rel = np.abs(depth[both] - view.depth[both]) / view.depth[both]
        assert np.median(rel) <= 1e-6 and np.quantile(rel, 0.99) <= 1e-5, rel.max()


def test_check_passes_on_a_render_with_its_own_mesh(suzanne):
    run = subprocess.run([sys.executable, "-m", "blendtruth.cli", "check", str(suzanne)],
                         capture_output=True, text=True, timeout=300)  # fmt: skip
    assert run.returncode == 0, run.stdout + run.stderr


def test_mesh_ply_is_blenders_vertex_sharing_of_the_cast_triangles(meshes):
    """mesh.ply comes from Blender's own indexed mesh: exactly the ray-cast corners (in
    float32), Suzanne's 507 vertices shared as Blender shares them, and a loose vertex
    that no triangle uses left out."""
    import bpy

    from blendtruth.blender.triangles import extract_triangles
    from blendtruth.writers.meshfile import read_mesh_ply, write_triangles_ply

    bpy.ops.wm.read_factory_settings(use_empty=True)
    bpy.ops.mesh.primitive_monkey_add(size=2.0, location=(0.5, -1.0, 0.25))
    obj = bpy.context.active_object
    obj.scale = (1.0, 2.0, -1.0)  # mirrored: the faces' winding is swapped too
    obj.data.vertices.add(1)  # loose
    obj.data.vertices[-1].co = (9.0, 9.0, 9.0)
    bpy.context.view_layer.update()
    scene = extract_triangles()
    assert scene.vertices.shape == (508, 3) and scene.faces.shape == (968, 3)
    np.testing.assert_array_equal(scene.vertices[scene.faces], scene.corners)
    import tempfile
    from pathlib import Path

    path = Path(tempfile.mkdtemp()) / "mesh.ply"
    write_triangles_ply(path, scene.vertices, scene.faces)
    vertices, faces = read_mesh_ply(path)
    assert len(vertices) == 507 and not (vertices == 9.0).all(axis=1).any()
    np.testing.assert_array_equal(vertices[faces], scene.corners.astype(np.float32))
