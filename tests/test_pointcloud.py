"""PLY writing/reading and voxel down-sampling (pure)."""

from __future__ import annotations

import numpy as np
import pytest

from blendtruth.errors import BlendtruthError
from blendtruth.geometry.pointcloud import voxel_downsample
from blendtruth.writers.points_ply import read_ply, write_ply


def test_ply_round_trip(tmp_path):
    rng = np.random.default_rng(0)
    pts = rng.normal(size=(100, 3)).astype(np.float32)
    nrm = rng.normal(size=(100, 3)).astype(np.float32)
    col = rng.integers(0, 256, size=(100, 3)).astype(np.uint8)
    write_ply(tmp_path / "a.ply", pts, nrm, col, comments=["frame: world"])
    back = read_ply(tmp_path / "a.ply")
    assert np.array_equal(back["points"], pts) and np.array_equal(back["normals"], nrm)
    assert np.array_equal(back["colors"], col) and back["colors"].dtype == np.uint8
    write_ply(tmp_path / "b.ply", pts.astype(np.float64))
    assert set(read_ply(tmp_path / "b.ply")) == {"points"}
    # The header is the standard binary little-endian layout, 27 bytes per vertex.
    raw = (tmp_path / "a.ply").read_bytes()
    header, body = raw.split(b"end_header\n", 1)
    assert header.startswith(b"ply\nformat binary_little_endian 1.0\n")
    assert b"comment frame: world\n" in header and b"element vertex 100\n" in header
    assert b"property float nx\n" in header and b"property uchar red\n" in header
    assert len(body) == 100 * (6 * 4 + 3)
    # trimesh, an independent reader, sees the same vertices.
    trimesh = pytest.importorskip("trimesh")
    cloud = trimesh.load(tmp_path / "a.ply")
    np.testing.assert_array_equal(np.asarray(cloud.vertices, dtype=np.float32), pts)
    assert [p.name for p in sorted(tmp_path.iterdir())] == ["a.ply", "b.ply"]  # no temp files


def test_empty_cloud_round_trips(tmp_path):
    write_ply(tmp_path / "e.ply", np.zeros((0, 3)), normals=np.zeros((0, 3)))
    back = read_ply(tmp_path / "e.ply")
    assert back["points"].shape == (0, 3) and back["normals"].shape == (0, 3)


def test_voxel_downsample_averages_each_voxel():
    rng = np.random.default_rng(1)
    pts = rng.uniform(-1, 1, size=(5000, 3))
    nrm = rng.normal(size=(5000, 3))
    col = rng.integers(0, 256, size=(5000, 3)).astype(np.uint8)
    size = 0.25
    out, out_n, out_c = voxel_downsample(pts, size, normals=nrm, colors=col)
    # Independent grouping with a dict of voxel index -> members.
    groups: dict[tuple, list[int]] = {}
    for i, key in enumerate(map(tuple, np.floor(pts / size).astype(int))):
        groups.setdefault(key, []).append(i)
    assert len(out) == len(groups) == 512  # 8 x 8 x 8 voxels, all occupied
    by_voxel = {tuple(np.floor(p / size).astype(int)): k for k, p in enumerate(out)}
    for key, members in groups.items():
        k = by_voxel[key]  # the mean lies in its own voxel
        np.testing.assert_allclose(out[k], pts[members].mean(axis=0), atol=1e-12)
        n = nrm[members].sum(axis=0)
        np.testing.assert_allclose(out_n[k], n / np.linalg.norm(n), atol=1e-12)
        np.testing.assert_array_equal(out_c[k], np.rint(col[members].mean(axis=0)))
    assert out_c.dtype == np.uint8
    # The count-weighted mean of the voxel means is the mean of all samples.
    counts = np.array([len(groups[key]) for key in by_voxel])
    np.testing.assert_allclose(counts @ out / counts.sum(), pts.mean(axis=0), atol=1e-12)


