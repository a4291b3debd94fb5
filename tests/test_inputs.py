"""Hostile model files are refused by our own readers before Blender sees them, with one
message naming the file and the problem; good files pass (no Blender needed)."""

from __future__ import annotations

import os
import time
import warnings

import numpy as np
import pytest

import hostile
from blendtruth.errors import BlendtruthError, BlendtruthWarning
from blendtruth.inputs import coords
from blendtruth.models import MODEL_EXTENSIONS, check_model_file


def refused(path, *needles):
    with pytest.raises(BlendtruthError) as info:
        check_model_file(path)
    message = str(info.value)
    assert str(path) in message and "\n" not in message, message
    for needle in needles:
        assert needle in message, message
    return message


def test_every_shared_mesh_passes_the_checks(meshes):
    files = [p for p in meshes.iterdir() if p.suffix.lower() in MODEL_EXTENSIONS]
    assert len(files) >= 15
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        for path in files:
            check_model_file(path)


@pytest.mark.parametrize("name", ["stanford-bunny.obj", "igea.ply"])
def test_big_files_are_checked_quickly(meshes, name):
    check_model_file(meshes / name)  # warm the page cache and imports
    start = time.perf_counter()
    check_model_file(meshes / name)
    # Measured ~0.1 s (bunny, 2.4 MB) and ~0.02 s (igea, 3.1 MB) on a loaded 2-core VM.
    assert time.perf_counter() - start < 2.0


@pytest.mark.parametrize("value", ["nan", "inf", "-inf", "1e39", "abc"])
def test_obj_bad_coordinates(tmp_path, value):
    path = hostile.obj(tmp_path / "m.obj", ["0 0 0", f"1 {value} 0", "0 1 0"])
    refused(path, "line 2", "not a number" if value == "abc" else "not a finite number")


@pytest.mark.parametrize(
    ("faces", "needle"),
    [
        ("f 1 2 4", "line 4: face vertex index 4 is outside the file's 3 vertices"),
        (
            "vt 0 0\nf 1/1 2/2 3/1",
            "line 5: face texture coordinate index 2 is outside the file's 1",
        ),
        ("vn 0 0 1\nf 1//1 2//1 3//-2", "line 5: face normal index -2 is outside the file's 1"),
        ("vt 0 0\nf 1/0 2/1 3/1", "line 5: face texture coordinate index 0"),
        ("f 1 2 0", "line 4: face index 0"),
        ("f -1 -2 -4", "line 4: face index -4, before the first vertex"),
        ("f 1 2", "line 4: a face with 2"),
        ("f 1 2 x", "line 4: face index 'x' is not a whole number"),
    ],
)
def test_obj_bad_faces(tmp_path, faces, needle):
    refused(hostile.obj(tmp_path / "m.obj", faces=faces), needle)


def test_obj_vertex_with_two_coordinates(tmp_path):
    refused(hostile.obj(tmp_path / "m.obj", ["0 0 0", "1 0", "0 1 0"]), "line 2", "three")


def test_obj_with_colours_and_relative_indices_passes(tmp_path):
    path = hostile.obj(tmp_path / "m.obj", ["0 0 0 1 nan 0", "1 0 0", "0 1 0"], "f -3 -2 -1")
    check_model_file(path)


@pytest.mark.parametrize("value", ["nan", "inf", "1e39", "zz"])
def test_stl_ascii_bad_coordinates(tmp_path, value):
    path = hostile.stl_ascii(tmp_path / "m.stl", ["0 0 0", f"{value} 0 0", "0 1 0"])
    refused(path, "line 5")


def test_stl_ascii_cut(tmp_path):
    refused(hostile.stl_ascii(tmp_path / "m.stl", cut=True), "cut", "line 2")
    path = tmp_path / "noend.stl"
    path.write_text(hostile.stl_ascii(tmp_path / "x.stl").read_text().replace("endsolid t", ""))
    refused(path, "cut", "endsolid")


