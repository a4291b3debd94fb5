"""Multi-object scenes without bpy: what is placed where, the seeded initial layout, and
the scene file that re-renders a settled scene exactly (see docs/scenes.md).

Frames: world is Blender's (Z up, gravity -Z, scene units = metres for the physics);
``model_to_world`` (4×4) maps a model file's own coordinates (as trimesh reads them) to
the world and includes that placement's normalisation, scale, rotation and translation.
"""

from __future__ import annotations

import json
import math
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from blendtruth.errors import BlendtruthError

SCENE_FORMAT = "blendtruth-scene"
SCENE_VERSION = 1
COLLISION_SHAPES = ("convex", "mesh")


@dataclass(frozen=True)
class Placement:
    """One placed model: file, 4×4 model_to_world (tuple rows, hashable), the bounding
    radius ``scale`` it was normalised to (scene units) and its Blender object names."""

    model: Path
    model_to_world: tuple[tuple[float, ...], ...]
    scale: float
    objects: tuple[str, ...] = ()
    distractor: bool = False  # drawn from the distractor pool (multiscene.py)

    def __post_init__(self) -> None:
        object.__setattr__(self, "model", Path(self.model))
        m = np.asarray(self.model_to_world, dtype=np.float64)
        if m.shape != (4, 4) or not np.isfinite(m).all() or not np.array_equal(m[3], [0, 0, 0, 1]):
            raise BlendtruthError(f"{self.model}: model_to_world must be a finite 4x4 affine")
        object.__setattr__(self, "model_to_world", tuple(tuple(float(x) for x in r) for r in m))
        object.__setattr__(self, "objects", tuple(self.objects))

    @property
    def matrix(self) -> np.ndarray:
        return np.array(self.model_to_world, dtype=np.float64)


@dataclass(frozen=True)
class Ground:
    """A square plane of side ``size`` in z = 0, centred on the origin, facing +Z.
    ``in_truth``: the plane is part of the ground truth (depth, normals, masks, ids);
    off, ground-truth rays pass through it while the RGB image still shows it."""

    size: float
    in_truth: bool = True

    def __post_init__(self) -> None:
        if not (math.isfinite(self.size) and self.size > 0):
            raise BlendtruthError(f"--ground-size must be a number > 0, got {self.size}")


@dataclass(frozen=True)
class LayoutOptions:
    """How ``blendtruth scene`` lays out and settles N models.

    ``scale_range``: each model's bounding radius (scene units) is drawn uniformly from
    it; ``upright``: rotate only about world Z (Y-up formats first stood up, +Y -> +Z),
    else uniformly random rotations; ``ground``: drop onto a plane and settle with
    Blender's rigid-body simulation, else float in a volume with no physics;
    ``ground_size``: None = 20 × the spawn area's half-width; ``collision``: "convex"
    (each model's convex hull, Bullet's robust shape) or "mesh" (its triangles)."""

    objects: int = 5
    seed: int = 0
    scale_range: tuple[float, float] = (0.5, 1.0)
    upright: bool = False
    ground: bool = True
    ground_size: float | None = None
    ground_in_truth: bool = True
    collision: str = "convex"
    max_frames: int = 1000
    # Domain randomisation (scenes/randomize.py); None = none.
    randomize: Any = None
    # Distractors: ``distractor_count`` models from this pool, dropped onto the pile.
    distractors: tuple[Path, ...] = ()
    distractor_count: int = 0
    # Settle inside four walls around the spawns (blender/physics.py), not on an open plane.
    container: bool = False

    def __post_init__(self) -> None:
        if isinstance(self.objects, bool) or not isinstance(self.objects, int):
            raise BlendtruthError(f"--objects must be a whole number >= 1, got {self.objects!r}")
        if not 1 <= self.objects <= 200:
            raise BlendtruthError(f"--objects must be in [1, 200], got {self.objects}")
        lo, hi = self.scale_range
        if not (math.isfinite(lo) and math.isfinite(hi) and 0 < lo <= hi):
            raise BlendtruthError(f"--scale must be 'MIN,MAX' with 0 < MIN <= MAX, got {lo},{hi}")
        if self.collision not in COLLISION_SHAPES:
            raise BlendtruthError(f"--collision must be one of {', '.join(COLLISION_SHAPES)}")
        if self.ground_size is not None:
            Ground(self.ground_size)
        if not isinstance(self.seed, int) or not 0 <= self.seed < 2**31:
            raise BlendtruthError(f"--seed must be a whole number in [0, 2^31), got {self.seed!r}")
        if self.max_frames < 10:
            raise BlendtruthError(f"--max-frames must be >= 10, got {self.max_frames}")


