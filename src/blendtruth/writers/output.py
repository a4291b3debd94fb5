"""Where a render's files go, and writing them."""

from __future__ import annotations

from pathlib import Path

from blendtruth.instances import SceneTable
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
    previews. Each file is written atomically."""
    out = Path(out)
    written: list[Path] = []

    def emit(name: str, write) -> None:
        path = out / name
        write(path)
        written.append(path)

    if view.rgb is not None:
        emit("rgb.png", lambda p: write_png(p, view.rgb))
    emit("d.npz", lambda p: write_tutorial_npz(p, view, normals_source))
    emit("view_0000.npz", lambda p: write_view_npz(p, view, {"nmap_source": normals_source}))
    if table is not None:
        emit("instances.json", lambda p: write_instances_json(p, table))
    emit("depth.png", lambda p: write_png(p, depth_preview(view.depth, view.mask)))
    emit("normal.png", lambda p: write_png(p, normal_preview(view.normal, view.mask)))
    return written
