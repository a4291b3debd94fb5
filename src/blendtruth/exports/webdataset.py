"""WebDataset tar shards: one sample per view, shards bounded in size, a manifest.

``webdataset/shard-NNNNNN.tar``: POSIX tar files; a sample is the members sharing a key
``<model>-<view>`` (dots in the model id become "_", since WebDataset splits keys at dots):
    <key>.depth.npy      float32 H×W planar depth, scene units, 0 = no surface
    <key>.distance.npy   float32 H×W ray length, scene units, 0 = no surface
    <key>.normal.npy     float32 H×W×3 unit normal, camera frame (OpenCV axes)
    <key>.mask.npy       bool H×W
    <key>.<pass>.npy     every other array of views/NNNN.npz as it is (alpha, instance, ...)
    <key>.rgb.png        8-bit sRGB image, when rendered
    <key>.json           model id, view name, K, K_opencv, cam_to_world (OpenCV axes),
                         width, height, meta (the view's metadata)
``webdataset/manifest.json``: every shard's file name, samples, bytes and keys. A shard
holds whole samples and stays within ``max_shard_bytes`` unless a single sample is larger
(it then gets a shard of its own). Read with ``webdataset.WebDataset(urls).decode()`` or
``blendtruth.load(".../webdataset")``.
"""

from __future__ import annotations

import io
import json
import tarfile
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np

from blendtruth.exports import FOLDER, ExportFormat
from blendtruth.exports.source import RenderFolder
from blendtruth.writers.atomic import atomic_open, write_bytes

DEFAULT_SHARD_BYTES = 1_000_000_000
WEBDATASET_DIR = "webdataset"
_BLOCK = 512
_RECORD = 20 * _BLOCK  # tarfile pads an archive to whole records


def sample_key(model_id: str, view: str) -> str:
    return f"{model_id.replace('.', '_')}-{view}"


def sample_members(folder: RenderFolder, name: str) -> dict[str, bytes]:
    """The files of one view's sample, by extension (``depth.npy``, ``json``, ...)."""
    arrays = folder.arrays(name)
    meta = json.loads(str(arrays.pop("meta")))
    K, pose = arrays.pop("K"), arrays.pop("cam_to_world")  # noqa: N806
    members: dict[str, bytes] = {}
    rgb = arrays.pop("rgb", None)
    for key, value in arrays.items():
        buf = io.BytesIO()
        np.save(buf, value)
        members[f"{key}.npy"] = buf.getvalue()
    if rgb is not None:
        import cv2

        ok, png = cv2.imencode(".png", np.ascontiguousarray(rgb[..., ::-1]))
        members["rgb.png"] = png.tobytes()
    height, width = arrays["depth"].shape
    K_opencv = K.copy()  # noqa: N806
    K_opencv[:2, 2] -= 0.5
    info = {
        "model": folder.model_id,
        "view": name,
        "K": K.tolist(),
        "K_opencv": K_opencv.tolist(),
        "cam_to_world": pose.tolist(),
        "width": width,
        "height": height,
        "meta": meta,
    }
    members["json"] = json.dumps(info, sort_keys=True).encode()
    return members


def _tar_size(members: dict[str, bytes]) -> int:
    return sum(_BLOCK + -(-len(data) // _BLOCK) * _BLOCK for data in members.values())


def export_webdataset(
    folders: Sequence[RenderFolder],
    out: Path,
    max_shard_bytes: int = DEFAULT_SHARD_BYTES,
    on_sample: Callable[[], None] | None = None,
) -> list[Path]:
    """Write every view of ``folders`` into ``out/webdataset/`` (see the module docstring)."""
    target = Path(out) / WEBDATASET_DIR
    target.mkdir(parents=True, exist_ok=True)
    shards: list[dict] = []
    writer = _ShardWriter(target, shards)
    for folder in folders:
        for name in folder.names:
            members = sample_members(folder, name)
            size = _tar_size(members)
            if writer.samples and writer.size + size + 2 * _BLOCK + _RECORD > max_shard_bytes:
                writer.close()
            writer.add(sample_key(folder.model_id, name), members, size)
            if on_sample:
                on_sample()
    writer.close()
    manifest = {
        "format": "webdataset: one sample per view; see docs/exports.md",
        "max_shard_bytes": max_shard_bytes,
        "samples": sum(s["samples"] for s in shards),
        "shards": shards,
    }
    write_bytes(target / "manifest.json", (json.dumps(manifest, indent=2) + "\n").encode())
    return [target / s["file"] for s in shards] + [target / "manifest.json"]


class _ShardWriter:
    """Appends samples to the current shard; ``close`` finishes it atomically."""

    def __init__(self, target: Path, shards: list[dict]) -> None:
        self.target, self.shards = target, shards
        self._ctx = self._file = self._tar = None
        self.samples, self.size, self.keys = 0, 0, []

    def add(self, key: str, members: dict[str, bytes], size: int) -> None:
        if self._tar is None:
            path = self.target / f"shard-{len(self.shards):06d}.tar"
            self._ctx = atomic_open(path)
            self._file = self._ctx.__enter__()
            self._tar = tarfile.open(fileobj=self._file, mode="w", format=tarfile.USTAR_FORMAT)
        for ext, data in members.items():
            info = tarfile.TarInfo(f"{key}.{ext}")
            info.size, info.mode, info.mtime = len(data), 0o644, 0
            self._tar.addfile(info, io.BytesIO(data))
        self.samples += 1
        self.size += size
        self.keys.append(key)

    def close(self) -> None:
        if self._tar is None:
            return
        self._tar.close()
        size = self._file.tell()
        self._ctx.__exit__(None, None, None)
        name = f"shard-{len(self.shards):06d}.tar"
        self.shards.append({"file": name, "samples": self.samples, "bytes": size,
                            "keys": self.keys})  # fmt: skip
        self._ctx = self._file = self._tar = None
        self.samples, self.size, self.keys = 0, 0, []


FORMAT = ExportFormat(
    "webdataset",
    export_webdataset,
    scope=FOLDER,
    writes=(WEBDATASET_DIR,),
    doc="tar shards, one sample per view, for every model of a render or dataset folder",
)
