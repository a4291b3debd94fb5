"""Pure parts of the BOP/COCO exports and per-instance boxes (no bpy)."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.spatial.transform import Rotation

from blendtruth.errors import BlendtruthError
from blendtruth.exports.bop import depth_scale_for, diameter, object_key, rigid, vertex_normals
from blendtruth.instances import InstanceInfo, SceneTable, box_corners, mask_box, view_boxes


def test_mask_box_is_left_top_width_height():
    mask = np.zeros((6, 9), bool)
    mask[2:5, 3:8] = True
    assert mask_box(mask) == [3, 2, 5, 3]
    assert mask_box(np.zeros((4, 4), bool)) is None


def test_rigid_part_of_a_scaled_pose():
    rot = Rotation.from_rotvec([0.3, -1.1, 0.7]).as_matrix()
    m = np.eye(4)
    m[:3, :3], m[:3, 3] = rot * 2.5, [1, -2, 3]
    r, t = rigid(m)
    np.testing.assert_allclose(r, rot, atol=1e-12)
    np.testing.assert_array_equal(t, [1, -2, 3])
    row = {"source": "/a/box.obj", "object": "p004.box", "object_to_world": m.tolist()}
    assert object_key(row) == "/a/box.obj|box|2.5,2.5,2.5"


def test_depth_scale_auto_and_given():
    assert depth_scale_for(6000.0, "auto") == pytest.approx(0.1)
    assert depth_scale_for(6600.0, "auto") == pytest.approx(1.0)
    assert depth_scale_for(100.0, 0.05) == 0.05
    with pytest.raises(BlendtruthError, match="--bop-depth-scale"):
        depth_scale_for(6600.0, 0.1)
    with pytest.raises(BlendtruthError, match="--bop-depth-scale"):
        depth_scale_for(1.0, -1.0)


def test_diameter_and_normals_of_a_cube():
    corners = box_corners(np.array([-1.0, -2.0, -3.0]), np.array([1.0, 2.0, 3.0]))
    assert diameter(corners) == pytest.approx(np.sqrt(4 + 16 + 36))
    # A tetrahedron: each vertex normal points away from the centroid.
    v = np.array([[0, 0, 0], [1, 0, 0], [0, 1, 0], [0, 0, 1]], float)
    f = np.array([[0, 2, 1], [0, 1, 3], [0, 3, 2], [1, 2, 3]])
    n = vertex_normals(v, f)
    assert (np.einsum("ij,ij->i", n, v - v.mean(axis=0)) > 0).all()
    np.testing.assert_allclose(np.linalg.norm(n, axis=1), 1.0)


def test_view_boxes_project_the_corners_with_k():
    m = np.eye(4)
    m[:3, 3] = [0.0, 0.0, 5.0]  # object 5 units in front of a camera at the origin
    inst = InstanceInfo(1, "a.obj", "a", "a", (), 1, tuple(map(tuple, m)), (-1, -1, -1), (1, 1, 1))
    K = np.array([[100.0, 0, 32], [0, 100.0, 24], [0, 0, 1]])  # noqa: N806
    instance = np.zeros((48, 64), np.int32)
    instance[20:30, 10:12] = 1
    out = view_boxes(SceneTable((inst,)), K, np.eye(4), True, instance)["1"]
    assert out["bbox_visib"] == [10, 20, 2, 10] and out["bbox_amodal"] is None
    np.testing.assert_allclose(out["box_corners_px"][0], [32 - 100 / 4, 24 - 100 / 4])
    np.testing.assert_allclose(out["box_corners_px"][7], [32 + 100 / 6, 24 + 100 / 6])
    np.testing.assert_allclose(out["object_to_camera"], m)
    assert view_boxes(SceneTable((inst,)), K, np.eye(4), False, None)["1"]["box_corners_px"] is None


def test_obj_ids_sorted_and_kept(tmp_path):
    from blendtruth.exports.bop import ObjectTable

    table = ObjectTable(tmp_path)
    table.reserve({"/m/b.obj|b|1", "/m/a.obj|a|1"})
    table.reserve({"/m/c.obj|c|1", "/m/a.obj|a|1"})
    assert {k: r["obj_id"] for k, r in table.rows.items()} == {
        "/m/a.obj|a|1": 1, "/m/b.obj|b|1": 2, "/m/c.obj|c|1": 3,
    }  # fmt: skip
    table.save()
    again = ObjectTable(tmp_path)
    again.reserve({"/m/0.obj|z|1"})  # a later export extends the table, never renumbers
    assert again.rows["/m/a.obj|a|1"]["obj_id"] == 1 and again.rows["/m/0.obj|z|1"]["obj_id"] == 4


def test_more_objects_than_bop_ids_is_one_line(tmp_path, monkeypatch):
    from blendtruth.exports import bop

    monkeypatch.setattr(bop, "MAX_ID", 2)  # BOP's six-digit ids, made small to test
    with pytest.raises(BlendtruthError, match="more than 2 objects"):
        bop.ObjectTable(tmp_path).reserve({"a|a|1", "b|b|1", "c|c|1"})
