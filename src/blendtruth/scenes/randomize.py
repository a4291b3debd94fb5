"""Seeded domain randomisation of a multi-object scene: the parameters, drawn without bpy.

``--randomize PARTS`` (``materials``, ``lights``, ``hdri``, ``camera`` or ``all``) draws,
from its own ``numpy.random.default_rng`` stream (seeded from the scene seed and the word
"randomize", so the layout draws, and hence the placed objects, are the same with or
without it):

- materials: per placement one Principled BSDF: ``base_color`` (linear RGB, each channel
  uniform in [0.05, 0.95]), ``roughness`` uniform in [0, 1], ``metallic`` 0 or, with
  probability 0.3, uniform in [0.5, 1], ``texture`` one of none / noise / voronoi /
  checker (Blender's own procedural nodes on object coordinates, ``texture_scale``
  uniform in [2, 12]) mixing ``base_color`` with ``second_color``;
- lights: ``count`` uniform in ``light_count``, each of a type drawn from ``light_types``
  (point, spot, area, sun), at ``position`` on the upper half of a shell of radius
  2.5-4 × the objects' spread around their centre, aimed at the centre, ``color``
  (linear RGB, a warm-to-cool white: each channel uniform in [0.7, 1]) and ``strength``
  (W; W/m² for a sun: the drawn value / 200) uniform in ``light_strength``; and a
  ``ceiling``: a square area light of side 4 × spread, 4 × spread above the centre,
  facing down (the emissive ceiling of BlenderProc's BOP recipe, as a light: camera
  rays do not see it), a near-white colour and 2 × a power drawn from ``light_strength``;
- hdri: one of the HDRIs the bpy wheel ships (``name``), ``rotation_deg`` about world +Z
  uniform in [0, 360) and ``strength`` uniform in [0.5, 1.5]; it replaces the ``--light``
  preset (its lamps included), the randomised lights are added to it;
- camera: every view's camera turned about its centre by a random axis and an angle
  uniform in [0, ``camera_jitter_deg``] (:func:`jitter_poses`; this one changes the
  ground truth too, as the camera moves).

The drawn values are stored in ``scene.json`` (``randomization``) and applied from there
(blender/randomize.py), so a saved scene re-renders bit-identically. Materials, lights and
the HDRI change only the RGB image: every ground-truth pass is the same.
"""

from __future__ import annotations

import hashlib
import math
from dataclasses import dataclass

import numpy as np

from blendtruth.errors import BlendtruthError
from blendtruth.scenes.lights import HDRI_NAMES

PARTS = ("materials", "lights", "hdri", "camera")
LIGHT_TYPES = ("point", "spot", "area", "sun")
TEXTURES = ("none", "noise", "voronoi", "checker")


@dataclass(frozen=True)
class RandomizeOptions:
    """What to randomise and in which ranges (see the module docstring)."""

    parts: tuple[str, ...] = ()
    light_count: tuple[int, int] = (1, 3)
    light_strength: tuple[float, float] = (50.0, 300.0)
    light_types: tuple[str, ...] = LIGHT_TYPES
    camera_jitter_deg: float = 5.0

    def __post_init__(self) -> None:
        bad = [p for p in self.parts if p not in PARTS]
        if bad:
            raise BlendtruthError(
                f"--randomize: unknown part {', '.join(bad)}; choose from "
                f"{', '.join(PARTS)} or all (comma-separated)"
            )
        lo, hi = self.light_count
        if not (isinstance(lo, int) and isinstance(hi, int) and 0 <= lo <= hi <= 16):
            raise BlendtruthError(f"--light-count must be 'MIN,MAX' in [0, 16], got {lo},{hi}")
        a, b = self.light_strength
        if not (math.isfinite(a) and math.isfinite(b) and 0 <= a <= b):
            raise BlendtruthError("--light-strength must be 'MIN,MAX' with 0 <= MIN <= MAX")
        if not (math.isfinite(self.camera_jitter_deg) and 0 <= self.camera_jitter_deg <= 90):
            raise BlendtruthError(
                f"--camera-jitter must be in [0, 90] degrees, got {self.camera_jitter_deg}"
            )
        bad = [t for t in self.light_types if t not in LIGHT_TYPES]
        if bad or not self.light_types:
            raise BlendtruthError(
                f"--light-types: unknown {', '.join(bad) or 'empty'}; "
                f"choose from {', '.join(LIGHT_TYPES)}"
            )


