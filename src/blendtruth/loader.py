"""``blendtruth.load``: iterate the views of a render, a dataset or its WebDataset shards.

Views are read one at a time (lazily), so a dataset of any size streams in constant
memory. Each :class:`~blendtruth.view.View` carries ``meta["loaded_from"] = {"model": id,
"view": name}``; arrays of the per-view file beyond the standard ones (e.g. ``instance``)
are in ``view.passes`` (a dict of arrays; empty when there are none).
"""

from __future__ import annotations

import io
import json
import os
import tarfile
from collections.abc import Iterator
from pathlib import Path

import numpy as np

from blendtruth.errors import BlendtruthError
from blendtruth.geometry.camera import Intrinsics
from blendtruth.view import Camera, View

_STANDARD = {"depth", "distance", "normal", "mask", "rgb", "alpha", "K", "cam_to_world", "meta"}


def load(path: str | os.PathLike) -> Iterator[View]:
    """Yield every view under ``path``: a render folder (``views/NNNN.npz``), a dataset
    folder (``models/<id>/``, in id order), a ``webdataset/`` folder with its
    ``manifest.json`` (shard order), or a single shard ``.tar``."""
    path = Path(path)
    if path.is_file() and path.suffix == ".tar":
        yield from _shard_views(path)
        return
    if (path / "manifest.json").is_file() and (path / "shard-000000.tar").exists():
        yield from _shards(path)
        return
    from blendtruth.exports.source import render_folders

    for folder in render_folders(path):
        for name in folder.names:
            arrays = folder.arrays(name)
            view = folder.read(name)
            view.meta["loaded_from"] = {"model": folder.model_id, "view": name}
            view.passes = {k: v for k, v in arrays.items() if k not in _STANDARD}
            yield view


def _shards(folder: Path) -> Iterator[View]:
    try:
        manifest = json.loads((folder / "manifest.json").read_text())
        files = [s["file"] for s in manifest["shards"]]
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise BlendtruthError(f"{folder / 'manifest.json'}: not a shard manifest ({exc})") from None
    for name in files:
        yield from _shard_views(folder / name)


def _shard_views(path: Path) -> Iterator[View]:
    try:
        tar = tarfile.open(path)
    except (OSError, tarfile.TarError) as exc:
        raise BlendtruthError(f"{path}: not a readable tar shard ({exc})") from None
    with tar:
        key, members = None, {}
        for info in tar:
            if not info.isfile():
                continue
            k, _, ext = info.name.partition(".")
            if key is not None and k != key:
                yield _sample_view(path, key, members)
                members = {}
            key = k
            members[ext] = tar.extractfile(info).read()
        if key is not None:
            yield _sample_view(path, key, members)


def _sample_view(path: Path, key: str, members: dict[str, bytes]) -> View:
    try:
        info = json.loads(members.pop("json"))
        arrays = {
            ext[: -len(".npy")]: np.load(io.BytesIO(data), allow_pickle=False)
            for ext, data in members.items()
            if ext.endswith(".npy")
        }
        rgb = None
        if "rgb.png" in members:
            import cv2

            bgr = cv2.imdecode(np.frombuffer(members["rgb.png"], np.uint8), cv2.IMREAD_COLOR)
            rgb = bgr[..., ::-1].copy()
        intr = Intrinsics.from_K(info["K"], info["width"], info["height"])
        view = View(
            camera=Camera.from_meta(
                intr, np.array(info["cam_to_world"], dtype=np.float64), info["meta"]
            ),
            depth=arrays.pop("depth"),
            distance=arrays.pop("distance"),
            normal=arrays.pop("normal"),
            mask=arrays.pop("mask"),
            rgb=rgb,
            alpha=arrays.pop("alpha", None),
            meta=info["meta"],
        )
    except (KeyError, ValueError, TypeError) as exc:
        raise BlendtruthError(
            f"{path}: sample {key!r} is incomplete or unreadable ({exc})"
        ) from None
    view.meta["loaded_from"] = {"model": info["model"], "view": info["view"]}
    view.passes = arrays
    return view
