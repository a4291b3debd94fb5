"""Scenes with a ground plane (world z = 0, facing +Z): every rig and sampler keeps every
camera above the plane, seeing an object, and says which views it moved; a camera file's
views below the plane are kept and warned about one line each. Pure: the cameras come
from the same planner `render` uses, the visibility from a closed-form ray cast."""

from __future__ import annotations

import math
import warnings

import numpy as np
import pytest

from blendtruth.errors import BlendtruthWarning
from blendtruth.multiview import ViewPlan, plan_cameras
from blendtruth.scene import SceneInfo
from blendtruth.scenes.rigs import RIGS
from blendtruth.scenes.samplers import ground_cameras, keep_above_ground
from blendtruth.settings import RenderSettings
from blendtruth.view import Camera

# A sphere of radius 0.5 resting on the ground at the origin: the scene's objects.
BALL_C = np.array([0.0, 0.0, 0.5])
BALL_R = 0.5
INFO = SceneInfo(center=BALL_C, radius=BALL_R, extent=np.array([1.0, 1.0, 1.0]), scene_radius=20)
SETTINGS = RenderSettings(width=64, height=48)

PLANS = [
    *(ViewPlan(rig=rig, rig_views=None if rig in ("hunyuan3d-6", "syncdreamer-16") else 40)
      for rig in RIGS),
    ViewPlan(sampler="sphere", views=24),
    ViewPlan(sampler="hemisphere", views=24),
    ViewPlan(sampler="random", views=24),
    ViewPlan(sampler="orbit", views=8, elevation_deg=-30.0),
    ViewPlan(sampler="orbit", views=8, elevation_deg=0.0),
    ViewPlan(sampler="sphere", views=24, camera_model="ortho"),
    ViewPlan(sampler="random", views=24, camera_model="fisheye"),
    ViewPlan(sampler="sphere", views=24, camera_model="equirect"),
]  # fmt: skip


def _label(plan: ViewPlan) -> str:
    return plan.rig or f"{plan.sampler}-{plan.camera_model}-{plan.elevation_deg:g}"


def _axis_hits_ball_first(cam: Camera) -> bool:
    """The optical axis (camera +z from the eye) meets the ball before the ground plane."""
    pose = np.asarray(cam.cam_to_world)
    o, d = pose[:3, 3], pose[:3, 2]
    oc = o - BALL_C
    b = float(oc @ d)
    disc = b * b - (float(oc @ oc) - BALL_R**2)
    if disc < 0:
        return False
    t_ball = -b - math.sqrt(disc)
    t_plane = -o[2] / d[2] if d[2] != 0 else math.inf
    return t_ball > 0 and (t_plane <= 0 or t_ball < t_plane)


@pytest.mark.parametrize("plan", PLANS, ids=_label)
def test_every_camera_is_above_the_ground_and_sees_the_object(plan):
    planned = plan_cameras(plan, INFO, SETTINGS, seed=3)
    below = [k for k, c in enumerate(planned) if c.cam_to_world[2, 3] <= 0]
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        cameras = ground_cameras(planned, INFO.center, from_file=False)
    assert len(cameras) == len(planned)
    for k, cam in enumerate(cameras):
        assert cam.cam_to_world[2, 3] > 1e-9, (k, cam.cam_to_world[:3, 3])
        assert _axis_hits_ball_first(cam), k
        assert cam.model == planned[k].model and cam.intrinsics == planned[k].intrinsics
        if k not in below:  # cameras already above the ground are left exactly as planned
            np.testing.assert_array_equal(cam.cam_to_world, planned[k].cam_to_world)
    messages = [str(w.message) for w in caught if issubclass(w.category, BlendtruthWarning)]
    if below:
        assert len(messages) == 1
        assert f"{len(below)} of {len(planned)} cameras" in messages[0]
        assert all(f"{k:04d}" in messages[0] for k in below)
    else:
        assert messages == []


