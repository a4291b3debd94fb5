"""Untrusted model files checked against their own bytes before Blender opens them.

Blender's importers turn NaN, infinite and unparsable coordinates into 0, drop faces with
bad indices, abort the process on absurd PLY counts and block forever on a FIFO texture,
all without a word. :func:`check_contents` reads each format the way its importer would
(bounded memory, numpy for binary data) and raises :class:`BlendtruthError` naming the
file and, where cheap, the line or element. See docs/inputs.md for the policy.
"""

from __future__ import annotations

from pathlib import Path


def check_contents(path: Path) -> None:
    """Format-specific checks of ``path`` (an existing, non-empty regular file whose
    extension is known); raises BlendtruthError, may warn with BlendtruthWarning."""
    import numpy as np

    ext = path.suffix.lower()
    with np.errstate(all="ignore"):
        if ext == ".obj":
            from blendtruth.inputs import obj, refs

            refs.check_obj_references(path, obj.check(path))
        elif ext == ".stl":
            from blendtruth.inputs import stl

            stl.check(path)
        elif ext == ".ply":
            from blendtruth.inputs import ply

            ply.check(path)
        elif ext in (".gltf", ".glb"):
            from blendtruth.inputs import gltf

            gltf.check(path)
        elif ext == ".usda":
            from blendtruth.inputs import refs

            refs.check_usda_layers(path)
        elif ext in (".fbx", ".dae"):
            from blendtruth.inputs import refs

            refs.check_embedded_names(path)
