"""Hostile inputs through the real CLI: exit code 2, one stderr line naming the file or
option, no output folder left; the hang cases run in a subprocess under a time bound."""

from __future__ import annotations

import json
import os
import resource
import subprocess
import sys
import time

import numpy as np
import pytest

import hostile
from blendtruth.cli import main

pytestmark = pytest.mark.render
pytest.importorskip("bpy")

TINY = ["--views", "2", "--width", "16", "--height", "16", "--no-rgb"]


def run_cli(capsys, *args):
    code = main(["render", *map(str, args)])
    captured = capsys.readouterr()
    err = captured.err.strip().splitlines()
    assert "RuntimeWarning" not in captured.err and "Traceback" not in captured.err
    return code, err


def assert_refused(capsys, tmp_path, needle, *args, name=None):
    out = tmp_path / "out"
    code, err = run_cli(capsys, *args, "--out", out)
    assert code == 2, err
    assert len(err) == 1 and err[0].startswith("blendtruth: error:"), err
    assert needle in err[0], err
    if name is not None:
        assert str(name) in err[0], err
    assert not out.exists(), "a refused input must leave no output folder"


def _nan_obj(path):
    return hostile.obj(path, ["0 0 0", "1 nan 0", "0 1 0"])


@pytest.mark.parametrize(
    ("make", "needle"),
    [
        (_nan_obj, "line 2: coordinate nan"),
        (lambda p: hostile.stl_ascii(p.with_suffix(".stl"), cut=True), "the file is cut"),
        (lambda p: hostile.gltf(p.with_suffix(".gltf"), hostile.gltf_doc(uri="/dev/zero")[0]),
         "absolute path"),
        (lambda p: hostile.obj(p, ["0 0 0", "1 0 0", "2 0 0"]), "degenerate (zero area)"),
        (lambda p: hostile.obj(p, faces="f 1 2 9"), "face vertex index 9 is outside"),
    ],
    ids=["obj-nan", "stl-cut", "gltf-dev-zero", "degenerate", "obj-index"],
)  # fmt: skip
def test_hostile_model_is_one_line_exit_2(tmp_path, capsys, make, needle):
    path = make(tmp_path / "m.obj")
    assert_refused(capsys, tmp_path, needle, path, *TINY, name=path)


def test_gltf_node_transform_beyond_float32_is_refused(tmp_path, capsys):
    doc, data = hostile.gltf_doc()
    doc["nodes"][0]["translation"] = [1e39, 0, 0]  # valid JSON; infinite in Blender's float32
    path = hostile.gltf(tmp_path / "m.gltf", doc, data)
    assert_refused(capsys, tmp_path, "NaN or infinite transform", path, *TINY, name=path)


def test_gltf_import_failure_names_the_python_exception(tmp_path, capsys):
    doc, data = hostile.gltf_doc()
    doc["scenes"][0]["nodes"] = [5]  # passes our checks; Blender's importer raises KeyError
    path = hostile.gltf(tmp_path / "m.gltf", doc, data)
    assert_refused(capsys, tmp_path, "Blender could not import it (KeyError: 5)", path, *TINY)


def _cli(*args, timeout, memory_limit=None):
    def limit():
        resource.setrlimit(resource.RLIMIT_AS, (memory_limit, memory_limit))

    start = time.perf_counter()
    proc = subprocess.run(
        [sys.executable, "-m", "blendtruth.cli", "render", *map(str, args)],
        capture_output=True,
        text=True,
        timeout=timeout,
        preexec_fn=limit if memory_limit else None,
    )
    return proc, time.perf_counter() - start


def _urandom_buffer(path):
    (path.parent / "b.bin").symlink_to("/dev/urandom")
    doc, _ = hostile.gltf_doc(uri="b.bin", byte_length=2**40)
    return hostile.gltf(path.with_suffix(".gltf"), doc)


