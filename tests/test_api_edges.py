"""The Python API at its edges: a model scene is framed as the CLI frames it (not seen from
inside), a model path may come first, a camera brings its own size, and a model file
edited in place is loaded again."""

from __future__ import annotations

import os

import numpy as np
import pytest

from export_helpers import MESHES

pytestmark = pytest.mark.render
pytest.importorskip("bpy")

import blendtruth  # noqa: E402
from blendtruth.cli import main  # noqa: E402
from blendtruth.errors import BlendtruthError  # noqa: E402


def test_model_scene_is_framed_like_the_cli(tmp_path):
    spot = MESHES / "spot.obj"
    assert main(["render", str(spot), "--width", "64", "--height", "48", "--no-rgb",
                 "--out", str(tmp_path / "cli")]) == 0  # fmt: skip
    with np.load(tmp_path / "cli" / "views" / "0000.npz") as cli:
        cli_mask, cli_pose = cli["mask"], cli["cam_to_world"]
    view = blendtruth.render_view(scene=spot, width=64, height=48, rgb=False)
    # Outside the model, looking at it: the same camera as the CLI's first view.
    np.testing.assert_allclose(view.cam_to_world, cli_pose, atol=1e-9)
    assert 0.05 < view.mask.mean() < 0.9
    assert abs(view.mask.mean() - cli_mask.mean()) <= 0.01
    # The model path first works too, and gives the same view.
    again = blendtruth.render_view(spot, width=64, height=48, rgb=False)
    np.testing.assert_array_equal(again.depth, view.depth)


def test_a_camera_brings_its_size(tmp_path):
    from blendtruth import Intrinsics
    from blendtruth.scenes.samplers import sample_cameras

    intr = Intrinsics.from_fov(50.0, 80, 60)
    (camera,) = sample_cameras("orbit", 1, intr, center=(0, 0, 0), object_radius=1.0)
    view = blendtruth.render_view(camera, scene="monkey", rgb=False)  # no width/height given
    assert view.depth.shape == (60, 80) and view.mask.any()
    with pytest.raises(BlendtruthError, match="camera is 80x60"):
        blendtruth.render_view(camera, scene="monkey", rgb=False, width=32)
    with pytest.raises(BlendtruthError, match="camera must be a Camera"):
        blendtruth.render_view(42, scene="monkey")


def _box_obj(path, half: float) -> None:
    corners = [(x, y, z) for x in (-half, half) for y in (-half, half) for z in (-half, half)]
    faces = [(1, 3, 4, 2), (5, 6, 8, 7), (1, 2, 6, 5), (3, 7, 8, 4), (1, 5, 7, 3), (2, 4, 8, 6)]
    text = "".join(f"v {x} {y} {z}\n" for x, y, z in corners)
    text += "".join("f " + " ".join(map(str, f)) + "\n" for f in faces)
    path.write_text(text)


def test_a_model_file_edited_in_place_is_rendered_anew(tmp_path):
    from blendtruth import SceneSpec

    path = tmp_path / "box.obj"
    _box_obj(path, 0.2)
    spec = SceneSpec(models=(path,), normalize=False)
    camera = blendtruth.Camera(
        blendtruth.Intrinsics.from_fov(40.0, 48, 48),
        np.array([[1, 0, 0, 0], [0, -1, 0, 0], [0, 0, -1, 3.0], [0, 0, 0, 1.0]]),
    )
    small = blendtruth.render_view(camera, scene=spec, rgb=False).mask.sum()
    _box_obj(path, 0.5)  # the same path, a larger box
    st = os.stat(path)
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns + 1_000_000_000))
    large = blendtruth.render_view(camera, scene=spec, rgb=False).mask.sum()
    # Areas scale with the square of the size (perspective: a little more).
    assert large > 5 * small > 0