@pytest.mark.parametrize("value", [np.nan, np.inf, -np.inf])
def test_stl_binary_non_finite(tmp_path, value):
    tris = np.tile(hostile.TRIANGLE.ravel(), (3, 1))
    tris[2, 4] = value
    refused(hostile.stl_binary(tmp_path / "m.stl", tris), "triangle 2", "not a finite")


def test_stl_cut_binary_is_not_mistaken_for_ascii(tmp_path):
    path = hostile.stl_binary(tmp_path / "m.stl", np.tile(hostile.TRIANGLE.ravel(), (4, 1)))
    path.write_bytes(path.read_bytes()[:-20])
    refused(path, "declaring 4 triangles would be 284 bytes", "264 bytes")


@pytest.mark.parametrize("binary", [False, True])
@pytest.mark.parametrize("value", [np.nan, np.inf, 1e39])
def test_ply_non_finite(tmp_path, binary, value):
    v = hostile.TRIANGLE.copy()
    v[1, 2] = value
    dtype = "double" if value == 1e39 else "float"
    path = hostile.ply(tmp_path / "m.ply", v, binary, dtype=dtype)
    refused(path, "line 11" if not binary else "vertex 1", "not a finite")


def test_ply_ascii_non_numeric_and_cut(tmp_path):
    path = hostile.ply(tmp_path / "m.ply", hostile.TRIANGLE, binary=False)
    path.write_text(path.read_text().replace("1.0 0.0 0.0", "1.0 oops 0.0"))
    refused(path, "line 11", "'oops' is not a number")
    cut = hostile.ply(tmp_path / "cut.ply", hostile.TRIANGLE, binary=False, count=40)
    refused(cut, "40 'vertex' elements")


@pytest.mark.parametrize("binary", [False, True])
def test_ply_absurd_count_is_one_line_not_an_abort(tmp_path, binary):
    path = hostile.ply(tmp_path / "m.ply", hostile.TRIANGLE, binary, count=2**31)
    refused(path, "2147483648 'vertex' elements", "bytes follow the header")


def test_ply_bad_header(tmp_path):
    path = tmp_path / "m.ply"
    path.write_bytes(b"ply\nformat ascii 1.0\nelement vertex 3\nproperty quux x\nend_header\n")
    refused(path, "header line 4", "bad property")
    path.write_bytes(b"PLX\n")
    refused(path, "not a PLY file")


def test_far_offset_model_is_refused_and_moderate_offset_warns(tmp_path):
    # A 10 m model at 5e6: float32 steps there are 0.5, so it would be rounded by 0.25.
    far = np.array([[5e6, 5e6, 0], [5e6 + 10, 5e6, 0], [5e6, 5e6 + 10, 0]])
    path = hostile.obj(tmp_path / "far.obj", [" ".join(map(repr, v)) for v in far])
    refused(path, "rounded by up to 0.25 units", "move it near the origin")
    near = far - [5e6 - 2000, 5e6 - 2000, 0]  # at 2000: rounding 6.1e-5, 4.3e-6 of 14 m
    hostile.obj(path, [" ".join(map(repr, v)) for v in near])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        check_model_file(path)
    mid = far - [5e6 - 1e5, 5e6 - 1e5, 0]  # at 1e5: rounding 3.9e-3, 2.8e-4 of the size
    hostile.obj(path, [" ".join(map(repr, v)) for v in mid])
    with pytest.warns(BlendtruthWarning, match=r"rounded by up to 0.00391 units \(0.03%"):
        check_model_file(path)


def test_rounding_error_is_half_a_float32_step():
    error, size = coords.rounding_error(np.array([5e6, 0, 0]), np.array([5e6 + 10, 0, 0]))
    assert error == 0.25 and size == 10
    assert coords.rounding_error(np.zeros(3), np.ones(3))[0] == 2.0**-24


def test_gltf_memory_bomb_accessor(tmp_path):
    doc, data = hostile.gltf_doc(count=2**31)
    path = hostile.gltf(tmp_path / "bomb.gltf", doc, data)
    assert path.stat().st_size < 700
    refused(path, "accessor 0 declares 2147483648 elements", "bufferView 0 holds 36 bytes")
    refused(hostile.glb(tmp_path / "bomb.glb", doc, data), "2147483648 elements")


