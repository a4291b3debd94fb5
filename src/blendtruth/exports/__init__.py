"""Exports: every tool's format derived from the canonical ``views/NNNN.npz`` files.

One module per format (see docs/exports.md for every file, unit and channel), each found
through the registry here: a module of this package declares ``FORMAT =
ExportFormat(...)`` (its name, scope, the passes it needs as ground truth, whether it needs
RGB, the top-level names it writes). Adding a format is adding one module; the ``export``
command, ``--export`` on ``render``/``dataset``, ``parse_formats`` and the names a new
render replaces (writers/swap.py) all read :func:`formats`. A module without ``FORMAT``
(a helper such as ``annotated``) is not a format.
"""

from __future__ import annotations

import importlib
import inspect
import pkgutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from blendtruth.errors import BlendtruthError

MODEL = "model"  # export(folder: RenderFolder, target: Path, **options), once per model
FOLDER = "folder"  # export(folders: list[RenderFolder], out: Path, **options), once in all

# Modules of this package that are not formats.
_NOT_FORMATS = {"source"}


@dataclass(frozen=True)
class ExportFormat:
    """One export format.

    ``export``: for scope :data:`MODEL` ``export(folder, target, **options)`` writes into
    ``target`` (a model's folder or ``out/<id>``); for :data:`FOLDER`
    ``export(folders, out, **options)`` writes once for every model. ``needs``: the passes
    it reads as ground truth (a simulated pass there is refused, :mod:`blendtruth.passes`).
    ``needs_rgb``: refused for renders without RGB. ``writes``: the top-level names it adds
    to its target (a new render replaces them). Options are the keyword parameters of
    ``export`` after the first two.
    """

    name: str
    export: Callable[..., list[Path]]
    scope: str = MODEL
    needs: tuple[str, ...] = ("depth", "distance", "normal", "mask")
    needs_rgb: bool = False
    writes: tuple[str, ...] = ()
    doc: str = ""

    def __post_init__(self) -> None:
        if self.scope not in (MODEL, FOLDER):
            raise ValueError(f"export format {self.name!r}: scope must be {MODEL!r} or {FOLDER!r}")

    @property
    def options(self) -> frozenset[str]:
        """The keyword options ``export`` takes (beyond its folder and target)."""
        params = list(inspect.signature(self.export).parameters.values())[2:]
        return frozenset(p.name for p in params if p.kind is not p.VAR_KEYWORD)


_REGISTRY: dict[str, ExportFormat] = {}
_discovered = False


def register(fmt: ExportFormat) -> ExportFormat:
    """Add ``fmt`` to the registry (a name already there is a programming error)."""
    existing = _REGISTRY.get(fmt.name)
    if existing is not None and existing != fmt:
        raise ValueError(f"export format {fmt.name!r} is registered twice")
    _REGISTRY[fmt.name] = fmt
    return fmt


def unregister(name: str) -> None:
    """Remove a format (tests register their own and take them out again)."""
    _REGISTRY.pop(name, None)


def formats() -> dict[str, ExportFormat]:
    """Every registered format by name, the modules of this package found first."""
    global _discovered
    if not _discovered:
        _discovered = True
        for info in sorted(pkgutil.iter_modules(__path__), key=lambda m: m.name):
            if info.name.startswith("_") or info.name in _NOT_FORMATS:
                continue
            try:
                module = importlib.import_module(f"{__name__}.{info.name}")
            except ModuleNotFoundError as exc:
                if (exc.name or "blendtruth").split(".")[0] == "blendtruth":
                    raise
                # A format whose optional package is missing is still listed; using it
                # says what to install instead of breaking every other format.
                register(ExportFormat(info.name, _missing_package(info.name, exc.name)))
                continue
            fmt = getattr(module, "FORMAT", None)  # helper modules declare none
            if isinstance(fmt, ExportFormat):
                register(fmt)
    return dict(_REGISTRY)


def _missing_package(name: str, package: str) -> Callable[..., list[Path]]:
    def refuse(folder, target, **options) -> list[Path]:
        raise BlendtruthError(
            f"export {name}: needs the Python package {package!r}, which is not installed "
            f"(pip install {package}, or the extra that docs/exports.md names for {name})"
        )

    return refuse


def get_format(name: str) -> ExportFormat:
    """The format ``name``, or the one-line error listing every format."""
    found = formats()
    if name not in found:
        parse_formats(name)
    return found[name]


def written_names() -> tuple[str, ...]:
    """Every top-level name an export writes into a render folder."""
    return tuple(dict.fromkeys(n for f in formats().values() for n in f.writes))


def parse_formats(text: str | None) -> list[str]:
    """'colmap,exr' -> ['colmap', 'exr']; unknown names are a one-line error."""
    if not text:
        return []
    known = formats()
    names = [n.strip() for n in text.split(",") if n.strip()]
    bad = [n for n in names if n not in known]
    if bad or not names:
        raise BlendtruthError(
            f"--export: unknown format {', '.join(bad) or repr(text)}; choose from "
            f"{', '.join(known)} (comma-separated)"
        )
    return list(dict.fromkeys(names))


def check_render_options(names: list[str], rgb: bool) -> None:
    """``--export`` on ``render``/``dataset``: a format that needs RGB is refused for a
    render without it, before any rendering."""
    for name in names:
        if get_format(name).needs_rgb and not rgb:
            raise BlendtruthError(f"--export {name} needs RGB images; drop --no-rgb")


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
    whole-folder formats (``webdataset``) write once into ``out or path``. ``on_model`` is
    called with each model id when it is done (progress). Returns the files written."""
    from blendtruth.exports.source import render_folders
    from blendtruth.passes import require_truth

    spec = get_format(fmt)
    require_truth(spec.needs, f"export {spec.name}")
    path = Path(path)
    folders = render_folders(path)
    if spec.scope == FOLDER:
        return spec.export(folders, Path(out or path), **options)
    single = len(folders) == 1 and folders[0].path == path
    written: list[Path] = []
    for folder in folders:
        target = (
            folder.path if out is None else (Path(out) if single else Path(out) / folder.model_id)
        )
        target.mkdir(parents=True, exist_ok=True)
        written += spec.export(folder, target, **options)
        if on_model:
            on_model(folder.model_id)
    return written
