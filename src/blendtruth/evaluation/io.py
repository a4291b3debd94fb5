"""Ground-truth folders and prediction files for ``blendtruth eval``.

Ground truth (GT_DIR), in the layouts docs/eval.md lists: a single render
(``view_0000.npz``: view ``0000``), a render folder (``views/NNNN.npz``: views ``NNNN``)
or a dataset folder (``models/<id>/views/NNNN.npz`` and ``scenes/NNNN/...``: views
``<id>/NNNN``). A prediction for view ``name`` is ``PRED_DIR/<name>`` with one of
:data:`PRED_EXTENSIONS`; a surface prediction of a model is ``mesh.ply`` or
``points.ply`` next to its views (``PRED_DIR/`` or ``PRED_DIR/<id>/``).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from blendtruth.errors import BlendtruthError
from blendtruth.layout import MESH_PLY, POINTS_PLY, RenderLayout, SingleViewLayout

PRED_EXTENSIONS = (".npz", ".npy", ".png", ".exr")
PRED_KEYS = ("depth", "normal", "mask")
SURFACE_FILES = (MESH_PLY, POINTS_PLY)


@dataclass(frozen=True)
class GtView:
    """One ground-truth view: its ``name`` (the prediction's file stem, '/'-separated),
    the view file and the ``model`` key ('' for a single render or render folder)."""

    name: str
    path: Path
    model: str


def gt_views(gt_dir: str | Path) -> tuple[list[GtView], dict[str, Path]]:
    """Every view of ``gt_dir`` and the render folder of each model key."""
    gt_dir = Path(gt_dir)
    single = SingleViewLayout(gt_dir)
    if single.is_single():
        return [GtView(single.name, single.view_npz, "")], {"": gt_dir}
    from blendtruth.exports.source import is_dataset_folder, render_folders

    dataset = is_dataset_folder(gt_dir) and not RenderLayout(gt_dir).is_render()
    views, folders = [], {}
    for folder in render_folders(gt_dir):
        key = folder.model_id if dataset else ""
        folders[key] = folder.path
        for name in folder.names:
            full = f"{key}/{name}" if key else name
            views.append(GtView(full, folder.view_path(name), key))
    return views, folders


def read_gt(view: GtView):
    """The :class:`~blendtruth.view.View` of a ground-truth view file."""
    from blendtruth.writers.npz import read_view_npz

    return read_view_npz(view.path)


def find_prediction(pred_dir: Path, name: str) -> Path:
    """The one prediction file of view ``name``, or a one-line error."""
    found = [p for p in (pred_dir / f"{name}{ext}" for ext in PRED_EXTENSIONS) if p.is_file()]
    if not found:
        exts = ", ".join(PRED_EXTENSIONS)
        other = sorted(p.name for p in (pred_dir / name).parent.glob(f"{Path(name).name}.*"))
        if other:
            raise BlendtruthError(
                f"{pred_dir / other[0]}: unknown prediction extension (expected one of {exts})"
            )
        raise BlendtruthError(
            f"{pred_dir / name}: no prediction for view {name} (looked for {exts})"
        )
    if len(found) > 1:
        raise BlendtruthError(
            f"{pred_dir / name}: several predictions for view {name} "
            f"({', '.join(p.name for p in found)}); keep one"
        )
    return found[0]


def read_prediction(path: Path, depth_scale: float | None = None) -> dict[str, np.ndarray]:
    """The arrays of a prediction file by key (a subset of ``depth`` H×W, ``normal``
    H×W×3, ``mask`` H×W bool).

    ``.npy``: H×W depth or H×W×3 normals. ``.npz``: keys ``depth``, ``normal``, ``mask``
    (at least one). ``.png``: 16-bit single-channel depth = value × ``depth_scale``.
    ``.exr``: channels ``depth`` (or a single ``Z``/``Y``/``R``), ``normal.X/Y/Z``, ``mask``.
    """
    ext = path.suffix.lower()
    try:
        if ext == ".npy":
            arr = np.load(path, allow_pickle=False)
            out = {"normal" if arr.ndim == 3 else "depth": arr}
        elif ext == ".npz":
            with np.load(path, allow_pickle=False) as data:
                out = {k: data[k] for k in PRED_KEYS if k in data.files}
            if not out:
                raise BlendtruthError(f"{path}: holds none of the keys {', '.join(PRED_KEYS)}")
        elif ext == ".png":
            out = {"depth": _read_png(path, depth_scale)}
        elif ext == ".exr":
            out = _read_exr(path)
        else:
            raise BlendtruthError(
                f"{path}: unknown prediction extension {ext!r} "
                f"(expected one of {', '.join(PRED_EXTENSIONS)})"
            )
    except (OSError, ValueError, EOFError) as exc:
        raise BlendtruthError(f"{path}: unreadable prediction ({exc})") from None
    return {k: _checked(path, k, v) for k, v in out.items()}


def _checked(path: Path, key: str, arr: np.ndarray) -> np.ndarray:
    want = 3 if key == "normal" else 2
    if arr.ndim != want or (key == "normal" and arr.shape[-1] != 3):
        shape = "H×W×3" if key == "normal" else "H×W"
        raise BlendtruthError(f"{path}: {key} must be {shape}, got shape {arr.shape}")
    if key == "mask":
        return arr.astype(bool) if arr.dtype == bool else arr > 0.5
    if not np.issubdtype(arr.dtype, np.number):
        raise BlendtruthError(f"{path}: {key} must be numeric, got {arr.dtype}")
    return arr.astype(np.float64)


def _read_png(path: Path, depth_scale: float | None) -> np.ndarray:
    import cv2

    if depth_scale is None:
        raise BlendtruthError(
            f"{path}: a PNG depth prediction needs --depth-scale (units per count)"
        )
    img = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
    if img is None:
        raise BlendtruthError(f"{path}: not a readable PNG")
    if img.dtype != np.uint16 or img.ndim != 2:
        raise BlendtruthError(
            f"{path}: a depth PNG must be 16-bit single-channel, got {img.dtype} shape {img.shape}"
        )
    return img.astype(np.float64) * depth_scale


def _read_exr(path: Path) -> dict[str, np.ndarray]:
    import OpenEXR

    try:
        with OpenEXR.File(str(path), separate_channels=True) as f:
            ch = {k: np.asarray(v.pixels) for k, v in f.channels().items()}
    except Exception as exc:  # OpenEXR raises bare RuntimeErrors on bad files
        raise BlendtruthError(f"{path}: not a readable EXR ({exc})") from None
    out: dict[str, np.ndarray] = {}
    depth = next((k for k in ("depth", "Z") if k in ch), None)
    if depth is None and len(ch) == 1:
        depth = next(iter(ch))
    if depth is not None:
        out["depth"] = ch[depth]
    if all(f"normal.{a}" in ch for a in "XYZ"):
        out["normal"] = np.stack([ch[f"normal.{a}"] for a in "XYZ"], axis=-1)
    if "mask" in ch:
        out["mask"] = ch["mask"]
    if not out:
        raise BlendtruthError(f"{path}: no depth, normal.X/Y/Z or mask channel ({sorted(ch)})")
    return out


def surface_prediction(pred_dir: Path, model: str) -> Path | None:
    """``mesh.ply`` or ``points.ply`` of a model's prediction folder, if there is one."""
    folder = pred_dir / model if model else pred_dir
    found = [folder / n for n in SURFACE_FILES if (folder / n).is_file()]
    if len(found) > 1:
        raise BlendtruthError(f"{folder}: both mesh.ply and points.ply; keep one")
    return found[0] if found else None


def read_surface(path: Path, samples: int, seed: int) -> tuple[np.ndarray, np.ndarray | None]:
    """Points (N×3 world frame) and normals (or None) of a surface file: a triangle mesh
    (``element face``) is sampled (:func:`~.surface.sample_surface`), a point cloud read
    as it is (with its ``nx ny nz`` when present)."""
    from blendtruth.evaluation.surface import sample_surface

    head = path.read_bytes()[:4096]
    if b"element face" in head and b"element face 0\n" not in head:
        from blendtruth.writers.meshfile import read_mesh_ply

        vertices, faces = read_mesh_ply(path)
        return sample_surface(vertices, faces, samples, seed)
    return read_points_ply(path)


_PLY_SCALARS = {
    "char": "i1", "int8": "i1", "uchar": "u1", "uint8": "u1", "short": "i2", "int16": "i2",
    "ushort": "u2", "uint16": "u2", "int": "i4", "int32": "i4", "uint": "u4", "uint32": "u4",
    "float": "f4", "float32": "f4", "double": "f8", "float64": "f8",
}  # fmt: skip


def read_points_ply(path: Path) -> tuple[np.ndarray, np.ndarray | None]:
    """Points (N×3 float64) and normals (``nx ny nz``, or None) of a PLY point cloud as
    other tools write it: ascii or binary (either endianness), the vertex element first,
    any scalar vertex properties (float or double ``x y z``)."""
    data = path.read_bytes()
    end = data.find(b"end_header")
    if not data.startswith(b"ply") or end < 0:
        raise BlendtruthError(f"{path}: not a PLY file")
    body = data.index(b"\n", end) + 1
    lines = [ln.split() for ln in data[:end].decode("ascii", "replace").splitlines()]
    fmt = next((ln[1] for ln in lines if ln[:1] == ["format"]), "")
    elements = [i for i, ln in enumerate(lines) if ln[:1] == ["element"]]
    if not elements or lines[elements[0]][1] != "vertex":
        raise BlendtruthError(f"{path}: a point cloud PLY needs the vertex element first")
    count = int(lines[elements[0]][2])
    stop = elements[1] if len(elements) > 1 else len(lines)
    props = [ln[1:] for ln in lines[elements[0] : stop] if ln[:1] == ["property"]]
    if any(p[0] == "list" or p[0] not in _PLY_SCALARS for p in props):
        raise BlendtruthError(f"{path}: vertex properties must be scalars ({props})")
    names = [p[1] for p in props]
    if not {"x", "y", "z"} <= set(names):
        raise BlendtruthError(f"{path}: vertices have no x y z")
    try:
        if fmt == "ascii":
            rows = np.loadtxt(data[body:].decode().splitlines()[:count], ndmin=2)
            col = {n: rows[:, i] for i, n in enumerate(names)}
        elif fmt in ("binary_little_endian", "binary_big_endian"):
            order = "<" if fmt == "binary_little_endian" else ">"
            dtype = np.dtype([(p[1], order + _PLY_SCALARS[p[0]]) for p in props])
            rows = np.frombuffer(data, dtype=dtype, count=count, offset=body)
            col = {n: rows[n] for n in names}
        else:
            raise BlendtruthError(f"{path}: unknown PLY format {fmt!r}")
    except ValueError as exc:
        raise BlendtruthError(f"{path}: malformed PLY vertex data ({exc})") from None
    points = np.stack([col[c] for c in "xyz"], axis=1).astype(np.float64)
    if not {"nx", "ny", "nz"} <= set(names):
        return points, None
    return points, np.stack([col[c] for c in ("nx", "ny", "nz")], axis=1).astype(np.float64)


def gt_backprojection(views: list[GtView]) -> tuple[np.ndarray, np.ndarray]:
    """The union over ``views`` of their GT surface points and normals (world frame):
    every masked pixel's ray point at the GT distance, any camera model."""
    from blendtruth.geometry.projection import surface_points
    from blendtruth.geometry.rays import normals_to_world

    points, normals = [], []
    for v in views:
        view = read_gt(v)
        cam = surface_points(view.camera, view.distance)[view.mask]
        pose = np.asarray(view.cam_to_world, dtype=np.float64)
        points.append(cam @ pose[:3, :3].T + pose[:3, 3])
        normals.append(normals_to_world(view.normal, pose)[view.mask])
    return np.concatenate(points), np.concatenate(normals)
