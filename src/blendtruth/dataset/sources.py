"""Expand dataset SOURCES into model files, name them stably, and split them into shards."""

from __future__ import annotations

import glob
import hashlib
import re
from pathlib import Path

from blendtruth.errors import BlendtruthError
from blendtruth.models import MODEL_EXTENSIONS


def expand_sources(sources: list[str | Path]) -> list[Path]:
    """Model files from files, folders (recursive, by supported extension), glob patterns
    and text files listing paths (one per line, '#' comments, relative to the list's
    folder). Returns absolute paths, sorted, without duplicates."""
    found: set[Path] = set()
    for source in sources:
        text = str(source)
        path = Path(text)
        if path.is_dir():
            found.update(p for p in path.rglob("*") if p.is_file() and _is_model(p))
        elif path.is_file() and path.suffix.lower() == ".txt":
            found.update(_read_list(path))
        elif path.is_file():
            found.add(path)
        elif glob.has_magic(text):
            matches = [Path(p) for p in glob.glob(text, recursive=True)]
            found.update(p for p in matches if p.is_file() and _is_model(p))
        else:
            raise BlendtruthError(f"{text}: no such file, folder or matching pattern")
    if not found:
        raise BlendtruthError(
            "the sources contain no model files (" + " ".join(MODEL_EXTENSIONS) + ")"
        )
    return sorted(p.resolve() for p in found)


def _is_model(path: Path) -> bool:
    return path.suffix.lower() in MODEL_EXTENSIONS


def _read_list(list_file: Path) -> list[Path]:
    out = []
    for number, line in enumerate(list_file.read_text().splitlines(), start=1):
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
    absolute path, so two 'model.obj' in different folders do not collide."""
    stem = re.sub(r"[^A-Za-z0-9._-]+", "_", Path(path).name)[:60]
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
