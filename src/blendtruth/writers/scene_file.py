"""``scene.json``: a multi-object scene as :mod:`blendtruth.scenes.placement` describes it."""

from __future__ import annotations

import os

from blendtruth.scenes.placement import SceneFile, scene_file_json
from blendtruth.writers.atomic import write_bytes


def write_scene_file(path: str | os.PathLike, scene: SceneFile) -> None:
    """Write ``scene`` as JSON, atomically (a reader never sees half a file)."""
    write_bytes(path, scene_file_json(scene).encode())
