"""The Renderer object of the Python API, on the fake backend (pure tier): scene lifetime,
reload when a model file changes on disk, framing a model like the CLI, a path first, a
camera bringing its size."""

from __future__ import annotations

import os

import numpy as np
import pytest

from blendtruth.api import Renderer
from blendtruth.backend import Backend
from blendtruth.errors import BlendtruthError
from blendtruth.geometry.camera import Intrinsics
from blendtruth.multiview import ViewPlan, plan_cameras
from blendtruth.scene import SceneSpec
from blendtruth.settings import RenderSettings
from blendtruth.testing import FakeBackend


class CountingBackend(FakeBackend):
    def __init__(self) -> None:
        super().__init__()
        self.loads: list[SceneSpec] = []
        self.closed = 0

    def load_scene(self, spec):
        self.loads.append(spec)
        return super().load_scene(spec)

    def close(self) -> None:
        self.closed += 1
        super().close()


def test_fake_backend_is_a_backend():
    backend = FakeBackend()
    with pytest.raises(BlendtruthError, match="no scene loaded"):
        backend.info  # noqa: B018
    backend.load_scene(SceneSpec())
    assert isinstance(backend, Backend)  # reads info: only once a scene is loaded


def test_scene_loaded_once_and_again_when_its_file_changes(tmp_path):
    model = tmp_path / "m.obj"
    model.write_text("v 0 0 0\n")
    backend = CountingBackend()
    r = Renderer(backend)
    assert r.load(model) is backend and r.load(model) is backend
    assert len(backend.loads) == 1
    st = os.stat(model)
    os.utime(model, ns=(st.st_atime_ns, st.st_mtime_ns + 1_000_000_000))  # same size
    r.load(model)
    assert len(backend.loads) == 2
    model.write_text("v 0 0 0\nv 1 1 1\n")  # same mtime tick possible: the size changed
    os.utime(model, ns=(st.st_atime_ns, st.st_mtime_ns + 1_000_000_000))
    r.load(model)
    assert len(backend.loads) == 3
    r.load("other.obj")
    r.forget()
    r.load("other.obj")
    assert len(backend.loads) == 5


def test_context_manager_closes_its_backend():
    backend = CountingBackend()
    with Renderer(backend) as r:
        r.load("m.obj")
    assert backend.closed == 1
    made = []

    def factory():
        made.append(CountingBackend())
        return made[-1]

    with Renderer(factory) as r:
        r.load("m.obj")
        r.close()
        r.load("m.obj")  # a new backend, the scene loaded into it
    assert len(made) == 2 and [b.closed for b in made] == [1, 1]
    assert len(made[1].loads) == 1


def test_a_model_path_first_is_framed_like_the_cli():
    with Renderer(FakeBackend) as r:
        view = r.render_view("box.obj", width=64, height=48, rgb=False)
        settings = RenderSettings(width=64, height=48, rgb=False)
        first = plan_cameras(ViewPlan(), r.backend.info, settings, settings.seed)[0]
        cli = next(r.render_views("box.obj", ViewPlan(), settings))  # lazily: one view
    np.testing.assert_array_equal(view.cam_to_world, first.cam_to_world)
    np.testing.assert_array_equal(view.depth, cli.depth)
    # Outside the boxes, looking at them: neither everything nor nothing is hit.
    assert 0.05 < view.mask.mean() < 0.9
    with pytest.raises(BlendtruthError, match="give the scene once"):
        Renderer(FakeBackend).render_view("box.obj", scene="cube")


def test_a_camera_brings_its_size():
    from blendtruth.scenes.samplers import sample_cameras

    (camera,) = sample_cameras("orbit", 1, Intrinsics.from_fov(50.0, 80, 60), center=(0, 0, 0),
                               object_radius=1.0)  # fmt: skip
    with Renderer(FakeBackend) as r:
        view = r.render_view(camera, scene="box.obj", rgb=False)  # no width/height given
        assert view.depth.shape == (60, 80) and view.mask.any()
        assert view.meta["width"] == 80 and view.meta["height"] == 60
        with pytest.raises(BlendtruthError, match="camera is 80x60"):
            r.render_view(camera, scene="box.obj", width=32)
        with pytest.raises(BlendtruthError, match="camera must be a Camera"):
            r.render_view(42, scene="box.obj")


def test_render_views_loads_and_places_before_the_first_view():
    backend = CountingBackend()
    views = Renderer(backend).render_views("box.obj", ViewPlan(views=2))  # not iterated
    assert len(backend.loads) == 1  # a bad scene or plan raises at the call, not later
    assert len(list(views)) == 2


def test_render_views_of_an_ortho_plan_keep_the_camera_model():
    plan = ViewPlan(views=2, camera_model="ortho")
    with Renderer(FakeBackend) as r:
        views = list(r.render_views("box.obj", plan, width=40, height=40, rgb=False))
    assert [v.camera.model for v in views] == ["ortho", "ortho"]
    assert all(v.meta["camera_model"] == "ortho" for v in views)
    # Parallel rays: distance equals depth exactly (a pinhole's would be longer off-centre).
    for v in views:
        np.testing.assert_array_equal(v.distance, v.depth)
