"""The fused ``points.ply`` accumulated view by view, in memory bounded by the voxels.

Each view's hit points (voxel key, point, normal, colour) are queued as the view is
rendered and merged into a running table of per-voxel (sums, count) whenever the queue
outgrows 4x the table or 2^20 rows; memory grows with the number of occupied voxels, not
with views × pixels. The result equals
:func:`blendtruth.geometry.pointcloud.voxel_downsample` of all views' points at once: the mean
point, renormalised mean normal and rounded mean colour per voxel, ordered by voxel index.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from blendtruth.errors import BlendtruthError

if TYPE_CHECKING:
    from blendtruth.view import View

_BITS = 20  # per axis: voxel indices relative to the scene's corner must fit in 2^20
_PENDING_ROWS = 1 << 20


class VoxelAccumulator:
    """Per-voxel sums of points (world frame), normals (world) and colours (uint8 RGB).

    ``voxel``: edge length in scene units; ``center``/``radius``: a sphere holding every
    point (the scene's bounding sphere), used to number the voxels compactly."""

    def __init__(self, voxel: float, center: np.ndarray, radius: float) -> None:
        if not (np.isfinite(voxel) and voxel > 0):
            raise BlendtruthError(f"voxel size must be a number > 0, got {voxel}")
        self.voxel = float(voxel)
        margin = 2 * self.voxel
        self._origin = np.floor((np.asarray(center, float) - radius - margin) / self.voxel)
        span = np.ceil(2 * (radius + margin) / self.voxel) + 2
        if span >= 2**_BITS:
            raise BlendtruthError(f"voxel {voxel:g} is too small for a scene of radius {radius:g}")
        self._keys = np.zeros(0, np.int64)
        self._sums = np.zeros((0, 9), np.float64)  # point xyz, normal xyz[, colour rgb]
        self._grey: bool | None = None
        self._counts = np.zeros(0, np.int64)
        self._pending: list[tuple[np.ndarray, np.ndarray, np.ndarray]] = []
        self._pending_rows = 0

    def add(self, points: np.ndarray, normals: np.ndarray, colors: np.ndarray | None) -> None:
        """Add N×3 points, N×3 normals, N×3 uint8 colours (None: grey, 200, and not
        summed; then every call must pass None)."""
        if len(points) == 0:
            return
        if self._grey is None:
            self._grey = colors is None
            self._sums = np.zeros((0, 6 if self._grey else 9), np.float64)
        if self._grey != (colors is None):
            raise BlendtruthError("give colours for every view or for none")
        cells = np.floor(points / self.voxel) - self._origin
        # Points a rounding error outside the sphere still get a voxel of their own.
        cells = np.clip(cells, 0, 2**_BITS - 1).astype(np.int64)
        keys = (cells[:, 0] << (2 * _BITS)) | (cells[:, 1] << _BITS) | cells[:, 2]
        columns = [points, normals] if colors is None else [points, normals, colors]
        values = np.concatenate(columns, axis=1, dtype=np.float64)
        self._pending.append((keys, values, np.ones(len(keys), np.int64)))
        self._pending_rows += len(keys)
        # Sorting is the cost: merge only when the pending rows outgrow 4x the table (and
        # 2^20 rows, ~60 MB): each row is sorted O(1) times, memory stays bounded.
        if self._pending_rows > max(4 * len(self._keys), _PENDING_ROWS):
            self._merge()

    def _merge(self) -> None:
        if not self._pending:
            return
        parts = [(self._keys, self._sums, self._counts), *self._pending]
        self._keys, self._sums, self._counts = _reduce(
            np.concatenate([p[0] for p in parts]),
            np.concatenate([p[1] for p in parts]),
            np.concatenate([p[2] for p in parts]),
        )
        self._pending, self._pending_rows = [], 0

    def add_view(self, view: View) -> None:
        """Add a view's hit pixels: back-projected depth, world normals, RGB (or grey)."""
        mask = view.mask
        intr = view.camera.intrinsics
        rows, cols = np.nonzero(mask)
        pose = view.cam_to_world
        if getattr(view.camera, "model", "pinhole") == "pinhole":
            depth = view.depth[rows, cols].astype(np.float64)
            x = (cols + 0.5 - intr.cx) / intr.fx
            y = (rows + 0.5 - intr.cy) / intr.fy
            local = np.empty((len(rows), 3))
            local[:, 0], local[:, 1], local[:, 2] = x * depth, y * depth, depth
        else:  # the model's own rays through the hit pixels, at their ray distance
            uv = np.stack([cols + 0.5, rows + 0.5], axis=1)
            o, d, _ = view.camera.projection.rays(uv)
            local = o + d * view.distance[rows, cols].astype(np.float64)[:, None]
        points = local @ pose[:3, :3].T + pose[:3, 3]
        normals = view.normal[rows, cols].astype(np.float64) @ pose[:3, :3].T
        self.add(points, normals, None if view.rgb is None else view.rgb[rows, cols])

    def result(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(points M×3 float64, unit normals M×3 float64, colours M×3 uint8)."""
        self._merge()
        mean = self._sums / np.maximum(self._counts, 1)[:, None]
        normals = mean[:, 3:6]
        norm = np.linalg.norm(normals, axis=1, keepdims=True)
        normals = np.divide(normals, norm, out=np.zeros_like(normals), where=norm > 0)
        if self._grey is not False:
            return mean[:, :3], normals, np.full((len(mean), 3), 200, np.uint8)
        return mean[:, :3], normals, np.rint(mean[:, 6:9]).astype(np.uint8)


def _reduce(keys: np.ndarray, values: np.ndarray, counts: np.ndarray):
    """Sum rows of ``values`` and ``counts`` with equal keys; keys come back sorted.
    Sorts the keys only and sums each column with bincount (no gather of the rows)."""
    order = np.argsort(keys)
    sorted_keys = keys[order]
    first = np.r_[True, sorted_keys[1:] != sorted_keys[:-1]]
    group = np.empty(len(keys), np.int64)
    group[order] = np.cumsum(first) - 1
    m = int(first.sum())
    sums = np.empty((m, values.shape[1]))
    for k in range(values.shape[1]):
        sums[:, k] = np.bincount(group, weights=values[:, k], minlength=m)
    total = np.bincount(group, weights=counts, minlength=m).astype(np.int64)
    return sorted_keys[first], sums, total