@pytest.mark.parametrize("rig", ["zero123", "trellis-150", "hunyuan3d-6"])
def test_the_rigs_do_put_cameras_under_the_plane_before_the_fix(rig):
    """So the test above exercises the move: these rigs' own cameras go below z = 0."""
    views = None if rig == "hunyuan3d-6" else 12
    planned = plan_cameras(ViewPlan(rig=rig, rig_views=views), INFO, SETTINGS, seed=0)
    assert any(c.cam_to_world[2, 3] < 0 for c in planned)
    assert not all(_axis_hits_ball_first(c) for c in planned if c.cam_to_world[2, 3] < 0)


def test_reflection_keeps_azimuth_and_distance():
    planned = plan_cameras(ViewPlan(sampler="sphere", views=16), INFO, SETTINGS, seed=0)
    placed, moved = keep_above_ground(planned, INFO.center)
    # Independently: Fibonacci heights z_k = 1 - (2k + 1)/n at the distance where the
    # ball fills 0.8 of the smaller half-frame (fov 50 deg across 64 px, 48 px high).
    half_tan = 24 / (32 / math.tan(math.radians(25)))
    dist = BALL_R / math.sin(math.atan(0.8 * half_tan))
    expected = [k for k in range(16) if BALL_C[2] + dist * (1 - (2 * k + 1) / 16) <= 0]
    assert moved == expected and len(expected) == 6
    for k in moved:
        a = planned[k].cam_to_world[:3, 3] - BALL_C
        b = placed[k].cam_to_world[:3, 3] - BALL_C
        np.testing.assert_allclose(b, [a[0], a[1], -a[2]], atol=1e-12)
        # Still looking at the centre.
        fwd = placed[k].cam_to_world[:3, 2]
        np.testing.assert_allclose(fwd, -b / np.linalg.norm(b), atol=1e-12)


def test_camera_file_views_below_the_plane_are_kept_and_warned_per_view():
    planned = plan_cameras(ViewPlan(sampler="sphere", views=6), INFO, SETTINGS, seed=0)
    below = [k for k, c in enumerate(planned) if c.cam_to_world[2, 3] <= 0]
    assert below
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        kept = ground_cameras(planned, INFO.center, from_file=True)
    assert kept is planned
    messages = [str(w.message) for w in caught]
    assert [m[:9] for m in messages] == [f"view {k:04d}" for k in below]
    assert all("below the ground plane" in m for m in messages)


@pytest.mark.render
def test_scene_with_the_zero123_rig_sees_objects_in_every_view(tmp_path):
    """End to end: `scene --rig zero123` (3 of its 12 seed-0 cameras go below the plane)
    renders 12 views, each showing placed objects, and says which views it moved."""
    import json
    import subprocess
    import sys
    from pathlib import Path

    pytest.importorskip("bpy")
    mesh = Path(__file__).resolve().parents[1].parent / "shared" / "meshes" / "cow.obj"
    out = tmp_path / "s"
    run = subprocess.run(
        [sys.executable, "-m", "blendtruth.cli", "scene", str(mesh), "--objects", "2",
         "--rig", "zero123", "--views", "12", "--no-rgb", "--width", "32", "--height", "32",
         "--out", str(out)],
        capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert run.returncode == 0, run.stderr
    warned = [ln for ln in run.stderr.splitlines() if "below the ground plane" in ln]
    assert len(warned) == 1 and "of 12 cameras" in warned[0]
    table = json.loads((out / "instances.json").read_text())["instances"]
    objects = [i["id"] for i in table if i["source"] != "ground"]
    assert len(objects) == 2
    flagged = []
    for k in range(12):
        with np.load(out / "views" / f"{k:04d}.npz") as v:
            assert v["cam_to_world"][2, 3] > 0
            assert np.isin(v["instance"], objects).sum() >= 4, k  # objects seen, not just ground
            if json.loads(str(v["meta"])).get("camera_reflected_above_ground"):
                flagged.append(f"{k:04d}")
    assert flagged and warned[0].split("views ")[1].startswith(", ".join(flagged))