@pytest.mark.parametrize(
    ("make", "needle"),
    [
        (lambda p: hostile.ply(p.with_suffix(".ply"), hostile.TRIANGLE, True, count=2**31),
         "2147483648 'vertex' elements"),
        (lambda p: hostile.glb(p.with_suffix(".glb"), *hostile.gltf_doc(count=2**31)),
         "2147483648 elements"),
        (_urandom_buffer, "a character device"),
    ],
    ids=["ply-2^31", "glb-2^31", "gltf-urandom"],
)  # fmt: skip
def test_memory_bombs_fail_fast_under_a_memory_limit(tmp_path, make, needle):
    # Run under a 4 GiB address-space limit (bpy itself needs ~1.7 GiB): if a check ever
    # lets one through, the child fails instead of taking the machine's memory.
    path = make(tmp_path / "m")
    proc, seconds = _cli(path, *TINY, "--out", tmp_path / "out", timeout=120,
                         memory_limit=4 << 30)  # fmt: skip
    assert proc.returncode == 2, proc.stderr
    assert _error_lines(proc) == [proc.stderr.strip()] and needle in proc.stderr
    assert str(path) in proc.stderr and seconds < 60 and not (tmp_path / "out").exists()


def _error_lines(proc):
    return [line for line in proc.stderr.splitlines() if line.startswith("blendtruth:")]


@pytest.mark.parametrize("which", ["mtl", "texture"])
def test_fifo_referenced_by_an_obj_does_not_hang(tmp_path, which):
    path = hostile.obj(tmp_path / "m.obj", faces="mtllib m.mtl\nusemtl a\nf 1 2 3")
    if which == "mtl":
        os.mkfifo(tmp_path / "m.mtl")
    else:
        (tmp_path / "m.mtl").write_text("newmtl a\nmap_Kd tex.png\n")
        os.mkfifo(tmp_path / "tex.png")
    proc, seconds = _cli(path, *TINY, "--out", tmp_path / "out", timeout=120)
    assert proc.returncode == 2, proc.stderr
    assert _error_lines(proc) == [proc.stderr.strip()]
    assert "FIFO" in proc.stderr and str(path) in proc.stderr
    assert seconds < 60 and not (tmp_path / "out").exists()


_MAKE_DRIVER_BLEND = """
import sys
from blendtruth.blender._bpy import bpy
bpy.ops.wm.read_factory_settings(use_empty=False)
driver = bpy.data.objects["Cube"].driver_add("location", 0).driver
driver.type = "SCRIPTED"
driver.expression = "[0.0][0]"  # not a 'simple expression': needs Python
bpy.ops.wm.save_as_mainfile(filepath=sys.argv[1])
"""


def test_blend_with_a_python_driver_exits_after_rendering(tmp_path):
    blend = tmp_path / "driver.blend"
    subprocess.run([sys.executable, "-c", _MAKE_DRIVER_BLEND, str(blend)], check=True,
                   capture_output=True, timeout=120)  # fmt: skip
    out = tmp_path / "out"
    # Before the fix this deadlocked at interpreter exit, after writing its files.
    proc, seconds = _cli(blend, *TINY, "--out", out, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert seconds < 60
    assert len(list((out / "views").glob("*.npz"))) == 2
    assert np.load(out / "views" / "0000.npz")["mask"].sum() > 20


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (["--width", "3"], "at least 4 px"),
        (["--height", "1"], "at least 4 px"),
        (["--fov", "1e-6"], "float32 rounds depth"),
        (["--K", "1e30,1e30,8,8"], "float32 rounds depth"),
        (["--fov", "1e-6", "--radius", "3"], "one pixel spans"),
    ],
)
def test_cameras_blender_cannot_render_are_refused(tmp_path, capsys, args, needle):
    path = hostile.stl_binary(tmp_path / "m.stl", hostile.TRIANGLE.ravel())
    assert_refused(capsys, tmp_path, needle, path, *TINY, *args)


