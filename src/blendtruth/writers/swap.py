"""Put a finished multi-view render in place of an earlier one in the same folder.

``blendtruth render`` writes into a hidden sibling folder first; only when every file is
written does :func:`replace_render` move the new files in. An earlier render's outputs are
removed first (only names blendtruth writes: other files in the folder are kept), so the
folder never mixes two renders' views, and an interrupted render leaves the old one whole.
"""

from __future__ import annotations

import os
import shutil
import warnings
from pathlib import Path

from blendtruth.errors import BlendtruthWarning
from blendtruth.layout import RENDER_FILES
from blendtruth.runtime.processes import pid_alive

# ``blendtruth show``'s default output folder inside the render folder.
_SHOW = "show"


def render_outputs() -> tuple[str, ...]:
    """Every top-level name a multi-view render (:data:`blendtruth.layout.RENDER_FILES`),
    its exports (the export registry) or ``show`` can write."""
    from blendtruth.exports import written_names

    return tuple(dict.fromkeys(RENDER_FILES + written_names() + (_SHOW,)))


def staging_dir(out: Path) -> Path:
    """The hidden folder beside the outputs that a render writes into first."""
    return Path(out) / f".render-tmp-{os.getpid()}"


def replace_render(staging: Path, out: Path) -> list[Path]:
    """Move everything in ``staging`` into ``out``, replacing an earlier render's outputs
    (with a warning naming the folder). Returns the new paths."""
    staging, out = Path(staging), Path(out)
    earlier = [out / name for name in render_outputs() if (out / name).exists()]
    if earlier:
        warnings.warn(
            f"--out {out}: replacing the earlier render's files there",
            BlendtruthWarning,
            stacklevel=2,
        )
    for path in earlier:
        if path.is_dir() and not path.is_symlink():
            shutil.rmtree(path)
        else:
            path.unlink()
    moved = []
    for item in sorted(staging.iterdir()):
        os.replace(item, out / item.name)
        target = out / item.name
        moved += (
            sorted(p for p in target.rglob("*") if p.is_file()) if target.is_dir() else [target]
        )
    staging.rmdir()
    return moved


def remove_stale_staging(out: Path) -> None:
    """Remove staging folders that interrupted renders left in ``out``."""
    for path in Path(out).glob(".render-tmp-*"):
        pid = path.name.rsplit("-", 1)[-1]
        if pid.isdigit() and not pid_alive(int(pid)):
            shutil.rmtree(path, ignore_errors=True)
