"""The canonical per-view file: one ``.npz`` with every array, the camera and the metadata."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import numpy as np

from blendtruth.conventions import conventions
from blendtruth.errors import BlendtruthError
from blendtruth.geometry.camera import Intrinsics
from blendtruth.passes import PASSES, REQUIRED
from blendtruth.view import Camera, View
from blendtruth.writers.atomic import atomic_open

# Not per-pixel passes: the bit-packed amodal masks and their instance ids (amodal.py).
AMODAL_KEYS = ("amodal", "amodal_ids")


def view_meta(view: View, extra: dict[str, Any] | None = None) -> dict[str, Any]:
    """The metadata stored with a view: conventions, units, renderer facts, camera."""
    intr = view.camera.intrinsics
    return {
        "conventions": conventions(),
        "intrinsics": {"fx": intr.fx, "fy": intr.fy, "cx": intr.cx, "cy": intr.cy},
        "K_opencv": intr.K_opencv.tolist(),
        "width": intr.width,
        "height": intr.height,
        # The camera model's keys (camera_model, fisheye_fov_deg, ...), so a view written
        # from any View reads back with its model; a backend's meta holds the same values.
        **view.camera.projection.meta(),
        **view.meta,
        **(extra or {}),
    }


def write_view_npz(
    path: str | os.PathLike,
    view: View,
    extra: dict[str, Any] | None = None,
    compress: bool = False,
    durable: bool = True,
) -> None:
    """Write ``view`` to ``path`` atomically (an npz, zlib-compressed when ``compress``).
    Keys: every pass the view
    holds (depth, distance, normal, mask and the requested ones of :mod:`blendtruth.passes`,
    each with the table's dtype), K, cam_to_world, meta (a JSON string) and, when rendered,
    rgb, alpha."""
    arrays: dict[str, np.ndarray] = {}
    for name, array in view.passes().items():
        spec = PASSES[name]
        spec.check(array, view.camera.height, view.camera.width)
        arrays[name] = array
    arrays |= {
        "K": view.K.astype(np.float64),
        "cam_to_world": view.cam_to_world.astype(np.float64),
        "meta": np.array(json.dumps(view_meta(view, extra), sort_keys=True)),
    }
    for key in AMODAL_KEYS:
        if key in view.extra:
            arrays[key] = view.extra[key]
    if view.rgb is not None:
        arrays["rgb"] = view.rgb.astype(np.uint8)
    if view.alpha is not None:
        arrays["alpha"] = view.alpha.astype(np.float32)
    with atomic_open(path, durable) as f:
        (np.savez_compressed if compress else np.savez)(f, **arrays)


def read_view_npz(path: str | os.PathLike) -> View:
    """Load a file written by :func:`write_view_npz` back into a :class:`View`."""
    path = Path(path)
    try:
        with np.load(path, allow_pickle=False) as data:
            arrays = {k: data[k] for k in data.files}
    except (OSError, ValueError) as exc:
        raise BlendtruthError(f"{path}: not a readable blendtruth view file ({exc})") from None
    meta = json.loads(str(arrays["meta"]))
    height, width = arrays["depth"].shape
    camera = Camera.from_meta(
        Intrinsics.from_K(arrays["K"], width, height), arrays["cam_to_world"], meta
    )
    return View(
        camera=camera,
        depth=arrays["depth"],
        distance=arrays["distance"],
        normal=arrays["normal"],
        mask=arrays["mask"],
        rgb=arrays.get("rgb"),
        alpha=arrays.get("alpha"),
        meta=meta,
        extra={
            k: v
            for k, v in arrays.items()
            if (k in PASSES and k not in REQUIRED) or k in AMODAL_KEYS
        },
    )
