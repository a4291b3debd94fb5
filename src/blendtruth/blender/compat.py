"""Differences between the supported bpy lines (4.5 LTS and 5.0), kept in one place."""

from __future__ import annotations

import contextlib
import os
import sys
from collections.abc import Iterator

from blendtruth.blender._bpy import bpy

VERSION: tuple[int, int, int] = tuple(bpy.app.version)  # type: ignore[assignment]
VERSION_STRING: str = bpy.app.version_string

# The EEVEE engine was renamed back from BLENDER_EEVEE_NEXT in 5.0.
ENGINES = {
    "cycles": "CYCLES",
    "eevee": "BLENDER_EEVEE_NEXT" if VERSION < (5, 0, 0) else "BLENDER_EEVEE",
    "workbench": "BLENDER_WORKBENCH",
}


# The Environment pass's channel prefix in the multilayer EXR.
ENVIRONMENT_PASS = "Env" if VERSION < (5, 0, 0) else "Environment"
# bpy 5.0 writes the data passes under their long names.
OBJECT_INDEX_PASS = "IndexOB" if VERSION < (5, 0, 0) else "Object Index"
MATERIAL_INDEX_PASS = "IndexMA" if VERSION < (5, 0, 0) else "Material Index"
DIFFUSE_COLOR_PASS = "DiffCol" if VERSION < (5, 0, 0) else "Diffuse Color"


def set_exr_multilayer(image_settings) -> None:
    """Make ``save_render`` write every pass into one 32-bit float multilayer EXR."""
    if VERSION >= (5, 0, 0):
        # 5.0 split the format choice into a media type and a file format.
        image_settings.media_type = "MULTI_LAYER_IMAGE"
    image_settings.file_format = "OPEN_EXR_MULTILAYER"
    image_settings.color_depth = "32"
    image_settings.exr_codec = "NONE"


@contextlib.contextmanager
def redirected_output(target_fd: int, fds: tuple[int, ...] = (1,)) -> Iterator[None]:
    """Point file descriptors ``fds`` at ``target_fd`` for the duration: Blender prints
    per-sample progress (4.5) and importer logs straight to fd 1/2, past sys.stdout."""
    sys.stdout.flush()
    sys.stderr.flush()
    saved = [os.dup(fd) for fd in fds]
    try:
        for fd in fds:
            os.dup2(target_fd, fd)
        yield
    finally:
        sys.stdout.flush()
        sys.stderr.flush()
        for fd, old in zip(fds, saved, strict=True):
            os.dup2(old, fd)
            os.close(old)


@contextlib.contextmanager
def quiet_stdout() -> Iterator[None]:
    """Silence Blender's per-sample progress lines on fd 1."""
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        with redirected_output(devnull):
            yield
    finally:
        os.close(devnull)


@contextlib.contextmanager
def square_pixels_for_saving(render) -> Iterator[None]:
    """bpy 5.0 cannot write a multi-part EXR of a non-square-pixel render (its parts get
    conflicting pixelAspectRatio headers); the pixels are rendered already, so the aspect
    can be 1 while saving. A no-op on 4.5."""
    saved = (render.pixel_aspect_x, render.pixel_aspect_y)
    if VERSION >= (5, 0, 0):
        render.pixel_aspect_x = render.pixel_aspect_y = 1.0
    try:
        yield
    finally:
        render.pixel_aspect_x, render.pixel_aspect_y = saved


def uses_nodes(idblock) -> bool:
    """Whether a material or world is node-based (always from 5.0, where the flag is
    deprecated and reading it warns)."""
    return VERSION >= (5, 0, 0) or bool(idblock.use_nodes)


def use_nodes(idblock) -> None:
    """Make a world or material node-based (always so from 5.0, where the flag is deprecated)."""
    if VERSION < (5, 0, 0):
        idblock.use_nodes = True


def active_output(tree):
    """The material output node Cycles renders with (the active one for Cycles or all
    engines, else the first), or None."""
    outputs = [n for n in tree.nodes if n.type == "OUTPUT_MATERIAL"]
    for node in outputs:
        if node.is_active_output and node.target in ("ALL", "CYCLES"):
            return node
    return outputs[0] if outputs else None
