"""Analytic ground-truth folders and predictions for the `blendtruth eval` tests."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from blendtruth.geometry.camera import Intrinsics
from blendtruth.view import Camera, View
from blendtruth.writers.npz import write_view_npz

from analytic import ray_plane

W, H = 16, 12
K = np.array([[14.0, 0.0, 8.5], [0.0, 13.0, 5.75], [0.0, 0.0, 1.0]])
PERFECT = {"abs_rel": 0.0, "sq_rel": 0.0, "rmse": 0.0, "rmse_log": 0.0,
           "delta1": 1.0, "delta2": 1.0, "delta3": 1.0}  # fmt: skip


def view(point, normal) -> View:
    intr = Intrinsics.from_K(K, W, H)
    depth, nrm, mask = ray_plane(intr, point, normal)
    mask[:, :3] = False  # a background strip: the mask must be honoured
    depth = np.where(mask, depth, 0.0)
    nrm = np.where(mask[..., None], nrm, 0.0)
    rays = np.linalg.solve(K, np.stack([*np.meshgrid(np.arange(W) + 0.5, np.arange(H) + 0.5),
                                        np.ones((H, W))], -1).reshape(-1, 3).T).T  # fmt: skip
    length = np.linalg.norm(rays / rays[:, 2:], axis=1).reshape(H, W)
    return View(Camera(intr, np.eye(4)), depth.astype(np.float32),
                (depth * length).astype(np.float32), nrm.astype(np.float32), mask)  # fmt: skip


def gt_folder(root: Path) -> Path:
    """A render folder of two analytic views of tilted planes (depths 1.4-3.3)."""
    folder = root / "gt"
    (folder / "views").mkdir(parents=True)
    write_view_npz(folder / "views" / "0000.npz", view((0, 0, 2), (0, 0.3, -1)))
    write_view_npz(folder / "views" / "0001.npz", view((0, 0, 2.5), (0.4, -0.2, -1)))
    return folder


def gt_arrays(folder: Path, name: str) -> dict[str, np.ndarray]:
    with np.load(folder / "views" / f"{name}.npz") as v:
        return {k: v[k] for k in ("depth", "normal", "mask")}


def predict(gt: Path, pred: Path, fn, ext: str = ".npy") -> Path:
    pred.mkdir(parents=True, exist_ok=True)
    for name in ("0000", "0001"):
        g = gt_arrays(gt, name)
        out = fn(g["depth"].astype(np.float64), g["normal"], g["mask"])
        if ext == ".npy":
            np.save(pred / f"{name}.npy", out)
        else:
            np.savez(pred / f"{name}.npz", **out)
    return pred


def assert_depth(result: dict, expected: dict, tol: float = 1e-9) -> None:
    for key, value in expected.items():
        assert result[key] == pytest.approx(value, abs=tol), key


SQUARE_V = np.array([[0, 0, 0], [1, 0, 0], [1, 1, 0], [0, 1, 0]], float)
SQUARE_F = np.array([[0, 1, 2], [0, 2, 3]])
