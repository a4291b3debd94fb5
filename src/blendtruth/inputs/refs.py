"""Files a model names (OBJ's MTL files and textures, glTF buffers and images, USDA
layers): refused when they exist but are not regular files, since opening a FIFO blocks
forever and a device such as /dev/zero or /dev/urandom never ends. Missing files are left
to Blender's own warnings.
"""

from __future__ import annotations

import os
import re
import stat
import warnings
from pathlib import Path

from blendtruth.errors import BlendtruthError, BlendtruthWarning

_KINDS = {
    stat.S_IFIFO: "a FIFO (named pipe)",
    stat.S_IFCHR: "a character device",
    stat.S_IFBLK: "a block device",
    stat.S_IFDIR: "a folder",
    stat.S_IFSOCK: "a socket",
}
# MTL statements naming a file, and the options that may precede the name, with their
# number of arguments.
_MAP_KEYS = (b"map_", b"bump", b"disp", b"decal", b"refl", b"norm")
_OPTION_ARGS = {
    "-bm": 1,
    "-boost": 1,
    "-mm": 2,
    "-texres": 1,
    "-clamp": 1,
    "-imfchan": 1,
    "-type": 1,
    "-blendu": 1,
    "-blendv": 1,
    "-cc": 1,
    "-o": 3,
    "-s": 3,
    "-t": 3,
}
_USD_ASSET = re.compile(rb"@([^@\n]+)@")
# Texture file names: binary FBX stores them as a string property ('S', uint32 length,
# bytes) right after the property name; ASCII FBX as `Name: "path"`; COLLADA in init_from.
_FBX_BINARY = re.compile(rb"(?:RelativeFilename|FileName)S(.{4})", re.DOTALL)
_FBX_ASCII = re.compile(rb'(?:RelativeFilename|FileName): *"([^"\n]*)"')
_DAE_IMAGE = re.compile(rb"<init_from>\s*([^<]+?)\s*</init_from>")
SCAN_BYTES = 1 << 22
_SYSTEM_TREES = ("/proc", "/sys")


def check_regular(model: Path, what: str, target: Path, must_exist: bool = False) -> None:
    """Raise naming ``model`` if ``target`` exists and is not a regular file (or is
    missing while ``must_exist``)."""
    try:
        mode = os.stat(target).st_mode
    except FileNotFoundError:
        if must_exist:
            raise BlendtruthError(f"{model}: {what} {str(target)!r} does not exist") from None
        return
    except OSError as exc:
        raise BlendtruthError(f"{model}: {what} {str(target)!r} cannot be read "
                              f"({exc.strerror})") from None  # fmt: skip
    if not stat.S_ISREG(mode):
        kind = _KINDS.get(stat.S_IFMT(mode), "not a regular file")
        raise BlendtruthError(
            f"{model}: {what} {str(target)!r} is {kind}, not a regular file; refusing to read it"
        )
    real = os.path.realpath(target)
    if any(real == t or real.startswith(t + "/") for t in _SYSTEM_TREES):
        raise BlendtruthError(f"{model}: {what} {str(target)!r} is a system file ({real}); "
                              "refusing to read it")  # fmt: skip


def check_obj_references(model: Path, mtllibs: list[str]) -> None:
    """Check the MTL files an OBJ names and the texture files those MTL files name."""
    folder = model.parent
    for entry in mtllibs:
        # A name may contain spaces (Blender takes the whole rest of the line first).
        names = [entry] if (folder / entry).exists() else entry.split()
        for name in names:
            mtl = folder / name
            check_regular(model, "material library", mtl)
            _warn_if_outside(model, "material library", mtl)
            if mtl.is_file():
                for texture in _mtl_textures(mtl):
                    for candidate in (mtl.parent / texture, mtl.parent / Path(texture).name):
                        check_regular(model, "texture", candidate)
                    _warn_if_outside(model, "texture", mtl.parent / texture)


def check_usda_layers(model: Path) -> None:
    """Check the asset paths (``@path@``) of a text USD file."""
    with open(model, "rb") as f:
        text = f.read(1 << 24)
    for raw in set(_USD_ASSET.findall(text)):
        name = raw.decode("utf-8", "replace").strip()
        if "://" in name or not name:
            continue
        check_regular(model, "USD layer or asset", model.parent / name)


def check_embedded_names(model: Path) -> None:
    """Check the texture files an FBX or COLLADA file names, found by a streaming scan
    (bounded memory) of the file for the places those formats store file names."""
    names: set[str] = set()
    fbx = model.suffix.lower() == ".fbx"
    with open(model, "rb") as f:
        tail = b""
        while True:
            block = f.read(SCAN_BYTES)
            data = tail + block
            if fbx:
                for m in _FBX_BINARY.finditer(data):
                    n = int.from_bytes(m.group(1), "little")
                    if n < 4096 and m.end() + n <= len(data):
                        names.add(data[m.end() : m.end() + n].decode("utf-8", "replace"))
                names.update(m.decode("utf-8", "replace") for m in _FBX_ASCII.findall(data))
            else:
                names.update(m.decode("utf-8", "replace") for m in _DAE_IMAGE.findall(data))
            if not block:
                break
            tail = data[-8192:]
    for name in sorted(n.replace("\\", "/").removeprefix("file://") for n in names):
        if not Path(name).name:
            continue
        # Where Blender's importers look: the path as stored, beside the model, by name.
        candidates = {model.parent / name, model.parent / Path(name).name}
        if Path(name).is_absolute():
            candidates.add(Path(name))
        for candidate in sorted(candidates):
            check_regular(model, "texture", candidate)


def _mtl_textures(mtl: Path) -> list[str]:
    names = []
    with open(mtl, "rb") as f:
        for raw in f.read(1 << 24).splitlines():
            line = raw.strip()
            if not line.lower().startswith(_MAP_KEYS):
                continue
            tokens = line.decode("utf-8", "replace").split()[1:]
            while tokens and tokens[0] in _OPTION_ARGS:
                n = _OPTION_ARGS[tokens[0]]
                tokens = tokens[1:]
                while n and tokens and _is_number_or_flag(tokens[0]):
                    tokens, n = tokens[1:], n - 1
            if tokens:
                names.append(" ".join(tokens).replace("\\", "/"))
    return names


def _is_number_or_flag(token: str) -> bool:
    if token in ("on", "off"):
        return True
    try:
        float(token)
    except ValueError:
        return False
    return True


def _warn_if_outside(model: Path, what: str, target: Path) -> None:
    if not target.is_file():
        return
    folder = os.path.normpath(model.parent.absolute())
    full = os.path.normpath(target.absolute())
    if os.path.commonpath([folder, full]) != folder:
        warnings.warn(f"{model}: {what} {str(target)!r} is outside the model's folder; "
                      "it is read anyway", BlendtruthWarning, stacklevel=4)  # fmt: skip
