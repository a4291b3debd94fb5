"""Where every file of a render, a dataset and a single-view render lives (docs/layout.md).

The only module that spells the folder layout. Writers, exports, the loader, ``check``,
``show`` and the dataset runner ask it for paths instead of joining names themselves.

- :class:`RenderLayout`: one model's (or scene's) render folder, ``views/NNNN.npz`` etc.
- :class:`DatasetLayout`: a dataset folder, one render folder per item under
  ``models/<id>/`` or ``scenes/NNNN/``.
- :class:`SingleViewLayout`: what ``blendtruth render MODEL`` writes without view options
  (``view_0000.npz``, ``rgb.png``, ``d.npz``, previews).

A view is addressed by ``(frame, camera)``: ``frame`` None is the static case (every
render today), named ``NNNN`` by camera index; a frame number gives ``FFFFFF_NNNN`` (kept
for the time-varying renders to come, so that names still sort by frame, then camera).
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path

VIEWS = "views"
RGB = "rgb"
DEPTH = "depth"
MASK = "mask"
PREVIEW = "preview"
FLOW = "flow"
CAMERAS_JSON = "cameras.json"
INSTANCES_JSON = "instances.json"
MESH_PLY = "mesh.ply"
MESH_INSTANCE_NPY = "mesh_instance.npy"
POINTS_PLY = "points.ply"
PAIRS_JSON = "pairs.json"
TRANSFORMS_JSON = "transforms.json"

# The top-level names a render writes itself (exports add their own: exports.registry).
TRACKS_NPZ = "tracks.npz"  # point tracks of a render over --frames (docs/motion.md)
RENDER_FILES = (VIEWS, DEPTH, MASK, PREVIEW, RGB, FLOW, CAMERAS_JSON, TRANSFORMS_JSON,
                INSTANCES_JSON, PAIRS_JSON, POINTS_PLY, MESH_PLY, MESH_INSTANCE_NPY,
                TRACKS_NPZ)  # fmt: skip

_NAME = re.compile(r"^(?:(\d{6})_)?(\d{4,})$")


def view_name(camera: int, frame: int | None = None) -> str:
    """The file stem of view ``(frame, camera)``: ``NNNN`` (static) or ``FFFFFF_NNNN``."""
    if camera < 0 or (frame is not None and frame < 0):
        raise ValueError(f"view_name: negative index (frame {frame}, camera {camera})")
    return f"{camera:04d}" if frame is None else f"{frame:06d}_{camera:04d}"


def parse_view_name(name: str) -> tuple[int | None, int]:
    """``(frame, camera)`` of a view stem (the inverse of :func:`view_name`)."""
    match = _NAME.match(name)
    if not match:
        raise ValueError(f"{name!r} is not a view name (NNNN or FFFFFF_NNNN)")
    frame, camera = match.groups()
    return (None if frame is None else int(frame)), int(camera)


@dataclass(frozen=True)
class ViewPaths:
    """Every file of one view in a render folder (``preview_*`` only with previews,
    ``rgb`` only when RGB is rendered)."""

    name: str
    npz: Path
    depth: Path
    mask: Path
    rgb: Path
    preview_depth: Path
    preview_normal: Path


@dataclass(frozen=True)
class RenderLayout:
    """The files of one render folder rooted at ``root``."""

    root: Path

    def __post_init__(self) -> None:
        object.__setattr__(self, "root", Path(self.root))

    def sub(self, name: str) -> Path:
        """A top-level entry of the folder (a name of :data:`RENDER_FILES` or an export's)."""
        return self.root / name

    @property
    def views_dir(self) -> Path:
        return self.root / VIEWS

    @property
    def cameras_json(self) -> Path:
        return self.root / CAMERAS_JSON

    @property
    def instances_json(self) -> Path:
        return self.root / INSTANCES_JSON

    @property
    def mesh_ply(self) -> Path:
        return self.root / MESH_PLY

    @property
    def mesh_instance_npy(self) -> Path:
        """int32 F: the instance id of each face of ``mesh.ply``."""
        return self.root / MESH_INSTANCE_NPY

    @property
    def points_ply(self) -> Path:
        return self.root / POINTS_PLY

    @property
    def pairs_json(self) -> Path:
        return self.root / PAIRS_JSON

    @property
    def transforms_json(self) -> Path:
        return self.root / TRANSFORMS_JSON

    def view(self, name: str) -> ViewPaths:
        """The files of the view named ``name`` (see :func:`view_name`)."""
        r = self.root
        return ViewPaths(
            name=name,
            npz=r / VIEWS / f"{name}.npz",
            depth=r / DEPTH / f"{name}.npy",
            mask=r / MASK / f"{name}.png",
            rgb=r / RGB / f"{name}.png",
            preview_depth=r / PREVIEW / f"{name}_depth.png",
            preview_normal=r / PREVIEW / f"{name}_normal.png",
        )

    def at(self, camera: int, frame: int | None = None) -> ViewPaths:
        """The files of view ``(frame, camera)``."""
        return self.view(view_name(camera, frame))

    def flow(self, name_i: str, name_j: str) -> Path:
        """The flow/covisibility file from view ``name_i`` to ``name_j``."""
        return self.root / FLOW / f"{name_i}_{name_j}.npz"

    def rel(self, path: Path) -> str:
        """``path`` relative to the root, with forward slashes (as files list it)."""
        return Path(path).relative_to(self.root).as_posix()

    def view_dirs(self, previews: bool, rgb: bool) -> list[Path]:
        """The per-view sub-folders a render with these options writes into."""
        names = [VIEWS, DEPTH, MASK] + ([PREVIEW] if previews else []) + ([RGB] if rgb else [])
        return [self.root / n for n in names]

    def view_names(self) -> tuple[str, ...]:
        """The sorted stems of ``views/*.npz`` (empty when there are none)."""
        if not self.views_dir.is_dir():
            return ()
        return tuple(sorted(p.stem for p in self.views_dir.glob("*.npz")))

    def is_render(self) -> bool:
        return bool(self.view_names())

    def has_rgb(self, names) -> bool:
        return all(self.view(n).rgb.is_file() for n in names)

    @staticmethod
    def counts_as_view(rel: str) -> bool:
        """Whether the folder-relative file ``rel`` is a view file (``views/NNNN.npz``)."""
        return rel.startswith(f"{VIEWS}/") and rel.endswith(".npz")


# The sub-folders of a dataset folder that hold finished items: models/<id>/ from
# ``blendtruth dataset``, scenes/NNNN/ from ``--scenes K``.
ITEM_GROUPS = ("models", "scenes")


def item_order(name: str) -> tuple[int, str]:
    """Sort key of item ids: scene ids (digits, 4 or more) by number, so scene 10000
    follows 9999; model ids by name."""
    return (len(name), name) if name.isdigit() else (0, name)


@dataclass(frozen=True)
class DatasetLayout:
    """The files of a dataset folder rooted at ``root``."""

    root: Path

    def __post_init__(self) -> None:
        object.__setattr__(self, "root", Path(self.root))

    def group_dir(self, group: str) -> Path:
        if group not in ITEM_GROUPS:
            raise ValueError(f"unknown item group {group!r}")
        return self.root / group

    def item(self, group: str, item_id: str) -> RenderLayout:
        """The render folder of one finished item."""
        return RenderLayout(self.group_dir(group) / item_id)

    def tmp_item(self, group: str, item_id: str, tag: str) -> Path:
        """The temporary folder an item is rendered into before it is renamed into place;
        dot-prefixed, so never mistaken for a finished item."""
        return self.group_dir(group) / f".{item_id}.tmp-{tag}"

    @property
    def summary_json(self) -> Path:
        return self.root / "summary.json"

    @property
    def index_json(self) -> Path:
        return self.root / "index.json"

    def is_dataset(self) -> bool:
        return any((self.root / g).is_dir() for g in ITEM_GROUPS)

    def items(self) -> list[Path]:
        """The finished item folders, in id order (:func:`item_order`), temporary
        ``.<id>.tmp-*`` folders skipped."""
        return [
            p
            for g in ITEM_GROUPS
            if (self.root / g).is_dir()
            for p in sorted((self.root / g).iterdir(), key=lambda p: item_order(p.name))
            if p.is_dir() and not p.name.startswith(".")
        ]

    def group_of(self, item_id: str) -> str | None:
        """The group holding the finished item ``item_id``, or None."""
        return next((g for g in ITEM_GROUPS if (self.root / g / item_id).is_dir()), None)


@dataclass(frozen=True)
class SingleViewLayout:
    """What ``blendtruth render MODEL`` writes for one view into ``root``."""

    root: Path

    def __post_init__(self) -> None:
        object.__setattr__(self, "root", Path(self.root))

    @property
    def view_npz(self) -> Path:
        """The canonical view file (same keys as ``views/NNNN.npz``)."""
        return self.root / "view_0000.npz"

    @property
    def name(self) -> str:
        return "0000"

    @property
    def rgb_png(self) -> Path:
        return self.root / "rgb.png"

    @property
    def tutorial_npz(self) -> Path:
        return self.root / "d.npz"

    @property
    def instances_json(self) -> Path:
        return self.root / INSTANCES_JSON

    @property
    def depth_png(self) -> Path:
        return self.root / "depth.png"

    @property
    def normal_png(self) -> Path:
        return self.root / "normal.png"

    def is_single(self) -> bool:
        return self.view_npz.is_file() and not RenderLayout(self.root).is_render()


def is_render_folder(path: str | os.PathLike) -> bool:
    return RenderLayout(Path(path)).is_render()


def is_dataset_folder(path: str | os.PathLike) -> bool:
    return DatasetLayout(Path(path)).is_dataset()
