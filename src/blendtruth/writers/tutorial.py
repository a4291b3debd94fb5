"""The tutorial's ``d.npz``: ``dmap`` (planar depth) and ``nmap`` (its Sobel normal encoding)."""

from __future__ import annotations

import os

import numpy as np

from blendtruth.errors import BlendtruthError
from blendtruth.geometry.normals import dmap2norm, normals_from_depth
from blendtruth.view import View
from blendtruth.writers.atomic import atomic_open


def encode_nmap(normal_cam: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """Camera-frame normals (OpenCV, facing the camera) in the tutorial's encoding.

    The tutorial stores t = (-zx, -zy, 1)/|.| with channels reversed and mapped to [0, 1];
    t points away from the camera, so t = -normal_cam. Pixels without a surface get the
    tutorial's value for flat depth, t = (0, 0, 1).
    """
    t = np.where(mask[..., None], -normal_cam, np.array([0.0, 0.0, 1.0]))
    return ((t[..., ::-1] + 1.0) / 2.0).astype(np.float32)


def tutorial_nmap(view: View, source: str) -> np.ndarray:
    """``nmap`` from ``source``: 'pass' (Blender's exact normals), 'pinhole' (from depth
    with K) or 'sobel' (the tutorial's own dmap2norm, bit for bit)."""
    if source == "sobel":
        return dmap2norm(view.depth)
    if source == "pass":
        return encode_nmap(view.normal, view.mask)
    if source == "pinhole":
        normal, valid = normals_from_depth(view.depth, view.camera.intrinsics, method="pinhole")
        return encode_nmap(normal, valid)
    raise BlendtruthError(f"--normals must be one of pass, pinhole, sobel; got {source!r}")


def write_tutorial_npz(path: str | os.PathLike, view: View, source: str = "pass") -> None:
    """Write ``d.npz`` as the tutorial does: dmap H×W float32, nmap H×W×3 float32."""
    nmap = tutorial_nmap(view, source)
    with atomic_open(path) as f:
        np.savez_compressed(f, dmap=view.depth.astype(np.float32), nmap=nmap)
