"""Every importable format, from files Blender itself exports (in a separate process, so
this process's scene is untouched): the loaded geometry sits where the file says.

For formats trimesh reads (OBJ, PLY, STL, glTF) "where the file says" is checked against
trimesh; FBX, COLLADA, USD and .blend declare their axis system and Blender honours it, so
a model exported from Blender comes back in its original Blender coordinates.
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap

import numpy as np
import pytest

pytest.importorskip("bpy")

from blendtruth.multiview import ViewPlan, render_model  # noqa: E402
from blendtruth.scene import SceneSpec  # noqa: E402
from blendtruth.settings import RenderSettings  # noqa: E402

pytestmark = pytest.mark.render

EXPORT = textwrap.dedent(
    """
    import json, sys, bpy
    import numpy as np
    out = sys.argv[1]
    bpy.ops.wm.read_factory_settings(use_empty=True)
    bpy.ops.mesh.primitive_monkey_add(size=2.0, location=(0.7, -1.3, 2.1), rotation=(0.3, 0.5, 1.1))
    obj = bpy.context.object
    m = np.array(obj.matrix_world)
    co = np.array([v.co for v in obj.data.vertices]) @ m[:3, :3].T + m[:3, 3]
    with open(out + "/bounds.json", "w") as f:
        json.dump({"min": co.min(0).tolist(), "max": co.max(0).tolist(),
                   "vertices": co.tolist()}, f)
    bpy.ops.wm.obj_export(filepath=out + "/m.obj", forward_axis="Y", up_axis="Z",
                          export_materials=False)
    bpy.ops.wm.ply_export(filepath=out + "/m.ply", forward_axis="Y", up_axis="Z",
                          export_triangulated_mesh=True)
    bpy.ops.wm.stl_export(filepath=out + "/m.stl", forward_axis="Y", up_axis="Z")
    bpy.ops.export_scene.gltf(filepath=out + "/m.gltf", export_format="GLTF_SEPARATE")
    bpy.ops.export_scene.gltf(filepath=out + "/m.glb", export_format="GLB")
    bpy.ops.export_scene.fbx(filepath=out + "/m.fbx")
    bpy.ops.wm.usd_export(filepath=out + "/m.usdc")
    bpy.ops.wm.usd_export(filepath=out + "/m.usda")
    bpy.ops.wm.usd_export(filepath=out + "/m.usdz")
    if hasattr(bpy.ops.wm, "collada_export") and bpy.app.version < (5, 0, 0):
        bpy.ops.wm.collada_export(filepath=out + "/m.dae")
    bpy.ops.wm.save_as_mainfile(filepath=out + "/m.blend")
    """
)

FORMATS = ["obj", "ply", "stl", "gltf", "glb", "fbx", "usdc", "usda", "usdz", "dae", "blend"]


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    out = tmp_path_factory.mktemp("formats")
    subprocess.run([sys.executable, "-c", EXPORT, str(out)], check=True, capture_output=True,
                   timeout=300)  # fmt: skip
    return out


def _expected_vertices(exported, ext: str) -> np.ndarray:
    """N×3 world positions of the monkey's vertices in the file's own coordinates."""
    co = np.array(json.loads((exported / "bounds.json").read_text())["vertices"])
    if ext in ("gltf", "glb"):
        # glTF files are Y up: the exporter wrote Blender's (x, y, z) as (x, z, -y).
        co = np.column_stack([co[:, 0], co[:, 2], -co[:, 1]])
    return co


@pytest.mark.parametrize("ext", FORMATS)
def test_format_loads_in_file_coordinates(exported, tmp_path, ext):
    path = exported / f"m.{ext}"
    if not path.exists():
        pytest.skip(f"this Blender cannot export .{ext} (COLLADA was removed in 5.0)")
    out = tmp_path / "out"
    render_model(SceneSpec(models=(path,), normalize=False), ViewPlan(views=1),
                 RenderSettings(width=32, height=32, rgb=False), out)  # fmt: skip
    meta = json.loads(str(np.load(out / "views" / "0000.npz")["meta"]))
    sphere = meta["scene"]["bounding_sphere"]
    want = _expected_vertices(exported, ext)
    lo, hi = want.min(axis=0), want.max(axis=0)
    np.testing.assert_allclose(sphere["center"], (lo + hi) / 2, atol=1e-4)
    # Every vertex where the file put it: a mirrored, rotated or rescaled model has the same
    # bounding-sphere centre but not the same vertex set (the monkey has no symmetry left
    # once rotated about three axes). Both directions, so no vertex is lost or invented.
    from scipy.spatial import cKDTree

    trimesh = pytest.importorskip("trimesh")
    got = np.asarray(trimesh.load(out / "mesh.ply", process=False).vertices, dtype=np.float64)
    assert cKDTree(got).query(want)[0].max() < 1e-4
    assert cKDTree(want).query(got)[0].max() < 1e-4
    if ext in ("obj", "ply", "stl", "gltf", "glb"):
        trimesh = pytest.importorskip("trimesh")
        mesh = trimesh.load(path, force="mesh", process=False)
        np.testing.assert_allclose(mesh.bounds[0], lo, atol=1e-4)
        np.testing.assert_allclose(mesh.bounds[1], hi, atol=1e-4)
    assert np.load(out / "views" / "0000.npz")["mask"].sum() > 20
