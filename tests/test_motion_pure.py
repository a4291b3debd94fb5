"""Motion without bpy: timeline parsing, anchored correspondence on numpy meshes, the
tracks file, and the flow / track formats read back by their consumers' logic."""

from __future__ import annotations

import numpy as np
import pytest

from blendtruth import Camera, Intrinsics
from blendtruth.errors import BlendtruthError
from blendtruth.exports import flo, kitti_flow, tapvid
from blendtruth.geometry import motion, tracks
from blendtruth.geometry.frames import look_at
from blendtruth.timeline import MAX_FRAMES, check_range, parse_frames
from blendtruth.writers.tracks import read_tracks, write_tracks


def test_parse_frames_and_times():
    tl = parse_frames("3:11:4", fps=8)
    assert tl.frames == (3, 7, 11)
    assert [tl.time(f) for f in tl.frames] == [0.0, 0.5, 1.0]
    assert parse_frames("5").frames == (5,)


@pytest.mark.parametrize(
    ("text", "fps", "message"),
    [
        ("a:b", 24, "whole numbers"),
        ("9:3", 24, "END"),
        ("1:5:0", 24, "STEP"),
        (f"1:{MAX_FRAMES + 1}", 24, "cap"),
        ("1:5", 0, "--fps"),
        ("1:2:3:4", 24, "START:END"),
    ],
)
def test_parse_frames_refuses(text, fps, message):
    with pytest.raises(BlendtruthError, match=message):
        parse_frames(text, fps)


def test_check_range():
    assert check_range(parse_frames("2:4"), (1, 10), "a.glb")
    assert not check_range(parse_frames("2:4"), None, "a.obj")
    with pytest.raises(BlendtruthError, match=r"a.glb: --frames 0:4 is outside .*1:10"):
        check_range(parse_frames("0:4"), (1, 10), "a.glb")


def _quad_geometry(z: float, flip: bool = False, extra_block: bool = False):
    """A unit quad at height z (two triangles, diagonal flipped if asked), instance 5."""
    v = np.array([[0, 0, z], [1, 0, z], [1, 1, z], [0, 1, z]], float)
    faces = np.array([[0, 1, 3], [1, 2, 3]] if flip else [[0, 1, 2], [0, 2, 3]])
    sizes, keys = [4], [11]
    if extra_block:
        v = np.vstack([v, v[:3] + 5])
        sizes, keys = [4, 3], [11, 12]
    return motion.FrameGeometry(v, faces, np.full(2, 5, np.int32), np.array(sizes), np.array(keys))


def test_anchors_follow_the_frozen_triangulation():
    at_t = _quad_geometry(0.0)
    anchors = motion.anchor(at_t, np.array([0, 1]), np.array([[0.2, 0.3, 0.5], [0.1, 0.1, 0.8]]))
    # Frame s flips the diagonal: anchored points still use frame t's vertex triples.
    at_s = motion.FrameGeometry(
        at_t.vertices + [0.5, 0, 2], np.array([[0, 1, 3], [1, 2, 3]]), at_t.instance,
        at_t.block_sizes, at_t.block_keys,
    )  # fmt: skip
    points, valid = motion.evaluate(anchors, at_t, at_s)
    assert valid.all()
    expected = np.array(
        [[0.2 * 0 + 0.3 * 1 + 0.5 * 1, 0.5, 0], [0.1 * 0 + 0.1 * 1 + 0.8 * 0, 0.1 * 1 + 0.8 * 1, 0]]
    )
    np.testing.assert_allclose(points, expected + [0.5, 0, 2], atol=1e-12)