def parse_parts(text: str | None) -> tuple[str, ...]:
    """'materials,lights' / 'all' / None -> the parts."""
    if not text:
        return ()
    names = [n.strip() for n in text.split(",") if n.strip()]
    return PARTS if names == ["all"] else tuple(dict.fromkeys(names))


def randomize_seed(seed: int) -> int:
    return int(hashlib.sha256(f"{seed}:randomize".encode()).hexdigest()[:8], 16)


def draw(options: RandomizeOptions, seed: int, transforms: list[np.ndarray]) -> dict:
    """The randomisation record of a scene whose placements have these 4×4
    model_to_world ``transforms`` (lights are placed around their translations)."""
    rng = np.random.default_rng(randomize_seed(seed))
    out: dict = {"seed": randomize_seed(seed), "parts": list(options.parts)}
    if "materials" in options.parts:
        out["materials"] = [_material(rng) for _ in transforms]
    if "hdri" in options.parts:
        out["hdri"] = {
            "name": HDRI_NAMES[int(rng.integers(len(HDRI_NAMES)))],
            "rotation_deg": float(rng.uniform(0.0, 360.0)),
            "strength": float(rng.uniform(0.5, 1.5)),
        }
    if "camera" in options.parts:
        out["camera"] = {"jitter_deg": options.camera_jitter_deg, "seed": int(rng.integers(2**31))}
    if "lights" in options.parts:
        centres = np.array([np.asarray(m)[:3, 3] for m in transforms])
        centre = centres.mean(axis=0)
        spread = max(float(np.linalg.norm(centres - centre, axis=1).max()), 1.0)
        count = int(rng.integers(options.light_count[0], options.light_count[1] + 1))
        out["lights"] = [_light(rng, options, centre, spread) for _ in range(count)]
        out["ceiling"] = {
            "position": (centre + [0.0, 0.0, 4.0 * spread]).tolist(),
            "size": 4.0 * spread,
            "color": rng.uniform(0.7, 1.0, 3).tolist(),
            "strength": float(rng.uniform(*options.light_strength)) * 2.0,
        }
    return out


def _material(rng: np.random.Generator) -> dict:
    metallic = float(rng.uniform(0.5, 1.0)) if rng.random() < 0.3 else 0.0
    return {
        "base_color": rng.uniform(0.05, 0.95, 3).tolist(),
        "roughness": float(rng.uniform(0.0, 1.0)),
        "metallic": metallic,
        "texture": TEXTURES[int(rng.integers(len(TEXTURES)))],
        "texture_scale": float(rng.uniform(2.0, 12.0)),
        "second_color": rng.uniform(0.05, 0.95, 3).tolist(),
    }


def _light(rng, options: RandomizeOptions, centre: np.ndarray, spread: float) -> dict:
    kind = options.light_types[int(rng.integers(len(options.light_types)))]
    azimuth = rng.uniform(0.0, 2.0 * math.pi)
    elevation = math.asin(rng.uniform(0.2, 1.0))  # upper half, not grazing
    r = spread * rng.uniform(2.5, 4.0)
    direction = np.array(
        [math.cos(elevation) * math.cos(azimuth), math.cos(elevation) * math.sin(azimuth),
         math.sin(elevation)]
    )  # fmt: skip
    strength = float(rng.uniform(*options.light_strength))
    return {
        "type": kind,
        "position": (centre + r * direction).tolist(),
        "target": centre.tolist(),
        "color": rng.uniform(0.7, 1.0, 3).tolist(),
        "strength": strength / 200.0 if kind == "sun" else strength,
    }


def jitter_poses(poses: list[np.ndarray], record: dict) -> list[np.ndarray]:
    """4×4 cam_to_world poses turned about their own centre by view ``i``'s rotation:
    a uniform random axis and an angle uniform in [0, jitter_deg], drawn from
    ``default_rng([seed, i])`` (so each view's jitter depends only on its index)."""
    out = []
    for i, pose in enumerate(poses):
        rng = np.random.default_rng([record["seed"], i])
        axis = rng.normal(size=3)
        axis /= np.linalg.norm(axis)
        angle = math.radians(rng.uniform(0.0, record["jitter_deg"]))
        k = np.array([[0, -axis[2], axis[1]], [axis[2], 0, -axis[0]], [-axis[1], axis[0], 0]])
        turn = np.eye(3) + math.sin(angle) * k + (1 - math.cos(angle)) * (k @ k)
        new = np.array(pose, dtype=np.float64)
        new[:3, :3] = turn @ new[:3, :3]
        out.append(new)
    return out
