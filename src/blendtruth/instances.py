"""The per-scene id table: instances, materials and semantic classes (pure numpy, no bpy).

Ids are assigned once per loaded scene, in a deterministic order (source files in the
order given, then object names, then material slots), so they are the same in every view
of a scene and in every re-run. 0 always means "none" (background, or no material).

NOCS (``object_coords``): a hit ``p`` in its object's own (local, mesh-data) frame maps to
``(p_local - c) / d + 0.5`` where ``c`` is the centre of the object's local axis-aligned
bounding box and ``d`` its diagonal length, so the box fits in [0, 1]^3 with its aspect
ratio kept (Wang et al., CVPR 2019). The 4x4 ``world_to_nocs`` of each instance is stored.
"""

from __future__ import annotations

import fnmatch
import json
import os
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from blendtruth.errors import BlendtruthError

SEMANTIC_BY = ("model", "object", "material")


@dataclass(frozen=True)
class MaterialInfo:
    """Material ``id`` (1..M): Blender material ``name``, the file it came from, and its
    semantic class when classes are assigned by material."""

    id: int
    name: str
    source: str
    semantic: int = 0


@dataclass(frozen=True)
class InstanceInfo:
    """One rendered object: its ``id`` (1..N), where it came from and where it is.

    ``object_to_world``: 4x4 (object's local frame -> world, scene units);
    ``bbox_min``/``bbox_max``: local axis-aligned bounds of its evaluated mesh;
    ``materials``: material ids of its slots, in slot order.
    """

    id: int
    source: str
    object: str
    mesh: str
    materials: tuple[int, ...]
    semantic: int
    object_to_world: tuple[tuple[float, ...], ...]
    bbox_min: tuple[float, float, float]
    bbox_max: tuple[float, float, float]

    @property
    def world_to_nocs(self) -> np.ndarray:
        """4x4 mapping world points on this object to its NOCS frame (see module doc)."""
        lo, hi = np.array(self.bbox_min), np.array(self.bbox_max)
        diag = float(np.linalg.norm(hi - lo))
        if not diag > 0:
            diag = 1.0
        local_to_nocs = np.eye(4)
        local_to_nocs[:3, :3] /= diag
        local_to_nocs[:3, 3] = 0.5 - (lo + hi) / 2 / diag
        return local_to_nocs @ np.linalg.inv(np.array(self.object_to_world))


@dataclass(frozen=True)
class SceneTable:
    """Every instance and material of a scene, and how semantic ids were chosen."""

    instances: tuple[InstanceInfo, ...] = ()
    materials: tuple[MaterialInfo, ...] = ()
    semantic_by: str = "model"

    def lookup(self, attribute: str) -> np.ndarray:
        """int32 array L with L[instance id] = that instance's ``attribute`` (0 at 0)."""
        table = np.zeros(len(self.instances) + 1, dtype=np.int32)
        for inst in self.instances:
            table[inst.id] = getattr(inst, attribute)
        return table

    def semantic_of(self, instance: np.ndarray, material: np.ndarray | None) -> np.ndarray:
        """The semantic pass from the instance (and, by material, the material) pass."""
        if self.semantic_by == "material":
            if material is None:
                raise BlendtruthError("semantic ids by material need the material pass")
            table = np.zeros(len(self.materials) + 1, dtype=np.int32)
            for mat in self.materials:
                table[mat.id] = mat.semantic
            return table[material]
        return self.lookup("semantic")[instance]

    def object_coords(self, position: np.ndarray, instance: np.ndarray) -> np.ndarray:
        """float32 HxWx3 NOCS of each pixel's hit (0 where instance is 0)."""
        out = np.zeros(position.shape, dtype=np.float32)
        for inst in self.instances:
            sel = instance == inst.id
            if not sel.any():
                continue
            m = inst.world_to_nocs
            out[sel] = (position[sel].astype(np.float64) @ m[:3, :3].T + m[:3, 3]).astype(
                np.float32
            )
        return out

    def as_json(self) -> dict:
        """The table as written to ``instances.json``."""
        return {
            "note": (
                "ids are stable across the views of a scene and across re-runs; 0 = none. "
                "world_to_nocs maps world points on an instance to its object_coords"
            ),
            "semantic_by": self.semantic_by,
            "instances": [
                {**asdict(inst), "world_to_nocs": inst.world_to_nocs.tolist()}
                for inst in self.instances
            ],
            "materials": [asdict(m) for m in self.materials],
        }


def semantic_classes(
    names: list[tuple[str, str]], by: str, mapping: dict[str, int] | None
) -> list[int]:
    """Semantic id per entry from (source, name) pairs: instances (name = object name), or
    materials (name = material name) when ``by`` = "material".

    Default classes: "model": one class per distinct source file, numbered in order of
    appearance; "object" / "material": the entry's own id (its 1-based position). A
    ``mapping`` {glob pattern: class id} overrides: the first pattern matching the source's
    file name, the source path or the name wins.
    """
    if by not in SEMANTIC_BY:
        raise BlendtruthError(f"--semantic must be one of {', '.join(SEMANTIC_BY)}; got {by!r}")
    out: list[int] = []
    per_source: dict[str, int] = {}
    for index, (source, name) in enumerate(names, start=1):
        cls = per_source.setdefault(source, len(per_source) + 1) if by == "model" else index
        for pattern, value in (mapping or {}).items():
            texts = (Path(source).name, source, name)
            if any(fnmatch.fnmatchcase(text, pattern) for text in texts):
                cls = value
                break
        out.append(cls)
    return out


def read_semantic_map(path: str | os.PathLike) -> dict[str, int]:
    """``--semantic-map FILE``: a JSON object {glob pattern: class id >= 1}."""
    path = Path(path)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise BlendtruthError(f"--semantic-map {path}: not a readable JSON file ({exc})") from None
    if not isinstance(data, dict) or not all(
        isinstance(k, str) and isinstance(v, int) and not isinstance(v, bool) and v >= 1
        for k, v in data.items()
    ):
        raise BlendtruthError(
            f"--semantic-map {path}: must be a JSON object of glob pattern -> class id >= 1"
        )
    return data
