"""PLY writing/reading and voxel down-sampling (pure)."""

from __future__ import annotations

import numpy as np
import pytest

from blendtruth.errors import BlendtruthError
from blendtruth.pointcloud import read_ply, voxel_downsample, write_ply


def test_ply_round_trip(tmp_path):
    rng = np.random.default_rng(0)
    pts = rng.normal(size=(100, 3)).astype(np.float32)
    nrm = rng.normal(size=(100, 3)).astype(np.float32)
    col = rng.integers(0, 256, size=(100, 3)).astype(np.uint8)
    write_ply(tmp_path / "a.ply", pts, nrm, col)
    back = read_ply(tmp_path / "a.ply")
    assert np.array_equal(back["points"], pts) and np.array_equal(back["normals"], nrm)
    assert np.array_equal(back["colors"], col)
    write_ply(tmp_path / "b.ply", pts)
    assert set(read_ply(tmp_path / "b.ply")) == {"points"}
    # trimesh, an independent reader, sees the same vertices.
    trimesh = pytest.importorskip("trimesh")
    cloud = trimesh.load(tmp_path / "a.ply")
    np.testing.assert_array_equal(np.asarray(cloud.vertices, dtype=np.float32), pts)
    assert [p.name for p in sorted(tmp_path.iterdir())] == ["a.ply", "b.ply"]


def test_voxel_downsample_keeps_real_samples_one_per_voxel():
    rng = np.random.default_rng(1)
    # Dense samples of the unit sphere.
    pts = rng.normal(size=(20000, 3))
    pts /= np.linalg.norm(pts, axis=1, keepdims=True)
    out, normals, colors = voxel_downsample(pts, 0.1, normals=pts.copy())
    assert colors is None and 500 < len(out) < 5000
    np.testing.assert_allclose(np.linalg.norm(out, axis=1), 1.0, atol=1e-12)  # on the surface
    np.testing.assert_allclose(normals, out)
    cells = np.floor(out / 0.1)
    assert len(np.unique(cells, axis=0)) == len(out)
    # Every occupied voxel is represented.
    assert len(np.unique(np.floor(pts / 0.1), axis=0)) == len(out)


def test_bad_inputs(tmp_path):
    with pytest.raises(BlendtruthError, match=r"\(N, 3\)"):
        write_ply(tmp_path / "x.ply", np.ones((4, 2)))
    with pytest.raises(BlendtruthError, match="normals"):
        write_ply(tmp_path / "x.ply", np.ones((4, 3)), normals=np.ones((3, 3)))
    with pytest.raises(BlendtruthError, match="voxel"):
        voxel_downsample(np.ones((4, 3)), 0.0)
    assert not list(tmp_path.iterdir())
