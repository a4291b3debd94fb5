"""Find the render folders to export or show, and read their canonical per-view files.

A *render folder* (what ``blendtruth render MODEL`` writes, one per model) holds
``views/NNNN.npz`` and ``cameras.json``. A *dataset folder* (``blendtruth dataset``) holds
one render folder per model under ``models/<id>/`` (or per scene under ``scenes/NNNN/``)
plus ``manifest*.jsonl``, ``summary.json`` and ``index.json``. Every path comes from
:mod:`blendtruth.layout` (docs/layout.md).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from blendtruth.errors import BlendtruthError
from blendtruth.layout import (  # noqa: F401 - ITEM_GROUPS, item_order re-exported
    ITEM_GROUPS,
    DatasetLayout,
    RenderLayout,
    SingleViewLayout,
    is_dataset_folder,
    is_render_folder,
    item_order,
)
from blendtruth.view import View
from blendtruth.writers.npz import read_view_arrays, read_view_npz


@dataclass(frozen=True)
class RenderFolder:
    """One model's render folder: ``path``, its ``model_id`` (the folder name) and the
    sorted view names (``NNNN`` of ``views/NNNN.npz``)."""

    path: Path
    model_id: str
    names: tuple[str, ...]

    @property
    def layout(self) -> RenderLayout:
        """Every path of this folder (:mod:`blendtruth.layout`)."""
        return RenderLayout(self.path)

    def view_path(self, name: str) -> Path:
        return self.layout.view(name).npz

    def read(self, name: str) -> View:
        """The :class:`~blendtruth.view.View` of view ``name``."""
        return read_view_npz(self.view_path(name))

    def arrays(self, name: str) -> dict[str, np.ndarray]:
        """Every array of ``views/<name>.npz`` by key (optional passes included)."""
        return read_view_arrays(self.view_path(name))

    def views(self) -> Iterator[tuple[str, View]]:
        for name in self.names:
            yield name, self.read(name)

    @property
    def has_rgb(self) -> bool:
        return self.layout.has_rgb(self.names)


def dataset_items(path: Path) -> list[Path]:
    """The item folders of a dataset folder (``models/<id>/``, ``scenes/NNNN/``), in
    id order (:func:`item_order`), temporary ``.<id>.tmp-*`` folders skipped."""
    return DatasetLayout(path).items()


def render_folder(path: Path) -> RenderFolder:
    """``path`` as a render folder, or a one-line error."""
    path = Path(path)
    names = RenderLayout(path).view_names()
    if not names:
        raise BlendtruthError(f"{path}: not a render folder (no views/NNNN.npz)")
    return RenderFolder(path, path.name, names)


def render_folders(path: Path) -> list[RenderFolder]:
    """The render folders of ``path``: itself (a render folder) or every finished item of
    a dataset folder (:func:`dataset_items`)."""
    path = Path(path)
    if not path.exists():
        raise BlendtruthError(f"{path}: no such folder")
    if is_render_folder(path):
        return [render_folder(path)]
    if is_dataset_folder(path):
        found = [render_folder(p) for p in dataset_items(path) if is_render_folder(p)]
        if not found:
            raise BlendtruthError(f"{path}: a dataset folder with no rendered models")
        return found
    if SingleViewLayout(path).is_single():
        raise BlendtruthError(
            f"{path}: a single-view render (view_0000.npz); exports, check and show need a "
            "multi-view render folder (render with --views N) or a dataset folder"
        )
    raise BlendtruthError(
        f"{path}: neither a render folder (views/NNNN.npz) nor a dataset folder (models/, scenes/)"
    )


def read_json(path: Path) -> dict:
    """A JSON object from ``path``, or a one-line error naming it."""
    try:
        data = json.loads(Path(path).read_text())
    except OSError as exc:
        raise BlendtruthError(f"{path}: cannot read ({exc.strerror})") from None
    except ValueError as exc:
        raise BlendtruthError(f"{path}: invalid JSON ({exc})") from None
    if not isinstance(data, dict):
        raise BlendtruthError(f"{path}: expected a JSON object")
    return data