def test_topology_change_is_invalid_with_a_warning():
    at_t = _quad_geometry(0.0)
    anchors = motion.anchor(at_t, np.array([0]), np.array([[1 / 3, 1 / 3, 1 / 3]]))
    changed = motion.FrameGeometry(at_t.vertices, at_t.faces, at_t.instance, np.array([4]),
                                   np.array([99]))  # fmt: skip
    points, valid = motion.evaluate(anchors, at_t, changed)
    assert not valid.any() and np.isnan(points).all()
    cam = Camera(Intrinsics.from_fov(60, 32, 32), look_at((0.5, 0.5, 3), (0.5, 0.5, 0), (0, 1, 0)))
    with pytest.warns(UserWarning, match="topology changed"):
        got = motion.correspond(anchors, at_t, changed, cam, cam, lambda o, d: (
            np.full(len(d), 5), np.linalg.norm(d, axis=1)), 1e-6)  # fmt: skip
    assert not got["valid"].any() and not got["covisible"].any()
    # A block that changed before ours moves our vertices: remapped, not paired by index.
    grown = _quad_geometry(0.0, extra_block=True)
    a2 = motion.anchor(grown, np.array([1]), np.array([[0, 0, 1.0]]))
    shifted = motion.FrameGeometry(
        np.vstack([grown.vertices[4:], grown.vertices[:4]]), grown.faces, grown.instance,
        np.array([3, 4]), np.array([12, 11]),
    )  # fmt: skip
    _, ok = motion.evaluate(a2, grown, shifted)
    assert not ok.any()  # block order changed: keys differ per position, so invalid


def test_covisible_rule_is_strict():
    """A surface 0.5 % in front of the point hides it; the same instance at the point sees it."""
    cam = Camera(Intrinsics.from_fov(60, 32, 32), look_at((0, 0, 10), (0, 0, 0), (0, 1, 0)))
    point = np.array([[0.1, 0.2, 0.0]])
    length = np.linalg.norm(point[0] - [0, 0, 10])

    def occluded(o, d):
        return np.array([9]), np.array([length * 0.995])

    def seen(o, d):
        return np.array([5]), np.array([length + 1e-9])

    inst = np.array([5])
    assert not motion.covisible(cam, point, inst, occluded, 1e-6)[0]
    assert motion.covisible(cam, point, inst, seen, 1e-6)[0]
    assert not motion.covisible(cam, point + [0, 0, 20], inst, seen, 1e-6)[0]  # behind


def test_choose_pixels_grid_and_random():
    hit = np.zeros((20, 30), bool)
    hit[5:15, 10:25] = True
    grid = tracks.choose_pixels(hit, 20, "grid")
    assert len(grid) == 20 and hit.reshape(-1)[grid].all()
    r1 = tracks.choose_pixels(hit, 20, "random", seed=4)
    assert np.array_equal(r1, tracks.choose_pixels(hit, 20, "random", seed=4))
    assert not np.array_equal(r1, tracks.choose_pixels(hit, 20, "random", seed=5))
    with pytest.raises(BlendtruthError, match="--tracks-mode"):
        tracks.choose_pixels(hit, 20, "spiral")
    with pytest.raises(BlendtruthError, match="no surface"):
        tracks.choose_pixels(np.zeros((4, 4), bool), 3)


def _tracks(t=6, n=40, w=128, h=96, seed=0):
    rng = np.random.default_rng(seed)
    xy = rng.uniform([0, 0], [w, h], size=(t, n, 2)).astype(np.float32)
    visible = rng.random((t, n)) > 0.3
    q = rng.integers(0, t, n).astype(np.int32)
    visible[q, np.arange(n)] = True
    return {
        "tracks_2d": xy,
        "tracks_3d_world": rng.normal(size=(t, n, 3)).astype(np.float32),
        "tracks_3d_camera": rng.normal(size=(t, n, 3)).astype(np.float32),
        "visible": visible,
        "valid": visible | (rng.random((t, n)) > 0.5),
        "query_frame": q,
        "instance": rng.integers(1, 4, n).astype(np.int32),
    }


def test_tracks_file_round_trip(tmp_path):
    tr = _tracks()
    path = write_tracks(tmp_path / "tracks.npz", tr, list(range(10, 16)), [0, 0.1, 0.2, 0.3,
                        0.4, 0.5], 1e-5)  # fmt: skip
    back, meta = read_tracks(path)
    for k, v in tr.items():
        np.testing.assert_array_equal(back[k], v)
    assert back["tracks_2d"].dtype == np.float32 and meta["frames"][0] == 10
    assert "centre" in meta["conventions"]["tracks_2d"]
    assert not list(tmp_path.glob(".*tmp"))


