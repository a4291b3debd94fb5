"""Passes derived from the cast passes (pure numpy)."""

from __future__ import annotations

import numpy as np

# Relative depth jump between 4-neighbours that counts as an occlusion boundary.
BOUNDARY_DEPTH_JUMP = 0.02


def occlusion_boundary(depth: np.ndarray, mask: np.ndarray, instance: np.ndarray) -> np.ndarray:
    """H×W bool: a hit pixel whose 4-neighbour (inside the image) is background, another
    instance, or a surface whose depth differs by more than 2 % of the nearer depth."""
    h, w = depth.shape
    out = np.zeros((h, w), bool)
    d = depth.astype(np.float64)
    for a, b in (
        ((slice(None), slice(1, None)), (slice(None), slice(None, -1))),
        ((slice(1, None), slice(None)), (slice(None, -1), slice(None))),
    ):
        jump = (mask[a] != mask[b]) | (instance[a] != instance[b])
        near = np.minimum(d[a], d[b])
        jump |= np.abs(d[a] - d[b]) > BOUNDARY_DEPTH_JUMP * near
        out[a] |= jump
        out[b] |= jump
    return out & mask