def test_no_normalize_far_from_the_origin_is_refused(tmp_path, capsys):
    far = hostile.TRIANGLE * 1e6 + 1e12  # float32 file: exact, but Cycles rounds by 3e4
    path = hostile.stl_binary(tmp_path / "far.stl", far.ravel())
    assert_refused(capsys, tmp_path, "when Cycles renders it in float32", path, *TINY,
                   "--no-normalize", name=path)  # fmt: skip
    out = tmp_path / "normalised"
    code, err = run_cli(capsys, path, *TINY, "--out", out)
    assert code == 0 and np.load(out / "views" / "0000.npz")["mask"].sum() > 5


def test_empty_camera_file_is_one_line(tmp_path, capsys):
    cams = tmp_path / "cams.json"
    cams.write_text(json.dumps({"frames": []}))
    path = hostile.stl_binary(tmp_path / "m.stl", hostile.TRIANGLE.ravel())
    assert_refused(capsys, tmp_path, "'frames' is empty", path, "--cameras", cams, "--no-rgb")


def test_views_that_see_nothing(tmp_path, capsys, meshes):
    model = meshes / "cow.obj"
    first = tmp_path / "first"
    code, _ = run_cli(capsys, model, *TINY, "--out", first)
    assert code == 0
    data = json.loads((first / "cameras.json").read_text())
    away = json.loads(json.dumps(data))
    for frame in away["frames"]:
        pose = np.array(frame["cam_to_world"])
        pose[:3, :3] = pose[:3, :3] @ np.diag([-1.0, 1.0, -1.0])  # turn round: look away
        frame["cam_to_world"] = pose.tolist()
    (tmp_path / "away.json").write_text(json.dumps(away))
    assert_refused(capsys, tmp_path, "no view sees the model: all 2 view(s)", model,
                   "--cameras", tmp_path / "away.json", "--no-rgb")  # fmt: skip

    half = json.loads(json.dumps(data))
    half["frames"][1] = away["frames"][1]
    (tmp_path / "half.json").write_text(json.dumps(half))
    out = tmp_path / "half"
    code, err = run_cli(capsys, model, "--cameras", tmp_path / "half.json", "--no-rgb",
                        "--out", out)  # fmt: skip
    assert code == 0
    assert err == ["blendtruth: warning: view 0001 sees no surface (background only); its "
                   "depth, normals and mask are empty"]  # fmt: skip
    np.testing.assert_array_equal(  # the seeing view is the same as in the first run
        np.load(out / "views" / "0000.npz")["mask"], np.load(first / "views" / "0000.npz")["mask"]
    )
    assert np.load(out / "views" / "0000.npz")["mask"].sum() > 10
    assert not np.load(out / "views" / "0001.npz")["mask"].any()


_MAKE_TEXTURED_BLEND = """
import sys
from pathlib import Path
from blendtruth.blender._bpy import bpy
out = Path(sys.argv[1])
bpy.ops.wm.read_factory_settings(use_empty=False)
image = bpy.data.images.new("t", 4, 4)
image.filepath_raw = str(out.parent / "tex.png")
image.file_format = "PNG"
image.save()
material = bpy.data.materials.new("m")
material.use_nodes = True
material.node_tree.nodes.new("ShaderNodeTexImage").image = image
bpy.data.objects["Cube"].data.materials.append(material)
bpy.ops.wm.save_as_mainfile(filepath=str(out))
"""


def test_blend_whose_texture_became_a_fifo_is_refused_not_hung(tmp_path):
    blend = tmp_path / "tex.blend"
    subprocess.run([sys.executable, "-c", _MAKE_TEXTURED_BLEND, str(blend)], check=True,
                   capture_output=True, timeout=120)  # fmt: skip
    (tmp_path / "tex.png").unlink()
    os.mkfifo(tmp_path / "tex.png")
    proc, seconds = _cli(blend, *TINY, "--out", tmp_path / "out", timeout=120)
    assert proc.returncode == 2, proc.stderr
    assert _error_lines(proc) == [proc.stderr.strip()]
    assert "tex.png" in proc.stderr and "FIFO" in proc.stderr
    assert seconds < 60 and not (tmp_path / "out").exists()