def test_gltf_accessor_without_data_cannot_be_huge(tmp_path):
    doc, data = hostile.gltf_doc()
    doc["accessors"].append({"componentType": 5126, "type": "VEC3", "count": 2**31})
    refused(hostile.gltf(tmp_path / "m.gltf", doc, data), "accessor 1", "without data")


@pytest.mark.parametrize("uri", ["/dev/zero", "/etc/hostname", "../outside.bin",
                                 "sub/../../outside.bin", "http://example.com/b.bin",
                                 "file:///dev/urandom"])  # fmt: skip
def test_gltf_buffer_uri_outside_the_model(tmp_path, uri):
    (tmp_path / "outside.bin").write_bytes(b"\0" * 36)
    (tmp_path / "m").mkdir()
    doc, _ = hostile.gltf_doc(uri=uri)
    refused(hostile.gltf(tmp_path / "m" / "m.gltf", doc), repr(uri))


@pytest.mark.parametrize("kind", ["fifo", "folder", "symlink-to-dev"])
def test_gltf_buffer_that_is_not_a_regular_file(tmp_path, kind):
    target = tmp_path / "b.bin"
    if kind == "fifo":
        os.mkfifo(target)
    elif kind == "folder":
        target.mkdir()
    else:
        target.symlink_to("/dev/zero")
    doc, _ = hostile.gltf_doc(uri="b.bin", byte_length=2**40)
    start = time.perf_counter()
    refused(hostile.gltf(tmp_path / "m.gltf", doc), "buffer 0", "b.bin", "not a regular file")
    assert time.perf_counter() - start < 1.0


def test_gltf_byte_length_mismatch_and_cut_glb(tmp_path):
    doc, data = hostile.gltf_doc()
    (tmp_path / "b.bin").write_bytes(data[:20])
    doc["buffers"][0]["uri"] = "b.bin"
    refused(hostile.gltf(tmp_path / "m.gltf", doc), "byteLength 36", "has 20 bytes")
    doc, data = hostile.gltf_doc()
    path = hostile.glb(tmp_path / "m.glb", doc, data)
    path.write_bytes(path.read_bytes()[:-10])
    refused(path, "the file is cut")
    doc["bufferViews"][0]["byteLength"] = 4096
    refused(hostile.glb(tmp_path / "v.glb", doc, data), "bufferView 0 spans bytes 0..4096")


@pytest.mark.parametrize("value", [np.nan, np.inf])
def test_gltf_non_finite_positions(tmp_path, value):
    v = hostile.TRIANGLE.copy()
    v[2, 0] = value
    doc, data = hostile.gltf_doc(v)
    refused(hostile.glb(tmp_path / "m.glb", doc, data), "accessor 0 vertex 2", "not a finite")
    refused(hostile.gltf(tmp_path / "m.gltf", doc, data), "vertex 2")


def test_gltf_json_nan_literal_and_garbage(tmp_path):
    doc, data = hostile.gltf_doc()
    doc["nodes"][0]["translation"] = [float("nan"), 0, 0]
    refused(hostile.gltf(tmp_path / "m.gltf", doc, data), "NaN is not valid JSON")
    (tmp_path / "g.gltf").write_bytes(b"\xff\xfe{garbage")
    refused(tmp_path / "g.gltf", "not valid glTF JSON")


def test_good_gltf_variants_pass(tmp_path):
    doc, data = hostile.gltf_doc()
    check_model_file(hostile.gltf(tmp_path / "d.gltf", doc, data))  # data: URI
    doc, data = hostile.gltf_doc(uri="sub/b%20c.bin")
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "b c.bin").write_bytes(data)
    check_model_file(hostile.gltf(tmp_path / "f.gltf", doc))
    doc, data = hostile.gltf_doc()
    check_model_file(hostile.glb(tmp_path / "m.glb", doc, data))


