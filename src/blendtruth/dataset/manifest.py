"""The durable per-model status record: an append-only JSONL file, fsynced per record.

A record is written only after a model's folder has been renamed into place, so "done"
always means complete files. A run killed mid-write leaves at most one truncated last
line, which readers skip.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any


def manifest_name(shard: tuple[int, int]) -> str:
    """One manifest per shard, so shards of a job array never write the same file."""
    index, count = shard
    return "manifest.jsonl" if count == 1 else f"manifest.shard-{index}-of-{count}.jsonl"


class Manifest:
    """Append-only JSONL at ``path``."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)

    def append(self, record: dict[str, Any]) -> None:
        line = json.dumps(record, sort_keys=True) + "\n"
        with open(self.path, "a", encoding="utf-8") as f:
            f.write(line)
            f.flush()
            os.fsync(f.fileno())


def read_records(out: Path) -> dict[str, dict[str, Any]]:
    """The latest record per model id over every manifest in ``out`` (all shards)."""
    latest: dict[str, dict[str, Any]] = {}
    for path in sorted(Path(out).glob("manifest*.jsonl")):
        with open(path, encoding="utf-8") as f:
            for line in f:
                try:
                    record = json.loads(line)
                except json.JSONDecodeError:
                    continue  # a line cut short by a kill
                if isinstance(record, dict) and "id" in record:
                    latest[record["id"]] = record
    return latest
