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


# Keys of ``View.meta`` that say where a loaded view came from, not what it is: never
# written back, so that a loaded view writes the file it was read from.
LOAD_ONLY_META = ("loaded_from",)


def _file_meta(meta: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in meta.items() if k not in LOAD_ONLY_META}


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
        "meta": np.array(json.dumps(_file_meta(view_meta(view, extra)), sort_keys=True)),
    }
    for key, value in view.extra.items():
        if key not in PASSES:  # amodal masks and any array a reader carried along
            arrays[key] = value
    if view.rgb is not None:
        arrays["rgb"] = view.rgb.astype(np.uint8)
    if view.alpha is not None:
        arrays["alpha"] = view.alpha.astype(np.float32)
    with atomic_open(path, durable) as f:
        (np.savez_compressed if compress else np.savez)(f, **arrays)


def read_view_npz(path: str | os.PathLike) -> View:
    """Load a file written by :func:`write_view_npz` back into a :class:`View` (the one
    reader of view files: render folders, datasets and single-view renders use it)."""
    return view_from_arrays(read_view_arrays(path), str(path))


def read_view_arrays(path: str | os.PathLike) -> dict[str, np.ndarray]:
    """Every array of a view file by key, as stored (``meta`` a 0-d JSON string)."""
    path = Path(path)
    try:
        with np.load(path, allow_pickle=False) as data:
            return {k: data[k] for k in data.files}
    except (OSError, ValueError, EOFError) as exc:
        raise BlendtruthError(f"{path}: not a readable blendtruth view file ({exc})") from None


def view_from_arrays(arrays: dict[str, np.ndarray], where: str) -> View:
    """The :class:`View` of a view file's arrays (keys as :func:`write_view_npz` writes
    them; ``meta`` a JSON string or an already parsed dict). Every array that is not the
    camera, ``meta``, ``rgb``, ``alpha`` or a required pass goes to ``view.extra``, so that
    writing the view again gives back the same arrays; the camera model and its field of
    view come from ``meta``. ``where`` names the source in the one-line errors."""
    arrays = dict(arrays)
    try:
        raw = arrays.pop("meta")
        meta = dict(raw) if isinstance(raw, dict) else json.loads(str(raw))
        K, pose = arrays.pop("K"), arrays.pop("cam_to_world")  # noqa: N806
        core = {name: arrays.pop(name) for name in REQUIRED}
        height, width = core["depth"].shape
        camera = Camera.from_meta(Intrinsics.from_K(K, width, height), pose, meta)
    except (KeyError, ValueError, TypeError, AttributeError) as exc:
        detail = f"missing {exc}" if isinstance(exc, KeyError) else str(exc)
        raise BlendtruthError(f"{where}: not a complete blendtruth view ({detail})") from None
    rgb, alpha = arrays.pop("rgb", None), arrays.pop("alpha", None)
    return View(camera=camera, rgb=rgb, alpha=alpha, meta=meta, extra=arrays, **core)
