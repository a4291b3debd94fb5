"""``flow/NAME_i_NAME_j.npz`` and ``pairs.json``: the chosen view pairs of a multi-view
folder, computed by :mod:`blendtruth.geometry.correspondence`, written atomically."""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np

from blendtruth.conventions import CONVENTIONS_VERSION
from blendtruth.errors import BlendtruthError
from blendtruth.geometry.correspondence import (
    CONVENTION,
    DEFAULT_REL_TOL,
    _geometry,
    flow_between,
    pair_list,
)
from blendtruth.layout import FLOW, RenderLayout
from blendtruth.view import View
from blendtruth.writers.atomic import atomic_open


def write_pairs(
    out_dir: str | Path,
    names: Sequence[str],
    views: Sequence[View] | Callable[[str], View],
    mode: str | Sequence[Sequence[int]] = "consecutive",
    rel_tol: float = DEFAULT_REL_TOL,
) -> list[Path]:
    """Write ``flow/<name_i>_<name_j>.npz`` for every pair of ``mode`` (see
    :func:`pair_list`) and ``pairs.json`` listing them; returns the paths written (none for
    "none"; only pairs.json when the mode has no pairs, e.g. "consecutive" of one view).

    ``names`` are the view names (stems of ``views/<name>.npz``); ``views`` are the Views
    in that order, or a function loading one by name (each is loaded once). Each file
    holds ``flow`` (H_i×W_i×2 float32), ``covisible`` (H_i×W_i bool), ``i``, ``j``,
    ``view_i``, ``view_j``, ``tolerance`` and ``conventions`` (:data:`CONVENTION`). Every
    file is written atomically, pairs.json last.
    """
    pairs = pair_list(mode, len(names))
    if mode == "none":
        return []  # otherwise pairs.json is written, if need be with no pairs (one view)
    if not callable(views) and len(views) != len(names):
        raise BlendtruthError(f"write_pairs: {len(names)} names but {len(views)} views")
    out_dir = Path(out_dir)
    lay = RenderLayout(out_dir)
    (lay.sub(FLOW) if pairs else lay.root).mkdir(parents=True, exist_ok=True)
    cache: dict[int, tuple] = {}

    def geometry(k: int) -> tuple:
        if k not in cache:
            view = views(names[k]) if callable(views) else views[k]
            cache[k] = _geometry(view)
        return cache[k]

    written: list[Path] = []
    entries = []
    for i, j in pairs:
        flow, covisible = flow_between(geometry(i), geometry(j), rel_tol)
        rel = lay.rel(lay.flow(names[i], names[j]))
        with atomic_open(out_dir / rel) as f:
            np.savez_compressed(
                f, flow=flow, covisible=covisible, i=np.int64(i), j=np.int64(j),
                view_i=np.array(names[i]), view_j=np.array(names[j]),
                tolerance=np.float64(rel_tol), conventions=np.array(CONVENTION),
            )  # fmt: skip
        written.append(out_dir / rel)
        entries.append({
            "i": i, "j": j, "file": rel,
            "view_i": lay.rel(lay.view(names[i]).npz), "view_j": lay.rel(lay.view(names[j]).npz),
            "surface_pixels": int((geometry(i)[0] > 0).sum()),
            "covisible_pixels": int(covisible.sum()),
        })  # fmt: skip
    index = {"conventions_version": CONVENTIONS_VERSION, "conventions": CONVENTION,
             "mode": mode if isinstance(mode, str) else "list", "tolerance": rel_tol,
             "pairs": entries}  # fmt: skip
    with atomic_open(lay.pairs_json) as f:
        f.write(json.dumps(index, indent=1).encode())
    return written + [lay.pairs_json]
