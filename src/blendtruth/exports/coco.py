"""COCO instances JSON: one file for a render or dataset folder (``coco/instances.json``).

``images``: one per view (``id`` from 1 in folder then view order; ``file_name`` the RGB
PNG relative to the ``coco/`` folder's parent, "" without RGB; ``width``, ``height``;
``blendtruth_view`` = "<model id>/<view>"). ``categories``: with ``semantic_map`` (the
``--semantic-map`` file, {glob pattern: class id}) one per class id, named by its
pattern(s), an instance taking the first pattern matching its source file's name, source
path or object name; without it one per distinct source file, ids 1.. in sorted path
order, named by the file's stem. ``annotations``: one per annotated instance (see
:mod:`blendtruth.exports.annotated`) with pixels in the view: ``segmentation`` an
uncompressed-string COCO RLE (pycocotools) of its **visible** mask (the instance pass) or,
with ``mask="amodal"``, of its amodal mask; ``bbox`` [x, y, w, h] and ``area`` (pixel
count) of that mask; ``iscrowd`` 0; ``instance_id`` (our id in that folder's
instances.json), ``visible_fraction`` (visible / amodal pixels, with the amodal pass).
Masks are exact: every pixel is one instance's or none's.
"""

from __future__ import annotations

import fnmatch
import json
import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from blendtruth.errors import BlendtruthError
from blendtruth.exports import FOLDER, ExportFormat
from blendtruth.exports.annotated import annotated, image_file, instance_table, views
from blendtruth.exports.source import RenderFolder
from blendtruth.writers.atomic import write_bytes

MASKS = ("visible", "amodal")


def mask_api():
    """pycocotools.mask, or a one-line error naming the extra."""
    try:
        from pycocotools import mask
    except ImportError:
        raise BlendtruthError(
            "export coco needs pycocotools: pip install 'blendtruth[coco]'"
        ) from None
    return mask


def categories(
    rows_by_folder: Sequence[list[dict]], semantic_map: dict[str, int] | None, where: str
) -> tuple[list[dict], dict[tuple[str, str], int]]:
    """(COCO categories, category id per (source, object name))."""
    keys = sorted({(r["source"], r["object"]) for rows in rows_by_folder for r in rows})
    if semantic_map is None:
        sources = sorted({s for s, _ in keys})
        ids = {s: i for i, s in enumerate(sources, start=1)}
        cats = [{"id": ids[s], "name": Path(s).stem, "supercategory": "object"} for s in sources]
        return cats, {k: ids[k[0]] for k in keys}
    of: dict[tuple[str, str], int] = {}
    for source, name in keys:
        texts = (Path(source).name, source, name)
        match = next(
            (v for p, v in semantic_map.items() if any(fnmatch.fnmatchcase(t, p) for t in texts)),
            None,
        )
        if match is None:
            raise BlendtruthError(
                f"--semantic-map {where}: no pattern matches {source} (object {name})"
            )
        of[(source, name)] = match
    names: dict[int, list[str]] = {}
    for pattern, value in semantic_map.items():
        names.setdefault(value, []).append(pattern)
    cats = [{"id": v, "name": "|".join(names[v]), "supercategory": "object"} for v in sorted(names)]
    return cats, of


def export_coco(
    folders: Sequence[RenderFolder],
    out: Path,
    semantic_map: dict[str, int] | None = None,
    semantic_map_path: str = "",
    mask: str = "visible",
    distractors: bool = False,
) -> list[Path]:
    """Write ``out/coco/instances.json`` for ``folders`` (see the module docstring)."""
    if mask not in MASKS:
        raise BlendtruthError(f"--coco-mask must be one of {', '.join(MASKS)}; got {mask!r}")
    api = mask_api()
    target = Path(out) / "coco"
    rows_by_folder = [annotated(instance_table(f, "coco"), distractors) for f in folders]
    cats, category_of = categories(rows_by_folder, semantic_map, semantic_map_path)
    images, annotations = [], []
    for folder, rows in zip(folders, rows_by_folder, strict=True):
        for view in views(folder, "coco", need_amodal=mask == "amodal"):
            height, width = view.instance.shape
            image_id = len(images) + 1
            rgb = image_file(folder, view.name)
            images.append({
                "id": image_id,
                "file_name": "" if rgb is None else os.path.relpath(rgb, target.parent),
                "width": width, "height": height,
                "blendtruth_view": f"{folder.model_id}/{view.name}",
            })  # fmt: skip
            for row in rows:
                seen = view.instance == row["id"]
                full = view.amodal.get(row["id"])
                shown = full if mask == "amodal" else seen
                if shown is None or not shown.any():
                    continue
                rle = api.encode(np.asfortranarray(shown.astype(np.uint8)))
                box = [float(x) for x in api.toBbox(rle)]
                frac = None if full is None or not full.any() else seen.sum() / full.sum()
                annotations.append({
                    "id": len(annotations) + 1,
                    "image_id": image_id,
                    "category_id": category_of[(row["source"], row["object"])],
                    "segmentation": {"size": [height, width], "counts": rle["counts"].decode()},
                    "area": float(api.area(rle)),
                    "bbox": box,
                    "iscrowd": 0,
                    "instance_id": row["id"],
                    "visible_fraction": None if frac is None else round(float(frac), 6),
                })  # fmt: skip
    data = {
        "info": {
            "description": f"blendtruth COCO instances ({mask} masks, exact instance ids)",
            "mask": mask,
        },
        "images": images,
        "annotations": annotations,
        "categories": cats,
    }
    target.mkdir(parents=True, exist_ok=True)
    write_bytes(target / "instances.json", json.dumps(data).encode())
    return [target / "instances.json"]


FORMAT = ExportFormat(
    "coco",
    export_coco,
    scope=FOLDER,
    needs=("mask", "instance"),
    writes=("coco",),
    doc="COCO instances JSON with exact masks from the instance pass",
)