def test_voxel_downsample_reduces_a_dense_surface_sample():
    rng = np.random.default_rng(2)
    # Dense samples of the unit sphere, with their exact normals.
    pts = rng.normal(size=(20000, 3))
    pts /= np.linalg.norm(pts, axis=1, keepdims=True)
    out, normals, colors = voxel_downsample(pts, 0.1, normals=pts.copy())
    assert colors is None and 500 < len(out) < 5000
    assert len(out) == len(np.unique(np.floor(pts / 0.1), axis=0))  # one per occupied voxel
    # Averages of nearby surface points stay close to the surface (inside by at most the
    # sagitta of a voxel-sized cap) and their normals close to the radial direction.
    radius = np.linalg.norm(out, axis=1)
    assert np.all(radius <= 1 + 1e-12) and np.all(radius > 1 - 0.1**2)
    np.testing.assert_allclose(np.linalg.norm(normals, axis=1), 1.0, atol=1e-12)
    assert np.all(np.sum(normals * out / radius[:, None], axis=1) > np.cos(np.radians(5)))
    pts_only, none_n, none_c = voxel_downsample(pts, 0.1)
    np.testing.assert_array_equal(pts_only, out)
    assert none_n is None and none_c is None


def test_opposite_normals_cancel_to_zero():
    pts = np.array([[0.01, 0.01, 0.01], [0.02, 0.02, 0.02]])
    _, n, _ = voxel_downsample(pts, 1.0, normals=np.array([[0, 0, 1.0], [0, 0, -1.0]]))
    np.testing.assert_array_equal(n, [[0, 0, 0]])


def test_read_ply_rejects_what_it_cannot_read(tmp_path):
    write_ply(tmp_path / "a.ply", np.ones((10, 3)))
    raw = (tmp_path / "a.ply").read_bytes()
    (tmp_path / "short.ply").write_bytes(raw[:-5])
    with pytest.raises(BlendtruthError, match="short.ply.*truncated"):
        read_ply(tmp_path / "short.ply")
    (tmp_path / "ascii.ply").write_bytes(raw.replace(b"binary_little_endian", b"ascii"))
    with pytest.raises(BlendtruthError, match="ascii.ply"):
        read_ply(tmp_path / "ascii.ply")
    (tmp_path / "cut.ply").write_bytes(b"ply\nformat binary_little_endian 1.0\n")
    with pytest.raises(BlendtruthError, match="end_header"):
        read_ply(tmp_path / "cut.ply")


@pytest.mark.parametrize(
    ("kwargs", "needle"),
    [
        ({"points": np.ones((4, 2))}, r"points must have shape \(N, 3\)"),
        ({"points": np.full((4, 3), np.nan)}, "finite"),
        ({"normals": np.ones((3, 3))}, r"normals must have shape \(4, 3\)"),
        ({"colors": np.ones((4, 3))}, "colors must be uint8"),
        ({"colors": np.ones((4, 4), np.uint8)}, "colors must have shape"),
        ({"comments": ["two\nlines"]}, "comment"),
    ],
)
def test_write_ply_bad_inputs(tmp_path, kwargs, needle):
    args = {"path": tmp_path / "x.ply", "points": np.ones((4, 3)), **kwargs}
    with pytest.raises(BlendtruthError, match=needle):
        write_ply(**args)
    assert not list(tmp_path.iterdir())  # nothing written, not even a temporary file


@pytest.mark.parametrize(
    ("kwargs", "needle"),
    [
        ({"voxel_size": 0.0}, "voxel size"),
        ({"voxel_size": np.nan}, "voxel size"),
        ({"points": np.ones((4, 2))}, r"\(N, 3\)"),
        ({"normals": np.ones((5, 3))}, "normals"),
        ({"colors": np.ones((4, 3))}, "uint8"),
    ],
)
def test_voxel_downsample_bad_inputs(kwargs, needle):
    args = {"points": np.ones((4, 3)), "voxel_size": 0.1, **kwargs}
    with pytest.raises(BlendtruthError, match=needle):
        voxel_downsample(**args)


def test_voxel_downsample_of_nothing():
    pts, n, c = voxel_downsample(
        np.zeros((0, 3)), 0.1, np.zeros((0, 3)), np.zeros((0, 3), np.uint8)
    )
    assert pts.shape == n.shape == c.shape == (0, 3) and c.dtype == np.uint8