def test_obj_material_library_and_texture_that_are_fifos(tmp_path):
    os.mkfifo(tmp_path / "m.mtl")
    path = hostile.obj(tmp_path / "m.obj", faces="mtllib m.mtl\nf 1 2 3")
    start = time.perf_counter()
    refused(path, "material library", "a FIFO (named pipe)")
    os.unlink(tmp_path / "m.mtl")
    (tmp_path / "m.mtl").write_text("newmtl a\nmap_Kd -bm 1.0 -o 0 0 tex ture.png\n")
    os.mkfifo(tmp_path / "tex ture.png")
    refused(path, "texture", "tex ture.png", "a FIFO")
    os.unlink(tmp_path / "tex ture.png")
    (tmp_path / "tex ture.png").symlink_to("/dev/urandom")
    refused(path, "texture", "a character device")
    assert time.perf_counter() - start < 1.0


def test_obj_texture_outside_the_folder_warns(tmp_path):
    (tmp_path / "tex.png").write_bytes(b"not really a png")
    (tmp_path / "m").mkdir()
    (tmp_path / "m" / "m.mtl").write_text("newmtl a\nmap_Kd ../tex.png\n")
    path = hostile.obj(tmp_path / "m" / "m.obj", faces="mtllib m.mtl\nf 1 2 3")
    with pytest.warns(BlendtruthWarning, match="outside the model's folder"):
        check_model_file(path)


def test_usda_layer_that_is_a_device(tmp_path):
    path = tmp_path / "m.usda"
    path.write_text("#usda 1.0\n(\n    subLayers = [@/dev/zero@]\n)\n")
    refused(path, "USD layer", "character device")


def test_line_numbers_are_right_across_read_chunks(tmp_path, monkeypatch):
    from blendtruth.inputs import obj

    monkeypatch.setattr(obj, "CHUNK_BYTES", 64)  # many chunks for a small file
    lines = ["v 0 0 0", "v 1 0 0", "v 0 1 0"] + ["f 1 2 3"] * 40 + ["f 1 2 7"] + ["f 1 2 3"] * 5
    (tmp_path / "m.obj").write_text("\n".join(lines) + "\n")
    refused(tmp_path / "m.obj", "line 44: face vertex index 7")
    lines = ["v 0 0 0", "v 1 0 0", "v 0 1 0"] * 20 + ["f -1 -2 -3"] * 20 + ["v nan 0 0"]
    (tmp_path / "n.obj").write_text("\n".join(lines) + "\n")
    refused(tmp_path / "n.obj", "line 81: coordinate nan")
    facet = "facet normal 0 0 1\nouter loop\nvertex 0 0 0\nvertex 1 0 0\nvertex 0 1 0\nendloop\n"
    text = "solid t\n" + (facet + "endfacet\n") * 10 + facet  # the 11th facet is cut
    (tmp_path / "c.stl").write_text(text)
    refused(tmp_path / "c.stl", "the facet at line 72 has no 'endfacet'")
    facets = [facet + "endfacet\n"] * 10
    facets[6] = facets[6].replace("vertex 1 0 0", "vertex 1 inf 0")  # lines 44..50
    (tmp_path / "v.stl").write_text("solid t\n" + "".join(facets) + "endsolid t\n")
    refused(tmp_path / "v.stl", "line 47: coordinate inf")


def test_gltf_image_that_is_a_fifo(tmp_path):
    os.mkfifo(tmp_path / "tex.png")
    doc, data = hostile.gltf_doc()
    doc["images"] = [{"uri": "tex.png"}]
    refused(hostile.gltf(tmp_path / "m.gltf", doc, data), "image 0", "FIFO")
    doc["images"] = [{"uri": "missing.png"}]  # missing images are left to the texture warning
    check_model_file(hostile.gltf(tmp_path / "m.gltf", doc, data))


