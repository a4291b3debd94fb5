"""Find the render folders to export or show, and read their canonical per-view files.

A *render folder* (what ``blendtruth render MODEL`` writes, one per model) holds
``views/NNNN.npz`` and ``cameras.json``. A *dataset folder* (``blendtruth dataset``) holds
one render folder per model under ``models/<id>/`` (or per scene under ``scenes/NNNN/``)
plus ``manifest*.jsonl``,
``summary.json`` and ``index.json``.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from blendtruth.errors import BlendtruthError


@dataclass(frozen=True)
class RenderFolder:
    """One model's render folder: ``path``, its ``model_id`` (the folder name) and the
    sorted view names (``NNNN`` of ``views/NNNN.npz``)."""

    path: Path
    model_id: str
    names: tuple[str, ...]

    def view_path(self, name: str) -> Path:
        return self.path / "views" / f"{name}.npz"

    def read(self, name: str):
        """The :class:`~blendtruth.view.View` of view ``name``."""
        from blendtruth.writers.npz import read_view_npz

        return read_view_npz(self.view_path(name))

    def arrays(self, name: str) -> dict[str, np.ndarray]:
        """Every array of ``views/<name>.npz`` by key (optional passes included)."""
        path = self.view_path(name)
        try:
            with np.load(path, allow_pickle=False) as data:
                return {k: data[k] for k in data.files}
        except (OSError, ValueError) as exc:
            raise BlendtruthError(f"{path}: not a readable blendtruth view file ({exc})") from None

    def views(self) -> Iterator:
        for name in self.names:
            yield name, self.read(name)

    @property
    def has_rgb(self) -> bool:
        return (self.path / "rgb").is_dir() and all(
            (self.path / "rgb" / f"{n}.png").is_file() for n in self.names
        )


def is_render_folder(path: Path) -> bool:
    return (Path(path) / "views").is_dir() and any((Path(path) / "views").glob("*.npz"))


# The sub-folders of a dataset folder that hold finished items: models/<id>/ from
# ``blendtruth dataset``, scenes/NNNN/ from ``--scenes K``.
ITEM_GROUPS = ("models", "scenes")


def is_dataset_folder(path: Path) -> bool:
    return any((Path(path) / g).is_dir() for g in ITEM_GROUPS)


def item_order(name: str) -> tuple[int, str]:
    """Sort key of item ids: scene ids (digits, 4 or more) by number, so scene 10000
    follows 9999; model ids by name."""
    return (len(name), name) if name.isdigit() else (0, name)


def dataset_items(path: Path) -> list[Path]:
    """The item folders of a dataset folder (``models/<id>/``, ``scenes/NNNN/``), in
    id order (:func:`item_order`), temporary ``.<id>.tmp-*`` folders skipped."""
    return [
        p
        for g in ITEM_GROUPS
        if (Path(path) / g).is_dir()
        for p in sorted((Path(path) / g).iterdir(), key=lambda p: item_order(p.name))
        if p.is_dir() and not p.name.startswith(".")
    ]


def render_folder(path: Path) -> RenderFolder:
    """``path`` as a render folder, or a one-line error."""
    path = Path(path)
    if not is_render_folder(path):
        raise BlendtruthError(f"{path}: not a render folder (no views/NNNN.npz)")
    names = tuple(sorted(p.stem for p in (path / "views").glob("*.npz")))
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