@dataclass(frozen=True)
class Spawn:
    """The seeded starting state of one model: which pool file, its bounding radius
    ``scale``, rotation (3×3) and the world position of its bounding-sphere centre."""

    model: Path
    scale: float
    rotation: np.ndarray
    position: np.ndarray
    stand_up: bool = False


def initial_layout(pool: list[Path], options: LayoutOptions, up_axes: list[str]) -> list[Spawn]:
    """N spawns from ``numpy.random.default_rng(seed)``: models drawn from ``pool`` with
    replacement, radii from ``scale_range``, rotations, and positions whose bounding
    spheres do not overlap (rejection sampling). With a ground, spheres start above the
    plane in a column of half-width w = 1.5 · max radius · √N; without, inside a cube of
    half-width 2 · max radius · ∛N around the origin. ``up_axes[i]`` is "+y" or "+z" for
    ``pool[i]`` (used by ``upright``)."""
    if not pool:
        raise BlendtruthError("the model pool is empty")
    rng = np.random.default_rng(options.seed)
    n = options.objects
    smax = options.scale_range[1]
    picks = rng.integers(len(pool), size=n)
    scales = rng.uniform(*options.scale_range, size=n)
    rotations = [_random_rotation(rng, options.upright) for _ in range(n)]
    if options.ground:
        half = 1.5 * smax * math.sqrt(n)
    else:
        half = 2.0 * smax * n ** (1 / 3)
    centres: list[np.ndarray] = []
    for i in range(n):
        s = scales[i]
        for attempt in range(100_000):
            grow = 1.0 + attempt // 1000  # widen the region if it is too crowded
            xy = (
                rng.uniform(-half * grow + s, half * grow - s, size=2)
                if half * grow > s
                else [0, 0]
            )
            if options.ground:
                z = s * 1.01 + rng.uniform(0.0, 2.0 * smax * n * grow)
            else:
                z = rng.uniform(-half * grow + s, half * grow - s) if half * grow > s else 0.0
            p = np.array([xy[0], xy[1], z], dtype=np.float64)
            if all(
                np.linalg.norm(p - c) > s + scales[j] + 0.02 * smax for j, c in enumerate(centres)
            ):
                centres.append(p)
                break
        else:  # pragma: no cover - the region grows until there is room
            raise BlendtruthError("could not place the models without overlap")
    return [
        Spawn(
            pool[picks[i]],
            float(scales[i]),
            rotations[i],
            centres[i],
            stand_up=options.upright and up_axes[picks[i]] == "+y",
        )
        for i in range(n)
    ]


def default_ground_size(options: LayoutOptions) -> float:
    """Side of the ground plane: ``ground_size`` or 20 × the spawn column's half-width."""
    if options.ground_size is not None:
        return float(options.ground_size)
    return 20.0 * 1.5 * options.scale_range[1] * math.sqrt(options.objects)


