"""Read the multilayer EXR that Blender writes for a render into numpy channels."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from blendtruth.errors import BlendtruthError


def read_channels(path: Path) -> dict[str, np.ndarray]:
    """All channels of all parts of a multilayer EXR, keyed ``"<Pass>.<Channel>"``.

    The view-layer prefix is dropped (``"ViewLayer.Depth.Z"`` -> ``"Depth.Z"``). Arrays are
    H×W float32 with rows top-down. bpy 4.5 writes one part, 5.0 one part per pass; both
    are merged here.
    """
    import OpenEXR

    out: dict[str, np.ndarray] = {}
    with OpenEXR.File(str(path), separate_channels=True) as exr:
        for part in exr.parts:
            for name, channel in part.channels.items():
                key = name.split(".", 1)[1] if name.count(".") >= 2 else name
                out[key] = np.asarray(channel.pixels, dtype=np.float32)
    return out


def stack(channels: dict[str, np.ndarray], pass_name: str, names: str) -> np.ndarray:
    """Stack ``pass_name.X`` for X in ``names`` into an H×W×len(names) array."""
    try:
        return np.dstack([channels[f"{pass_name}.{c}"] for c in names])
    except KeyError as exc:
        raise BlendtruthError(
            f"Blender's render has no channel {exc.args[0]!r} (has: {sorted(channels)})"
        ) from None
