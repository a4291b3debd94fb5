"""What to render: a scene description (no bpy), and what loading it tells us."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from blendtruth.errors import BlendtruthError
from blendtruth.instances import SEMANTIC_BY, SceneTable
from blendtruth.scenes.lights import HDRI_LIGHTS, check_hdri_file, parse_background, parse_rotation
from blendtruth.scenes.placement import Ground, Placement

PRIMITIVES = ("cube", "uv_sphere", "monkey", "plane")
LIGHTS = ("studio", "sun", "ambient", "factory")
MATERIALS = ("keep", "clay")


@dataclass(frozen=True)
class SceneSpec:
    """A scene: Blender's factory scene ("default"), a built-in primitive, or model files.

    ``normalize``: centre the models' bounding box at the origin and scale them into the
    unit sphere (the applied transform is reported in :class:`SceneInfo`); off, the world
    frame is the model files' own coordinates and units. ``light``: "studio" (ambient world
    plus a key light that follows the camera), "sun" (ambient plus a sun from the up axis),
    "ambient" (uniform white world only) or "factory" (Blender's startup point light).
    ``material``: "keep" the files' materials, or "clay" (one uniform diffuse grey).
    ``semantic``: how semantic class ids are chosen ("model": one per source file,
    "object": one per instance, "material": one per material); ``semantic_map``:
    (glob pattern, class id) pairs overriding them (see :mod:`blendtruth.instances`).

    Image-based light (docs/scenes.md): ``light`` "hdri:NAME" (one of the HDRIs the bpy
    wheel ships, :data:`blendtruth.scenes.lights.HDRI_NAMES`) or "hdri" with ``hdri`` an .exr/.hdr
    file; ``hdri_strength`` scales its radiance; ``hdri_rotation`` is degrees about world
    +Z or "random" / "random-per-view" (:func:`blendtruth.scenes.lights.rotation_for_view`).
    ``background`` of the RGB image: "world", "hdri", "transparent" or a colour
    (:func:`blendtruth.scenes.lights.parse_background`). None of these changes the ground truth.
    """

    models: tuple[Path, ...] = ()
    primitive: str | None = None
    normalize: bool = True
    light: str = "studio"
    material: str = "keep"
    hdri: Path | None = None
    hdri_strength: float = 1.0
    hdri_rotation: float | str = 0.0
    background: str = "world"
    # A multi-object scene (blendtruth.scenes.placement): placed models and an optional ground.
    placements: tuple[Placement, ...] = ()
    ground: Ground | None = None

    semantic: str = "model"
    semantic_map: tuple[tuple[str, int], ...] = ()
    # Seeded domain randomisation drawn for a multi-object scene (scenes/randomize.py), as
    # canonical JSON so the spec stays hashable; "" = none.
    randomization: str = ""

    def __post_init__(self) -> None:
        object.__setattr__(self, "models", tuple(Path(p) for p in self.models))
        object.__setattr__(self, "semantic_map", tuple(dict(self.semantic_map).items()))
        if self.semantic not in SEMANTIC_BY:
            raise BlendtruthError(
                f"--semantic must be one of {', '.join(SEMANTIC_BY)}; got {self.semantic!r}"
            )
        object.__setattr__(self, "placements", tuple(self.placements))
        if self.placements and (self.models or self.primitive):
            raise BlendtruthError("give placements or model files/a primitive, not both")
        if self.ground is not None and not self.placements:
            raise BlendtruthError("a ground plane needs placed models (blendtruth scene)")
        _check_lighting(self)
        if self.models and self.primitive:
            raise BlendtruthError("give model files or a primitive, not both")
        if self.primitive is not None and self.primitive not in PRIMITIVES:
            raise BlendtruthError(
                f"unknown primitive {self.primitive!r}; choose from {', '.join(PRIMITIVES)}"
            )
        if self.light not in LIGHTS + HDRI_LIGHTS + ("hdri",):
            raise BlendtruthError(
                f"--light must be one of {', '.join(LIGHTS + HDRI_LIGHTS)}; got {self.light!r}"
            )
        if self.material not in MATERIALS:
            raise BlendtruthError(
                f"--material must be one of {', '.join(MATERIALS)}; got {self.material!r}"
            )

    @property
    def is_factory(self) -> bool:
        """The tutorial's scene, unchanged: no models, no primitive."""
        return not self.models and self.primitive is None and not self.placements

    @classmethod
    def parse(cls, scene: str | Path | SceneSpec | list | tuple) -> SceneSpec:
        """ "default", a primitive name, a model path, or a list of model paths."""
        if isinstance(scene, SceneSpec):
            return scene
        if isinstance(scene, list | tuple):
            return cls(models=tuple(Path(p) for p in scene))
        if scene == "default":
            return cls(light="factory", normalize=False)
        if isinstance(scene, str) and scene in PRIMITIVES:
            return cls(primitive=scene, light="factory", normalize=False)
        return cls(models=(Path(scene),))


def _check_lighting(spec: SceneSpec) -> None:
    if spec.hdri is not None:
        object.__setattr__(spec, "hdri", Path(spec.hdri))
        check_hdri_file(spec.hdri)
        if spec.light not in ("hdri", "studio"):
            raise BlendtruthError(f"--hdri {spec.hdri} and --light {spec.light} exclude each other")
        object.__setattr__(spec, "light", "hdri")
    elif spec.light == "hdri":
        raise BlendtruthError("--light hdri needs --hdri FILE (or use --light hdri:NAME)")
    strength = spec.hdri_strength
    if isinstance(strength, bool) or not isinstance(strength, int | float) or not strength >= 0:
        raise BlendtruthError(f"--hdri-strength must be a number >= 0, got {strength!r}")
    if not np.isfinite(strength):
        raise BlendtruthError(f"--hdri-strength must be finite, got {strength!r}")
    object.__setattr__(spec, "hdri_strength", float(strength))
    object.__setattr__(spec, "hdri_rotation", parse_rotation(spec.hdri_rotation))
    background = parse_background(spec.background) if isinstance(spec.background, str) else None
    if background is None:
        raise BlendtruthError(f"--background must be text, got {spec.background!r}")
    if background == "hdri" and not spec.light.startswith("hdri"):
        raise BlendtruthError("--background hdri needs HDRI lighting (--light hdri:NAME or --hdri)")


@dataclass(frozen=True)
class SceneInfo:
    """What a loaded scene looks like, in the world frame (see docs/conventions.md).

    ``center``/``radius``: bounding sphere of the renderable geometry (world units);
    ``model_to_world``: 4×4 applied to the model files' coordinates (identity when not
    normalised); ``up``: the world axis used as "up" for camera placement.
    """

    center: np.ndarray
    radius: float
    model_to_world: np.ndarray = field(default_factory=lambda: np.eye(4))
    up: np.ndarray = field(default_factory=lambda: np.array([0.0, 0.0, 1.0]))
    # Side lengths (3,) of the world-space bounding box of the geometry, when known.
    extent: np.ndarray | None = None
    # Bounding radius about ``center`` of everything, when larger than ``radius`` (a
    # ground plane): used for clipping, while ``radius`` frames the objects.
    scene_radius: float | None = None
    table: SceneTable = field(default_factory=SceneTable)

    def clip_range(self, camera_position: np.ndarray) -> tuple[float, float]:
        """(clip_start, clip_end) of a camera at ``camera_position`` (world): the near
        plane at 1e-4 of the bounding radius (camera z for pinhole and orthographic
        cameras, ray distance for panoramic ones, as Cycles clips) and a far plane beyond
        everything. Cycles and the ray caster use the same near plane."""
        eye = float(np.linalg.norm(np.asarray(camera_position) - self.center))
        far = self.scene_radius or self.radius
        return 1e-4 * self.radius, 2.0 * (eye + far)
