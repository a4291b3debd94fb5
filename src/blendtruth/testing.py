"""A backend without Blender, for tests of everything above the renderers.

:class:`FakeBackend` ray casts (:mod:`blendtruth.raycast`, Embree) a closed-form scene of
two axis-aligned boxes, whatever scene it is asked to load (model files are not read: the
spec is only recorded in ``meta["scene"]``). Its ground truth is exact, so a test can
compare a writer's or an export's output with the boxes' analytic depth; its RGB is a
Lambert shading of the boxes' per-instance colours under a head light (not Cycles').

Use it through the ``backend`` argument of :class:`blendtruth.api.Renderer`,
:func:`blendtruth.multiview.render_model` or ``DatasetOptions(backend=FakeBackend)``.
"""

from __future__ import annotations

import numpy as np

from blendtruth.color import linear_to_srgb8
from blendtruth.geometry.camera import Intrinsics
from blendtruth.geometry.frames import look_at
from blendtruth.instances import InstanceInfo, MaterialInfo, SceneTable
from blendtruth.raycast.backend import RaycastBackend
from blendtruth.raycast.scene import TriangleScene, concatenate, from_arrays
from blendtruth.scene import SceneInfo, SceneSpec
from blendtruth.settings import RenderSettings
from blendtruth.view import Camera

# (min corner, max corner) of each box, world frame, scene units; instance i + 1.
BOXES = (
    ((-0.5, -0.4, -0.3), (0.1, 0.4, 0.3)),
    ((0.2, -0.2, -0.2), (0.5, 0.2, 0.2)),
)
# Linear RGB base colour of each box.
COLOURS = ((0.8, 0.3, 0.2), (0.2, 0.5, 0.8))
_FACES = np.array([[0, 2, 1], [0, 3, 2], [4, 5, 6], [4, 6, 7], [0, 1, 5], [0, 5, 4],
                   [2, 3, 7], [2, 7, 6], [1, 2, 6], [1, 6, 5], [0, 4, 7], [0, 7, 3]])  # fmt: skip


def box_triangles(lo, hi, instance: int) -> TriangleScene:
    """The 12 outward-facing, flat-shaded triangles of the box [lo, hi] (world frame)."""
    (x0, y0, z0), (x1, y1, z1) = lo, hi
    v = np.array([[x0, y0, z0], [x1, y0, z0], [x1, y1, z0], [x0, y1, z0],
                  [x0, y0, z1], [x1, y0, z1], [x1, y1, z1], [x0, y1, z1]], float)  # fmt: skip
    return from_arrays(v, _FACES, material=instance, instance=instance)


class FakeBackend(RaycastBackend):
    """The :data:`BOXES` scene, cast without Blender (see the module docstring)."""

    def load_scene(self, spec: SceneSpec) -> SceneInfo:
        spec = SceneSpec.parse(spec)
        corners = np.array([c for box in BOXES for c in box])
        lo, hi = corners.min(axis=0), corners.max(axis=0)
        center = (lo + hi) / 2
        radius = float(np.linalg.norm(hi - lo) / 2)
        self._spec = spec
        self._info = SceneInfo(center=center, radius=radius, extent=hi - lo, table=_table())
        self.reset()
        return self._info

    def load_triangles(self) -> TriangleScene:
        return concatenate([box_triangles(lo, hi, i + 1) for i, (lo, hi) in enumerate(BOXES)])

    def default_camera(self, settings: RenderSettings) -> Camera:
        """A camera 3 radii away on the +x, -y, +z diagonal, looking at the centre."""
        info = self.info
        eye = info.center + 3 * info.radius * np.array([1.0, -1.0, 1.0]) / np.sqrt(3)
        intr = Intrinsics.from_fov(50.0, settings.width, settings.height)
        return Camera(intr, look_at(eye, info.center, info.up))

    def rgb(self, camera: Camera, settings: RenderSettings) -> tuple:
        meta = {"rgb": None, "device": "cpu", "lighting": {"light": "head light (fake)"}}
        if not settings.rgb:
            return None, None, meta
        hit = self.caster(settings.threads).cast(camera, ("mask", "normal", "instance"))
        colours = np.array(((0.0, 0.0, 0.0),) + COLOURS)
        shade = np.abs(hit["normal"][..., 2:3].astype(np.float64))  # camera looks along +z
        linear = colours[hit["instance"]] * shade
        meta["rgb"] = {"engine": "fake: Lambert shading under a head light", "samples": 1}
        return linear_to_srgb8(linear), hit["mask"].astype(np.float32), meta


def _table() -> SceneTable:
    instances = tuple(
        InstanceInfo(
            id=i + 1,
            source="fake",
            object=f"box{i + 1}",
            mesh=f"box{i + 1}",
            materials=(i + 1,),
            semantic=i + 1,
            object_to_world=tuple(map(tuple, np.eye(4).tolist())),
            bbox_min=tuple(lo),
            bbox_max=tuple(hi),
        )  # fmt: skip
        for i, (lo, hi) in enumerate(BOXES)
    )
    materials = tuple(MaterialInfo(i + 1, f"colour{i + 1}", "fake") for i in range(len(BOXES)))
    return SceneTable(instances, materials)