def test_flo_read_by_opencv(tmp_path):
    cv2 = pytest.importorskip("cv2")
    rng = np.random.default_rng(1)
    flow = rng.normal(scale=20, size=(7, 9, 2)).astype(np.float32)
    valid = rng.random((7, 9)) > 0.2
    path = flo.write_flo(tmp_path / "a.flo", flow, valid)
    back = cv2.readOpticalFlow(str(path))
    assert back.shape == (7, 9, 2)
    np.testing.assert_array_equal(back[valid], flow[valid])
    assert (back[~valid] > 1e9).all()
    np.testing.assert_array_equal(flo.read_flo(path), back)


def test_kitti_png_within_its_bound(tmp_path):
    rng = np.random.default_rng(2)
    flow = rng.uniform(-511.9, 511.9, size=(10, 12, 2))
    valid = rng.random((10, 12)) > 0.3
    path = kitti_flow.write_kitti(tmp_path / "f.png", flow, valid)
    back, ok = kitti_flow.read_kitti(path)
    np.testing.assert_array_equal(ok, valid)
    err = np.abs(back[valid] - flow[valid]).max()
    assert err <= 1 / 128 + 1e-12
    assert err > 1 / 1024  # it really is quantised to 1/64 px
    assert (back[~valid] == -512).all()  # R = G = 0 where invalid
    with pytest.raises(BlendtruthError, match="KITTI flow PNG holds"):
        kitti_flow.encode_kitti(np.full((2, 2, 2), 600.0), np.ones((2, 2), bool))


def _metrics(gt, pred, size):
    ev_gt, ev_pred = tapvid.evaluation_dict(gt, _video(gt, size)), tapvid.evaluation_dict(
        pred, _video(pred, size))  # fmt: skip
    return tapvid.compute_metrics(ev_gt["query_points"], ev_gt["occluded"],
                                  ev_gt["target_points"], ev_pred["occluded"],
                                  ev_pred["target_points"], size)  # fmt: skip


def _video(tr, size):
    return np.zeros((tr["visible"].shape[0], *size, 3), np.uint8)


def test_tapvid_metrics_perfect_on_ourselves_not_on_a_half_pixel_shift(tmp_path):
    size = (96, 128)  # 0.5 px here is 1.33 x 2.67 px at TAP-Vid's 256 x 256
    tr = _tracks(w=size[1], h=size[0])
    perfect = _metrics(tr, tr, size)
    assert perfect["occlusion_accuracy"] == 1.0
    assert perfect["average_pts_within_thresh"] == 1.0 and perfect["average_jaccard"] == 1.0
    shifted = dict(tr, tracks_2d=tr["tracks_2d"] + np.float32(0.5))
    worse = _metrics(tr, shifted, size)
    assert worse["pts_within_1"] == 0.0 and worse["pts_within_4"] == 1.0
    assert worse["average_jaccard"] < 1.0 and worse["occlusion_accuracy"] == 1.0
    flipped = dict(tr, visible=~tr["visible"])
    assert _metrics(tr, flipped, size)["occlusion_accuracy"] < 0.5


def test_tapvid_layouts(tmp_path):
    import pickle

    size = (96, 128)
    tr = _tracks(w=size[1], h=size[0])
    ev = tapvid.evaluation_dict(tr, _video(tr, size))
    n = np.arange(tr["query_frame"].size)
    q = tr["query_frame"]
    # queries (t, y, x), targets (x, y), occluded = not visible
    np.testing.assert_array_equal(ev["query_points"][0, :, 0], q)
    np.testing.assert_array_equal(ev["query_points"][0, :, 1], tr["tracks_2d"][q, n, 1])
    np.testing.assert_array_equal(ev["query_points"][0, :, 2], tr["tracks_2d"][q, n, 0])
    np.testing.assert_array_equal(ev["target_points"][0], tr["tracks_2d"].transpose(1, 0, 2))
    np.testing.assert_array_equal(ev["occluded"][0], ~tr["visible"].T)
    path = tapvid.write_pickle(tmp_path / "v.pkl", {"clip": tapvid.davis_entry(tr, _video(tr,
                               size))})  # fmt: skip
    entry = pickle.loads(path.read_bytes())["clip"]
    # The DAVIS reader multiplies by (W, H) to get raster pixels back.
    np.testing.assert_allclose(entry["points"] * [size[1], size[0]],
                               tr["tracks_2d"].transpose(1, 0, 2), atol=1e-4)  # fmt: skip
