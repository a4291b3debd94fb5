"""Exports: every tool's format derived from the canonical ``views/NNNN.npz`` files.

One module per format (see docs/exports.md for every file, unit and channel):
``colmap``, ``nerfstudio``, ``exr``, ``png16`` (per model folder) and ``webdataset``
(one set of shards for all the models of a render or dataset folder), ``coco`` (one
instances JSON) and ``bop`` (one BOP dataset: a scene folder per render folder).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from blendtruth.errors import BlendtruthError

FORMATS = ("colmap", "nerfstudio", "exr", "png16", "webdataset", "coco", "bop")
# Formats with one output for all the models/scenes of a folder, not one per model.
WHOLE_FOLDER = ("webdataset", "coco", "bop")


def parse_formats(text: str | None) -> list[str]:
    """'colmap,exr' -> ['colmap', 'exr']; unknown names are a one-line error."""
    if not text:
        return []
    names = [n.strip() for n in text.split(",") if n.strip()]
    bad = [n for n in names if n not in FORMATS]
    if bad or not names:
        raise BlendtruthError(
            f"--export: unknown format {', '.join(bad) or repr(text)}; choose from "
            f"{', '.join(FORMATS)} (comma-separated)"
        )
    return list(dict.fromkeys(names))


def export(
    fmt: str,
    path: Path,
    out: Path | None = None,
    on_model: Callable[[str], None] | None = None,
    **options,
) -> list[Path]:
    """Export the render or dataset folder ``path`` as ``fmt``.

    Per-model formats write into each model's folder (``out`` None) or into
    ``out/<model id>/`` for a dataset (``out`` itself for a single render folder);
    ``webdataset`` writes ``(out or path)/webdataset/``. ``on_model`` is called with each
    model id when it is done (progress). Returns the files written."""
    from blendtruth.exports.source import render_folders

    path = Path(path)
    if fmt not in FORMATS:
        parse_formats(fmt)
    folders = render_folders(path)
    if fmt == "webdataset":
        from blendtruth.exports.webdataset import export_webdataset

        return export_webdataset(folders, Path(out or path), **options)
    if fmt in WHOLE_FOLDER:
        return _writer(fmt)(folders, Path(out or path), **options)
    write = _writer(fmt)
    single = len(folders) == 1 and folders[0].path == path
    written: list[Path] = []
    for folder in folders:
        target = (
            folder.path if out is None else (Path(out) if single else Path(out) / folder.model_id)
        )
        target.mkdir(parents=True, exist_ok=True)
        written += write(folder, target, **options)
        if on_model:
            on_model(folder.model_id)
    return written


def _writer(fmt: str):
    if fmt == "colmap":
        from blendtruth.exports.colmap import export_colmap

        return export_colmap
    if fmt == "nerfstudio":
        from blendtruth.exports.nerfstudio import export_nerfstudio

        return export_nerfstudio
    if fmt == "exr":
        from blendtruth.exports.exr import export_exr

        return export_exr
    if fmt == "coco":
        from blendtruth.exports.coco import export_coco

        return export_coco
    if fmt == "bop":
        from blendtruth.exports.bop import export_bop

        return export_bop
    from blendtruth.exports.png16 import export_png16

    return export_png16
