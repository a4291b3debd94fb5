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
    distractor: bool = False  # a distractor object (annotations leave it out by default)

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


def mask_box(mask: np.ndarray) -> list[int] | None:
    """[x, y, w, h] of a bool H×W mask in pixels: x, y the left column and top row, w, h
    the pixel counts spanned (COCO's and BOP's box); None when the mask is empty."""
    cols, rows = np.flatnonzero(mask.any(axis=0)), np.flatnonzero(mask.any(axis=1))
    if not len(cols):
        return None
    return [int(cols[0]), int(rows[0]), int(cols[-1] - cols[0] + 1), int(rows[-1] - rows[0] + 1)]


def box_corners(lo: np.ndarray, hi: np.ndarray) -> np.ndarray:
    """8×3 corners of the box [lo, hi]; corner k takes hi on x if k & 1, y if k & 2,
    z if k & 4 (the order of ``box_corners_px``)."""
    k = np.arange(8)
    return np.stack([np.where(k & (1 << a), hi[a], lo[a]) for a in range(3)], axis=1)


def view_boxes(
    table: SceneTable,
    K: np.ndarray,  # noqa: N803
    cam_to_world: np.ndarray,
    pinhole: bool,
    instance: np.ndarray | None,
    amodal_ids: np.ndarray | None = None,
    amodal_masks: np.ndarray | None = None,
) -> dict[str, dict]:
    """Per instance id (str) of one view: ``object_to_camera`` (4×4, the instance's local
    frame -> camera frame, OpenCV axes, scene units, its scale included),
    ``bbox_visib`` (box of its pixels in the instance pass), ``bbox_amodal`` (box of its
    amodal mask), both [x, y, w, h] or None (empty, or pass not rendered), and
    ``box_corners_px`` (8×2: its local bounds' corners, :func:`box_corners` order, projected
    with K, pixel centres at +0.5; None unless pinhole and every corner is in front)."""
    world_to_cam = np.linalg.inv(np.asarray(cam_to_world, dtype=np.float64))
    amodal = {}
    if amodal_ids is not None and amodal_masks is not None:
        amodal = dict(zip(np.asarray(amodal_ids).tolist(), amodal_masks, strict=True))
    out: dict[str, dict] = {}
    for inst in table.instances:
        to_cam = world_to_cam @ np.array(inst.object_to_world, dtype=np.float64)
        corners_px = None
        if pinhole:
            local = box_corners(np.array(inst.bbox_min), np.array(inst.bbox_max))
            cam = local @ to_cam[:3, :3].T + to_cam[:3, 3]
            if (cam[:, 2] > 0).all():
                uvw = cam @ np.asarray(K, dtype=np.float64).T
                corners_px = (uvw[:, :2] / uvw[:, 2:]).round(6).tolist()
        out[str(inst.id)] = {
            "object_to_camera": to_cam.tolist(),
            "bbox_visib": None if instance is None else mask_box(instance == inst.id),
            "bbox_amodal": mask_box(amodal[inst.id]) if inst.id in amodal else None,
            "box_corners_px": corners_px,
        }
    return out
