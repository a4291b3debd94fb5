"""What the BOP and COCO writers read from a render folder: its id table and each view's
instance pass and amodal masks, checked, with one-line errors for what is missing.

Annotated instances: every instance whose ``source`` is a model file, i.e. not the
ground plane (source "ground") and not a distractor (``distractor`` true in the table)
unless asked for.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from blendtruth import amodal
from blendtruth.errors import BlendtruthError
from blendtruth.exports.source import RenderFolder, read_json

NOT_OBJECTS = ("ground", "")


@dataclass(frozen=True)
class AnnotatedView:
    """One view: ``instance`` (int32 H×W, 0 = none), amodal masks by instance id (bool
    H×W; empty dict without the amodal pass), K (pixel centres at +0.5), cam_to_world
    (OpenCV axes), depth (float32 H×W, scene units, 0 = none), rgb (uint8 H×W×3 or None)."""

    name: str
    instance: np.ndarray
    amodal: dict[int, np.ndarray]
    K: np.ndarray
    cam_to_world: np.ndarray
    depth: np.ndarray
    rgb: np.ndarray | None
    model: str


def instance_table(folder: RenderFolder, fmt: str) -> list[dict]:
    """The instances of ``instances.json`` to annotate (see the module docstring)."""
    path = folder.path / "instances.json"
    if not path.is_file():
        raise BlendtruthError(
            f"{folder.path}: no instances.json; export {fmt} needs a render with instance ids"
        )
    rows = read_json(path).get("instances")
    if not isinstance(rows, list):
        raise BlendtruthError(f"{path}: no 'instances' list")
    return rows


def annotated(rows: list[dict], distractors: bool) -> list[dict]:
    """The rows that get annotations: objects, distractors only when asked."""
    return [
        r
        for r in rows
        if r.get("source", "") not in NOT_OBJECTS and (distractors or not r.get("distractor"))
    ]


def views(folder: RenderFolder, fmt: str, need_amodal: bool = False) -> Iterator[AnnotatedView]:
    """Every view of ``folder`` with its instance pass (and amodal masks when needed)."""
    for name in folder.names:
        arrays = folder.arrays(name)
        where = folder.view_path(name)
        if "instance" not in arrays:
            raise BlendtruthError(
                f"{where}: no instance pass; export {fmt} needs a render with --passes instance"
            )
        height, width = arrays["instance"].shape
        masks: dict[int, np.ndarray] = {}
        if "amodal" in arrays:
            unpacked = amodal.unpack(arrays["amodal"], height, width)
            masks = dict(zip(arrays["amodal_ids"].tolist(), unpacked, strict=True))
        elif need_amodal:
            raise BlendtruthError(
                f"{where}: no amodal masks; export {fmt} needs a render with --amodal"
            )
        model = json.loads(str(arrays["meta"])).get("camera_model", "pinhole")
        yield AnnotatedView(
            name, arrays["instance"], masks, arrays["K"], arrays["cam_to_world"],
            arrays["depth"], arrays.get("rgb"), model,
        )  # fmt: skip


def image_file(folder: RenderFolder, name: str) -> Path | None:
    """``rgb/<name>.png`` of the folder, when rendered."""
    path = folder.layout.view(name).rgb
    return path if path.is_file() else None