def test_unreadable_blend_is_exit_2(tmp_path, capsys):
    path = tmp_path / "junk.blend"
    path.write_bytes(b"BLENDER-v300" + bytes(range(256)) * 4)
    assert_refused(capsys, tmp_path, "not a .blend file Blender can read", path, *TINY, name=path)


def test_dataset_fails_a_hostile_model_once_and_renders_the_rest(tmp_path, meshes):
    src = tmp_path / "src"
    src.mkdir()
    (src / "cow.obj").write_bytes((meshes / "cow.obj").read_bytes())
    hostile.glb(src / "bomb.glb", *hostile.gltf_doc(count=2**31))
    subprocess.run([sys.executable, "-c", _MAKE_DRIVER_BLEND, str(src / "driver.blend")],
                   check=True, capture_output=True, timeout=120)  # fmt: skip
    out = tmp_path / "out"

    def limit():
        resource.setrlimit(resource.RLIMIT_AS, (4 << 30, 4 << 30))

    proc = subprocess.run(
        [sys.executable, "-m", "blendtruth.cli", "dataset", str(src), "--out", str(out),
         "--workers", "1", "--retries", "2", *TINY, "--no-progress"],
        capture_output=True, text=True, timeout=300, preexec_fn=limit,
    )  # fmt: skip
    assert proc.returncode == 1, proc.stderr
    summary = json.loads((out / "summary.json").read_text())
    assert summary["models_done"] == 2 and summary["models_failed"] == 1, summary
    [failure] = summary["failures"]
    assert "bomb.glb" in failure["reason"] and "2147483648 elements" in failure["reason"]
    records = [json.loads(line) for line in (out / "manifest.jsonl").read_text().splitlines()]
    bomb = [r for r in records if "bomb" in r["id"]]
    assert len(bomb) == 1, "a refused file is not retried"


# The FBX exporter writes a texture only when it feeds the material's Base Color.
_MAKE_TEXTURED_FBX = _MAKE_TEXTURED_BLEND.replace(
    'material.node_tree.nodes.new("ShaderNodeTexImage").image = image',
    'node = material.node_tree.nodes.new("ShaderNodeTexImage")\n'
    "node.image = image\n"
    "material.node_tree.links.new(node.outputs['Color'], "
    "material.node_tree.nodes['Principled BSDF'].inputs['Base Color'])",
).replace(
    "bpy.ops.wm.save_as_mainfile(filepath=str(out))",
    # Mesh only: bpy 5.0's FBX importer can fail on the factory light ('cast_shadow').
    "for o in [o for o in bpy.data.objects if o.type != 'MESH']:\n"
    "    bpy.data.objects.remove(o)\n"
    "bpy.ops.export_scene.fbx(filepath=str(out), path_mode='RELATIVE')",
)


def test_fbx_whose_texture_became_a_fifo_is_refused_not_hung(tmp_path):
    fbx = tmp_path / "m.fbx"
    subprocess.run([sys.executable, "-c", _MAKE_TEXTURED_FBX, str(fbx)], check=True,
                   capture_output=True, timeout=120)  # fmt: skip
    out = tmp_path / "out"
    proc, _ = _cli(fbx, *TINY, "--out", out, timeout=120)
    assert proc.returncode == 0, proc.stderr  # the exported file renders as it is
    (tmp_path / "tex.png").unlink()
    os.mkfifo(tmp_path / "tex.png")
    # Before the check, Blender's FBX importer blocked forever opening the FIFO.
    proc, seconds = _cli(fbx, *TINY, "--out", tmp_path / "out2", timeout=120)
    assert proc.returncode == 2, proc.stderr
    assert _error_lines(proc) == [proc.stderr.strip()] and "FIFO" in proc.stderr
    assert seconds < 60 and not (tmp_path / "out2").exists()