def _random_rotation(rng: np.random.Generator, upright: bool) -> np.ndarray:
    """Uniform on SO(3) (a normalised Gaussian quaternion) or a uniform turn about Z."""
    if upright:
        a = rng.uniform(0.0, 2.0 * math.pi)
        c, s = math.cos(a), math.sin(a)
        return np.array([[c, -s, 0.0], [s, c, 0.0], [0.0, 0.0, 1.0]])
    w, x, y, z = (q := rng.normal(size=4)) / np.linalg.norm(q)
    return np.array(
        [
            [1 - 2 * (y * y + z * z), 2 * (x * y - w * z), 2 * (x * z + w * y)],
            [2 * (x * y + w * z), 1 - 2 * (x * x + z * z), 2 * (y * z - w * x)],
            [2 * (x * z - w * y), 2 * (y * z + w * x), 1 - 2 * (x * x + y * y)],
        ]
    )


@dataclass(frozen=True)
class SceneFile:
    """The content of ``scene.json``: everything needed to rebuild the settled scene."""

    placements: tuple[Placement, ...]
    ground: Ground | None
    seed: int
    layout: dict[str, Any] = field(default_factory=dict)
    physics: dict[str, Any] = field(default_factory=dict)
    randomization: dict[str, Any] | None = None


def scene_file_json(scene: SceneFile) -> str:
    """``scene`` as the text of a scene.json (written atomically by
    :func:`blendtruth.writers.scene_file.write_scene_file`). Floats are written with repr,
    so reading the file back gives bit-identical matrices."""
    data = {
        "format": SCENE_FORMAT,
        "version": SCENE_VERSION,
        "seed": scene.seed,
        "frames": "world: Blender's (Z up, gravity -Z); model_to_world maps the model "
        "file's own coordinates to world (normalisation, scale, rotation, translation)",
        "ground": None
        if scene.ground is None
        else {
            "size": scene.ground.size,
            "in_truth": scene.ground.in_truth,
            "plane": "z = 0, centred on the origin, normal +Z",
        },
        "objects": [
            {
                "model": str(p.model),
                "scale": p.scale,
                "model_to_world": [list(r) for r in p.model_to_world],
                "blender_objects": list(p.objects),
                **({"distractor": True} if p.distractor else {}),
            }
            for p in scene.placements
        ],
        "layout": scene.layout,
        "physics": scene.physics,
    }
    if scene.randomization is not None:
        data["randomization"] = scene.randomization
    return json.dumps(data, indent=1) + "\n"


def read_scene_file(path: str | os.PathLike) -> SceneFile:
    """Read a file written by :func:`write_scene_file`; relative model paths are taken
    relative to the file's folder. Raises BlendtruthError naming the file."""
    path = Path(path)
    try:
        data = json.loads(path.read_text())
    except FileNotFoundError:
        raise BlendtruthError(f"--scene-file {path}: no such file") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise BlendtruthError(f"--scene-file {path}: not a readable JSON file ({exc})") from None
    if not isinstance(data, dict) or data.get("format") != SCENE_FORMAT:
        raise BlendtruthError(f"--scene-file {path}: not a blendtruth scene file")
    if data.get("version") != SCENE_VERSION:
        raise BlendtruthError(f"--scene-file {path}: unsupported version {data.get('version')!r}")
    try:
        placements = []
        for obj in data["objects"]:
            model = Path(obj["model"])
            model = model if model.is_absolute() else path.parent / model
            placements.append(
                Placement(
                    model,
                    obj["model_to_world"],
                    float(obj["scale"]),
                    obj["blender_objects"],
                    bool(obj.get("distractor", False)),
                )  # fmt: skip
            )
        g = data["ground"]
        ground = None if g is None else Ground(float(g["size"]), bool(g["in_truth"]))
        seed = int(data["seed"])
    except (KeyError, TypeError, ValueError) as exc:
        raise BlendtruthError(f"--scene-file {path}: malformed ({exc!r})") from None
    if not placements:
        raise BlendtruthError(f"--scene-file {path}: no objects")
    return SceneFile(
        tuple(placements), ground, seed, data.get("layout", {}), data.get("physics", {}),
        data.get("randomization"),
    )  # fmt: skip