@pytest.mark.parametrize("kind", ["fbx-binary", "fbx-ascii", "dae"])
def test_fbx_and_collada_textures_that_are_fifos(tmp_path, kind):
    os.mkfifo(tmp_path / "tex.png")
    if kind == "fbx-binary":
        body = b"Kaydara FBX Binary  \x00\x1a\x00" + b"\x10RelativeFilenameS\x07\x00\x00\x00tex.png"
    elif kind == "fbx-ascii":
        body = b'; FBX 7.4.0 project file\nTexture: {\n  RelativeFilename: "tex.png"\n}\n'
    else:
        body = b"<COLLADA><library_images><image><init_from>tex.png</init_from></image>"
    path = tmp_path / ("m.dae" if kind == "dae" else "m.fbx")
    path.write_bytes(body + b"\n" * 10)
    refused(path, "texture", "tex.png", "FIFO")
    os.unlink(tmp_path / "tex.png")
    (tmp_path / "tex.png").write_bytes(b"x")
    check_model_file(path)  # a regular texture is fine (the rest is Blender's business)


def test_gltf_values_of_any_type_give_one_line_errors(tmp_path):
    # Seeded mutations of a valid document: each check ends in a pass or a BlendtruthError.
    import copy
    import json
    import random

    rng = random.Random(0)
    doc0, data = hostile.gltf_doc()
    hostile.gltf(tmp_path / "base.gltf", doc0, data)
    doc0["bufferViews"][0]["byteStride"] = 12
    doc0["meshes"][0]["primitives"][0]["targets"] = [{"POSITION": 0}]
    doc0["images"] = [{"uri": "x.png"}]

    def paths(o, pre=()):
        items = o.items() if isinstance(o, dict) else enumerate(o) if isinstance(o, list) else ()
        for k, v in items:
            yield pre + (k,)
            yield from paths(v, pre + (k,))

    where = list(paths(doc0))
    weird = [None, "x", -1, 2**70, 1.5, [], {}, [1], {"a": 1}, True, "/dev/zero", "data:,"]
    outcomes = set()
    for _ in range(300):
        doc = copy.deepcopy(doc0)
        *parents, key = rng.choice(where)
        node = doc
        for k in parents:
            node = node[k]
        node[key] = rng.choice(weird)
        path = tmp_path / "m.gltf"
        path.write_text(json.dumps(doc))
        try:
            check_model_file(path)
            outcomes.add("pass")
        except BlendtruthError as exc:
            assert str(exc).startswith(str(path)) and "\n" not in str(exc)
            outcomes.add("error")
    assert outcomes == {"pass", "error"}


@pytest.mark.parametrize("binary", [False, True])
@pytest.mark.parametrize("bad", [3, -1, 2**30])
def test_ply_face_index_out_of_range(tmp_path, binary, bad):
    import struct

    path = hostile.ply(tmp_path / "m.ply", hostile.TRIANGLE, binary)
    if binary:
        path.write_bytes(path.read_bytes()[:-12] + struct.pack("<3i", 0, bad, 2))
    else:
        path.write_text(path.read_text().replace("3 0 1 2", f"3 0 {bad} 2"))
    where = "face 0" if binary else "line 13: face 0"
    refused(path, f"{where} names vertex {bad}, but the file has 3 vertices")


def test_ply_tristrip_restarts_and_mixed_faces_pass(tmp_path):
    import struct

    v = np.array([[0, 0, 0], [1, 0, 0], [0, 1, 0], [1, 1, 0]], dtype="<f4")
    head = ("ply\nformat binary_little_endian 1.0\nelement vertex 4\nproperty float x\n"
            "property float y\nproperty float z\nelement {e} {n}\n"
            "property list uchar int vertex_indices\nend_header\n")  # fmt: skip
    strip = struct.pack("<B7i", 7, 0, 1, 2, -1, 1, 2, 3)
    (tmp_path / "s.ply").write_bytes(head.format(e="tristrips", n=1).encode() + v.tobytes() + strip)
    check_model_file(tmp_path / "s.ply")
    mixed = struct.pack("<B3i", 3, 0, 1, 2) + struct.pack("<B4i", 4, 0, 1, 3, 2)
    (tmp_path / "q.ply").write_bytes(head.format(e="face", n=2).encode() + v.tobytes() + mixed)
    check_model_file(tmp_path / "q.ply")
