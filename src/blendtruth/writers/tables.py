"""``instances.json``: the scene's id table, written next to its views."""

from __future__ import annotations

import json
import os
from collections.abc import Mapping

from blendtruth.conventions import CONVENTIONS_VERSION
from blendtruth.instances import SceneTable
from blendtruth.writers.atomic import atomic_open


def write_instances_json(
    path: str | os.PathLike,
    table: SceneTable,
    visible_pixels: Mapping[str, Mapping[int, int]] | None = None,
    amodal: Mapping[str, Mapping[str, dict]] | None = None,
    boxes: Mapping[str, Mapping[str, dict]] | None = None,
) -> None:
    """Write the id table (instances, materials, semantic classes, NOCS mappings).
    ``visible_pixels``: per view name, the pixel count of each instance id in that view;
    ``amodal``: per view name, ``meta["amodal"]`` of that view (visible fractions);
    ``boxes``: per view name, ``meta["instances"]`` of that view (boxes, poses)."""
    data = {"conventions_version": CONVENTIONS_VERSION, **table.as_json()}
    for inst in data["instances"]:
        if visible_pixels is not None:
            inst["pixels"] = {
                view: int(counts.get(inst["id"], 0)) for view, counts in visible_pixels.items()
            }
        if amodal is not None:
            inst["visible_fraction"] = {
                view: per.get(str(inst["id"]), {}).get("visible_fraction")
                for view, per in amodal.items()
            }
        if boxes is not None:
            inst["views"] = {view: per.get(str(inst["id"])) for view, per in boxes.items()}
    with atomic_open(path) as f:
        f.write(json.dumps(data, indent=1).encode())
