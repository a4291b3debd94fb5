"""The in-memory render_views against render_model's files, and the passes derived once
above the backends on Blender's two backends (ray cast and Cycles)."""

from __future__ import annotations

import numpy as np
import pytest

from analytic import camera_rays, ray_box

pytestmark = pytest.mark.render
pytest.importorskip("bpy")

import blendtruth  # noqa: E402
from blendtruth.geometry.camera import Intrinsics  # noqa: E402
from blendtruth.geometry.frames import look_at  # noqa: E402
from blendtruth.multiview import ViewPlan, render_model  # noqa: E402
from blendtruth.scene import SceneSpec  # noqa: E402
from blendtruth.settings import RenderSettings  # noqa: E402
from blendtruth.view import Camera  # noqa: E402


def test_render_views_yields_what_render_model_writes(meshes, tmp_path):
    spec = SceneSpec(models=(meshes / "spot.obj",))
    plan = ViewPlan(sampler="orbit", views=2)
    settings = RenderSettings(width=48, height=40, rgb=False,
                              passes=("depth", "distance", "normal", "mask", "instance",
                                      "semantic", "boundary"))  # fmt: skip
    render_model(spec, plan, settings, tmp_path)
    views = list(blendtruth.render_views(spec, plan, settings))
    assert len(views) == 2
    for i, view in enumerate(views):
        with np.load(tmp_path / "views" / f"{i:04d}.npz") as f:
            np.testing.assert_array_equal(view.cam_to_world, f["cam_to_world"])
            for name, array in view.passes().items():
                np.testing.assert_array_equal(array, f[name], err_msg=name)
        assert 0.05 < view.mask.mean() < 0.95
        assert view.extra["boundary"].any()


@pytest.mark.parametrize("truth", ["raycast", "cycles"])
def test_derived_object_coords_of_the_cube_on_either_backend(truth):
    camera = Camera(Intrinsics.from_fov(50.0, 48, 40), look_at((3.0, -4.0, 2.5), (0, 0, 0)))
    view = blendtruth.render_view(camera, scene="cube", rgb=False, truth=truth,
                                  passes="object_coords,semantic,boundary")  # fmt: skip
    assert view.meta["ground_truth"]["backend"] == truth
    # The same meta from either backend: the shared part is added once, above them.
    assert set(view.meta) == {"blender_version", "ground_truth", "rgb", "amodal", "device",
                              "lighting", "scene", "width", "height"}  # fmt: skip
    assert (view.meta["width"], view.meta["height"]) == (48, 40)
    depth, _, _, mask = ray_box(camera.intrinsics, camera.cam_to_world, (-1, -1, -1), (1, 1, 1))
    hit = (camera_rays(camera.intrinsics) * depth[..., None]) @ camera.cam_to_world[:3, :3].T
    hit += camera.cam_to_world[:3, 3]
    nocs = hit / (2 * np.sqrt(3)) + 0.5  # bbox [-1, 1]^3, diagonal 2*sqrt(3)
    both = mask & view.mask
    assert (mask != view.mask).sum() <= 8
    got = view.extra["object_coords"]
    # float32 positions (Cycles) / float64 hits (ray caster), over a NOCS range of ~0.58.
    assert np.abs(got[both] - nocs[both]).max() < 2e-5
    assert np.abs(got[~view.mask]).max() == 0
    # One object, one class: semantic 1 on the cube, 0 off it.
    np.testing.assert_array_equal(view.extra["semantic"], view.mask.astype(np.int32))
    # The cube against the background: the boundary is its silhouette's inner rim.
    # (the image border is no boundary: padded with surface).
    p = np.pad(view.mask, 1, constant_values=True)
    rim = view.mask & (~p[2:, 1:-1] | ~p[:-2, 1:-1] | ~p[1:-1, 2:] | ~p[1:-1, :-2])
    assert rim.sum() > 20
    assert (view.extra["boundary"] & ~view.mask).sum() == 0
    assert (rim & ~view.extra["boundary"]).sum() == 0
