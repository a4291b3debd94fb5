"""Every rig and sampler over a ground plane keeps every camera above it, looking at the
objects (closed-form: camera height, the scene centre in front of the camera and inside
its image)."""

from __future__ import annotations

import numpy as np
import pytest

from blendtruth.multiview import ViewPlan, plan_cameras
from blendtruth.scene import SceneInfo
from blendtruth.scenes.ground import MARGIN, above_ground
from blendtruth.scenes.rigs import RIGS
from blendtruth.scenes.samplers import SAMPLERS
from blendtruth.settings import RenderSettings

# Objects settled on the plane z = 0: their bounding sphere's centre sits above it.
INFO = SceneInfo(center=np.array([0.1, -0.2, 0.3]), radius=0.5,
                 extent=np.array([0.8, 0.8, 0.6]))  # fmt: skip
SETTINGS = RenderSettings(width=64, height=48, rgb=False)


def _plans():
    for rig in RIGS:
        yield rig, ViewPlan(rig=rig)
    for sampler in SAMPLERS:
        if sampler != "file":
            yield sampler, ViewPlan(sampler=sampler, views=24)


@pytest.mark.parametrize(("name", "plan"), list(_plans()), ids=lambda x: str(x)[:20])
def test_every_camera_is_above_the_ground_and_sees_the_scene(name, plan):
    before = plan_cameras(plan, INFO, SETTINGS, seed=3)
    cameras, moved = above_ground(before, INFO.center, INFO.radius)
    assert len(cameras) == len(before)
    for k, cam in enumerate(cameras):
        pose = cam.cam_to_world
        assert pose[2, 3] >= MARGIN * INFO.radius - 1e-12, (name, k)
        # The scene centre is in front of the camera and projects inside the image.
        local = (INFO.center - pose[:3, 3]) @ pose[:3, :3]
        uv, z, valid = cam.projection.project(local)
        assert valid and 0 <= uv[0] < cam.width and 0 <= uv[1] < cam.height, (name, k)
        if k in moved:  # mirrored: same horizontal position, height |z| (or the margin)
            old = before[k].cam_to_world[:3, 3]
            np.testing.assert_allclose(pose[:2, 3], old[:2])
            assert pose[2, 3] == pytest.approx(max(-old[2], MARGIN * INFO.radius))
            assert -pose[:3, 1] @ [0, 0, 1] >= -1e-9  # image up points up in the world
        else:
            np.testing.assert_array_equal(pose, before[k].cam_to_world)
    low = [k for k, c in enumerate(before) if c.cam_to_world[2, 3] < MARGIN * INFO.radius]
    assert moved == low
    if name in ("zero123", "sphere", "random"):  # these reach below the objects
        assert moved
    if name in ("orbit", "hemisphere"):
        assert moved == []
