"""Where a render's files go, and writing them."""

from __future__ import annotations

from pathlib import Path

from blendtruth.instances import SceneTable
from blendtruth.layout import SingleViewLayout
from blendtruth.view import View
from blendtruth.writers.atomic import prepare_out_dir, remove_if_empty  # noqa: F401 - re-exported
from blendtruth.writers.npz import write_view_npz
from blendtruth.writers.png import depth_preview, normal_preview, write_png
from blendtruth.writers.tables import write_instances_json
from blendtruth.writers.tutorial import write_tutorial_npz


def write_single_view(
    out: Path, view: View, normals_source: str = "pass", table: SceneTable | None = None
) -> list[Path]:
    """The `blendtruth render` layout: the tutorial's rgb.png and d.npz, the canonical
    view_0000.npz, the scene's id table ``instances.json`` (given ``table``) and depth/normal
    previews (paths: :class:`blendtruth.layout.SingleViewLayout`). Each file is written
    atomically."""
    lay = SingleViewLayout(Path(out))
    written: list[Path] = []

    def emit(path: Path, write) -> None:
        write(path)
        written.append(path)

    if view.rgb is not None:
        emit(lay.rgb_png, lambda p: write_png(p, view.rgb))
    emit(lay.tutorial_npz, lambda p: write_tutorial_npz(p, view, normals_source))
    emit(lay.view_npz, lambda p: write_view_npz(p, view, {"nmap_source": normals_source}))
    if table is not None:
        emit(lay.instances_json, lambda p: write_instances_json(p, table))
    emit(lay.depth_png, lambda p: write_png(p, depth_preview(view.depth, view.mask)))
    emit(lay.normal_png, lambda p: write_png(p, normal_preview(view.normal, view.mask)))
    return written
