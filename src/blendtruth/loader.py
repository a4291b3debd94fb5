"""``blendtruth.load``: iterate the views of a render, a dataset, its WebDataset shards or a
single-view render.

Views are read one at a time (lazily), so a dataset of any size streams in constant
memory. Every view comes from the one reader of view files
(:func:`blendtruth.writers.npz.view_from_arrays`): ``view.passes()`` holds its passes,
``view.extra`` every array beyond the required ones (``instance``, ``amodal``, ...), the
camera keeps its model. ``meta["loaded_from"] = {"model": id, "view": name}`` says where it
was found; :func:`~blendtruth.writers.npz.write_view_npz` leaves that key out, so writing a
loaded view gives back the file it came from.
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
from blendtruth.layout import SingleViewLayout
from blendtruth.view import View
from blendtruth.writers.npz import read_view_npz, view_from_arrays

SHARD_MANIFEST = "manifest.json"


def load(path: str | os.PathLike) -> Iterator[View]:
    """Yield every view under ``path``: a render folder (``views/NNNN.npz``), a dataset
    folder (``models/<id>/``, in id order), a ``webdataset/`` folder with its
    ``manifest.json`` (shard order), a single shard ``.tar``, or the folder of a
    single-view render (``view_0000.npz``)."""
    path = Path(path)
    if path.is_file() and path.suffix == ".tar":
        yield from _shard_views(path)
        return
    if (path / SHARD_MANIFEST).is_file() and any(path.glob("shard-*.tar")):
        yield from _shards(path)
        return
    single = SingleViewLayout(path)
    if single.is_single():
        view = read_view_npz(single.view_npz)
        view.meta["loaded_from"] = {"model": path.name, "view": single.name}
        yield view
        return
    from blendtruth.exports.source import render_folders

    for folder in render_folders(path):
        for name in folder.names:
            view = folder.read(name)
            view.meta["loaded_from"] = {"model": folder.model_id, "view": name}
            yield view


def _shards(folder: Path) -> Iterator[View]:
    try:
        manifest = json.loads((folder / SHARD_MANIFEST).read_text())
        files = [s["file"] for s in manifest["shards"]]
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise BlendtruthError(f"{folder / SHARD_MANIFEST}: not a shard manifest ({exc})") from None
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
    """One WebDataset sample (see exports/webdataset.py) as a View."""
    where = f"{path}: sample {key!r}"
    try:
        info = json.loads(members.pop("json"))
        arrays = {
            ext[: -len(".npy")]: np.load(io.BytesIO(data), allow_pickle=False)
            for ext, data in members.items()
            if ext.endswith(".npy")
        }
        arrays |= {"K": np.array(info["K"], dtype=np.float64),
                   "cam_to_world": np.array(info["cam_to_world"], dtype=np.float64),
                   "meta": info["meta"]}  # fmt: skip
        origin = {"model": info["model"], "view": info["view"]}
    except (KeyError, ValueError, TypeError) as exc:
        raise BlendtruthError(f"{where} is incomplete or unreadable ({exc})") from None
    if "rgb.png" in members:
        import cv2

        bgr = cv2.imdecode(np.frombuffer(members["rgb.png"], np.uint8), cv2.IMREAD_COLOR)
        if bgr is None:
            raise BlendtruthError(f"{where}: rgb.png is not a readable PNG")
        arrays["rgb"] = bgr[..., ::-1].copy()
    view = view_from_arrays(arrays, where)
    view.meta["loaded_from"] = origin
    return view
