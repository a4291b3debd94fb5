"""What to render: a scene description (no bpy), and what loading it tells us."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from blendtruth.errors import BlendtruthError
from blendtruth.instances import SEMANTIC_BY, SceneTable

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
    """

    models: tuple[Path, ...] = ()
    primitive: str | None = None
    normalize: bool = True
    light: str = "studio"
    material: str = "keep"
    semantic: str = "model"
    semantic_map: tuple[tuple[str, int], ...] = ()

    def __post_init__(self) -> None:
        object.__setattr__(self, "models", tuple(Path(p) for p in self.models))
        object.__setattr__(self, "semantic_map", tuple(dict(self.semantic_map).items()))
        if self.semantic not in SEMANTIC_BY:
            raise BlendtruthError(
                f"--semantic must be one of {', '.join(SEMANTIC_BY)}; got {self.semantic!r}"
            )
        if self.models and self.primitive:
            raise BlendtruthError("give model files or a primitive, not both")
        if self.primitive is not None and self.primitive not in PRIMITIVES:
            raise BlendtruthError(
                f"unknown primitive {self.primitive!r}; choose from {', '.join(PRIMITIVES)}"
            )
        if self.light not in LIGHTS:
            raise BlendtruthError(f"--light must be one of {', '.join(LIGHTS)}; got {self.light!r}")
        if self.material not in MATERIALS:
            raise BlendtruthError(
                f"--material must be one of {', '.join(MATERIALS)}; got {self.material!r}"
            )

    @property
    def is_factory(self) -> bool:
        """The tutorial's scene, unchanged: no models, no primitive."""
        return not self.models and self.primitive is None

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
    table: SceneTable = field(default_factory=SceneTable)
