"""The durable per-model status record: an append-only JSONL file, fsynced per record.

A record is written only after a model's folder has been renamed into place, so "done"
always means complete files. A run killed mid-write (or a full disk) can leave a last line
cut short: the next append first ends that line, so no record is ever glued onto it, and
readers ignore lines that are cut, not UTF-8, not JSON or not a record, with one warning
per manifest (the models they were about are simply done again). Appends hold an
exclusive ``flock`` on the file, so concurrent writers never interleave.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import warnings
from pathlib import Path
from typing import Any

from blendtruth.dataset.disk import disk_full, is_disk_full
from blendtruth.errors import BlendtruthError, BlendtruthWarning


def manifest_name(shard: tuple[int, int]) -> str:
    """One manifest per shard, so shards of a job array never write the same file."""
    index, count = shard
    return "manifest.jsonl" if count == 1 else f"manifest.shard-{index}-of-{count}.jsonl"


class Manifest:
    """Append-only JSONL at ``path``."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)

    def append(self, record: dict[str, Any]) -> None:
        """Append one record as one line (one ``write``), after ending a cut last line.
        A full disk raises DiskFull naming the manifest."""
        line = (json.dumps(record, sort_keys=True) + "\n").encode()
        try:
            fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC, 0o644)
            try:
                with contextlib.suppress(OSError):  # no locks on this file system: go on
                    fcntl.flock(fd, fcntl.LOCK_EX)
                size = os.fstat(fd).st_size
                if size and _last_byte(self.path, size) != b"\n":
                    line = b"\n" + line
                _write_all(fd, line)
                os.fsync(fd)
            finally:
                os.close(fd)  # also releases the lock
        except OSError as exc:
            if is_disk_full(exc):
                raise disk_full(exc, self.path) from None
            raise


def _last_byte(path: Path, size: int) -> bytes:
    with open(path, "rb") as f:
        f.seek(size - 1)
        return f.read(1)


def _write_all(fd: int, data: bytes) -> None:
    while data:
        data = data[os.write(fd, data) :]


def valid_record(record: Any) -> bool:
    """A record this package wrote: an object with a string id and a known status; a
    "done" record also lists its files and source."""
    if not isinstance(record, dict) or not isinstance(record.get("id"), str):
        return False
    if record.get("status") == "done":
        files = record.get("files")
        return (
            isinstance(files, list)
            and all(isinstance(f, str) for f in files)
            and isinstance(record.get("source"), str)
        )
    return record.get("status") == "failed"


def read_records(out: Path, warn: bool = False) -> dict[str, dict[str, Any]]:
    """The latest record per model id over every manifest in ``out`` (all shards). With
    ``warn``, one BlendtruthWarning per manifest that has lines it had to ignore."""
    latest: dict[str, dict[str, Any]] = {}
    for path in sorted(Path(out).glob("manifest*.jsonl")):
        try:
            data = path.read_bytes()
        except OSError as exc:
            raise BlendtruthError(f"{path}: cannot read the manifest ({exc.strerror})") from None
        bad = []
        for number, raw in enumerate(data.split(b"\n"), start=1):
            if not raw.strip():
                continue
            try:
                record = json.loads(raw.decode("utf-8"))
            except (UnicodeDecodeError, json.JSONDecodeError, RecursionError):
                record = None
            if valid_record(record):
                latest[record["id"]] = record
            else:
                bad.append(number)
        if bad and warn:
            warnings.warn(
                f"{path}: ignored {len(bad)} line(s) that are cut short or not a record "
                f"(first: line {bad[0]}); their models are done again",
                BlendtruthWarning,
                stacklevel=2,
            )
    return latest
