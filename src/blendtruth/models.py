"""Model files: which formats load, and checks made before Blender sees a file (no bpy)."""

from __future__ import annotations

from pathlib import Path

from blendtruth.errors import BlendtruthError

MODEL_EXTENSIONS = (
    ".obj", ".ply", ".stl", ".glb", ".gltf", ".fbx", ".dae",
    ".usd", ".usda", ".usdc", ".usdz", ".blend",
)  # fmt: skip

# Formats whose convention is Y up; every other format here is Z up like Blender's world.
Y_UP_EXTENSIONS = (".obj", ".glb", ".gltf")


def check_model_file(path: Path) -> None:
    """Raise BlendtruthError naming ``path`` if it is missing, of an unknown kind, empty,
    or its contents are unusable (see :mod:`blendtruth.inputs` and docs/inputs.md)."""
    path = Path(path)
    if not path.exists():
        raise BlendtruthError(f"{path}: no such file")
    if not path.is_file():
        raise BlendtruthError(f"{path}: not a file")
    ext = path.suffix.lower()
    if ext not in MODEL_EXTENSIONS:
        raise BlendtruthError(
            f"{path}: unknown model format {ext or '(no extension)'!r}; "
            f"supported: {' '.join(MODEL_EXTENSIONS)}"
        )
    if path.stat().st_size == 0:
        raise BlendtruthError(f"{path}: the file is empty")
    from blendtruth.inputs import check_contents

    check_contents(path)


def default_up(paths: list[Path]) -> str:
    """'+y' when every file is of a Y-up format, else '+z' (Blender's and PLY/STL's habit)."""
    if paths and all(Path(p).suffix.lower() in Y_UP_EXTENSIONS for p in paths):
        return "+y"
    return "+z"
