"""Expand dataset SOURCES into model files, name them stably, and split them into shards."""

from __future__ import annotations

import glob
import hashlib
import os
import re
import warnings
from pathlib import Path

from blendtruth.errors import BlendtruthError, BlendtruthWarning
from blendtruth.models import MODEL_EXTENSIONS


def expand_sources(sources: list[str | Path], exclude: Path | None = None) -> list[Path]:
    """Model files from files, folders (recursive, by supported extension), glob patterns
    and text files listing paths (one per line, '#' comments, relative to the list's
    folder). Returns resolved absolute paths, sorted, each file once however it was
    reached (symlinks, '..', relative and absolute spellings, hard links). Nothing under
    ``exclude`` (the dataset's own --out/models) is taken. A pattern that matches no model file
    is a warning; no model file at all is an error."""
    skip = Path(exclude).resolve() if exclude is not None else None
    found: list[Path] = []
    for source in sources:
        text = str(source)
        path = Path(text)
        if path.is_dir():
            found.extend(_walk(path, skip))
        elif path.is_file() and path.suffix.lower() == ".txt":
            found.extend(_read_list(path))
        elif path.is_file():
            found.append(path)
        elif glob.has_magic(text):
            matches = [Path(p) for p in glob.glob(text, recursive=True)]
            models = [p for p in matches if p.is_file() and _is_model(p)]
            if not models:
                warnings.warn(
                    f"{text}: the pattern matches no model files", BlendtruthWarning, stacklevel=2
                )
            found.extend(models)
        else:
            raise BlendtruthError(f"{text}: no such file, folder or matching pattern")
    unique = _unique_files(found, skip)
    if not unique:
        raise BlendtruthError(
            "the sources contain no model files (" + " ".join(MODEL_EXTENSIONS) + ")"
        )
    return unique


def _walk(folder: Path, skip: Path | None) -> list[Path]:
    out = []
    for root, dirs, files in os.walk(folder, followlinks=False):
        if skip is not None:  # do not even descend into our own output folder
            dirs[:] = [d for d in dirs if Path(root, d).resolve() != skip]
        out.extend(Path(root, f) for f in files if _is_model(Path(f)))
    return out


def _unique_files(paths: list[Path], skip: Path | None) -> list[Path]:
    by_file: dict[tuple[int, int], Path] = {}
    for path in paths:
        try:
            real = path.resolve(strict=True)
            st = real.stat()
        except (OSError, RuntimeError):  # a dangling or looping symlink
            continue
        if skip is not None and real.is_relative_to(skip):
            continue
        key = (st.st_dev, st.st_ino)
        if key not in by_file or real < by_file[key]:
            by_file[key] = real
    return sorted(by_file.values())


def _is_model(path: Path) -> bool:
    return path.suffix.lower() in MODEL_EXTENSIONS


def _read_list(list_file: Path) -> list[Path]:
    data = list_file.read_bytes()
    if data.startswith((b"\xff\xfe", b"\xfe\xff")) or b"\x00" in data:
        raise BlendtruthError(
            f"{list_file}: not a UTF-8 list of paths (UTF-16 or binary); save it as UTF-8"
        )
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        raise BlendtruthError(f"{list_file}: line {line}: not UTF-8 text") from None
    out = []
    for number, line in enumerate(text.splitlines(), start=1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        path = Path(line) if Path(line).is_absolute() else list_file.parent / line
        if not path.is_file():
            raise BlendtruthError(f"{list_file}: line {number}: {line}: no such file")
        out.append(path)
    return out


def model_id(path: Path) -> str:
    """A stable, file-system-safe name for a model: its file name plus a short hash of its
    absolute path, so two 'model.obj' in different folders do not collide. Never starts
    with '.', so a model folder can never look like a temporary folder (those start
    with '.')."""
    stem = re.sub(r"[^A-Za-z0-9._-]+", "_", Path(path).name)[:60]
    stem = re.sub(r"^\.", "_", stem)
    digest = hashlib.sha256(str(Path(path).resolve()).encode()).hexdigest()[:10]
    return f"{stem}-{digest}"


def parse_shard(text: str | None) -> tuple[int, int]:
    """'i/N' (0 <= i < N) -> (i, N); None -> (0, 1)."""
    if text is None:
        return 0, 1
    match = re.fullmatch(r"\s*(\d+)\s*/\s*(\d+)\s*", text)
    if not match or not 0 <= int(match[1]) < int(match[2]):
        raise BlendtruthError(f"--shard must be 'i/N' with 0 <= i < N, got {text!r}")
    return int(match[1]), int(match[2])


def in_shard(mid: str, shard: tuple[int, int]) -> bool:
    """Deterministic membership by a hash of the model id: independent of the order and
    of the other sources, so adding models never moves existing ones between shards."""
    index, count = shard
    return int(hashlib.sha256(mid.encode()).hexdigest()[:12], 16) % count == index


def model_seed(seed: int, mid: str) -> int:
    """Per-model seed: the same cameras for a model whatever the worker count or shard."""
    return int(hashlib.sha256(f"{seed}:{mid}".encode()).hexdigest()[:8], 16) % 2**31
