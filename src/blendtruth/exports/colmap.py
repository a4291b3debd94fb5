"""COLMAP sparse model from a render folder: ``sparse/0/`` in text and binary, ``images/``.

Written (COLMAP 3.12+ / pycolmap 4 layout; older COLMAP ignores rigs and frames):
    sparse/0/cameras.txt|bin   one camera per distinct camera model and K, in COLMAP's model
                               of the same rays: PINHOLE fx fy cx cy = K unchanged (COLMAP's
                               pixel centres are at +0.5, like ours); a fisheye of <= 180 deg
                               is OPENCV_FISHEYE fx fy cx cy 0 0 0 0; ortho, equirect and wider
                               fisheyes have no COLMAP model: refused in one line
    sparse/0/images.txt|bin    per view: world-to-camera quaternion (qw qx qy qz, Hamilton)
                               and translation (OpenCV axes, exact), camera id, image name,
                               the 2D observations of the 3D points
    sparse/0/points3D.txt|bin  world points back-projected from the exact depth (pixel
                               centres of a stride-s grid, at most max_points: 20,000 by
                               default, a typical sparse model's size), with their tracks:
                               every view that sees the point (its interpolated depth agrees within
                               TRACK_REL_TOL) and the exact sub-pixel position it lands at;
                               colour from the RGB image (grey 200 without one); error =
                               mean reprojection error (px) over the track
    sparse/0/rigs.txt|bin, frames.txt|bin   trivial rigs (one camera each), one frame per image
    images/NNNN.png            rgb/NNNN.png (hard links where possible, else copies);
                               without RGB no images/ is written
                               (the sparse model is complete; image-based tools need RGB)
    images_4/NNNN.png          the images area-averaged 4× smaller (--image-factors)
    colmap/sparse/0/           sparse/0's files again (hard links): nerfstudio's default
"""

from __future__ import annotations

import contextlib
import math
import os
import shutil
import struct
from pathlib import Path

import numpy as np

from blendtruth.errors import BlendtruthError
from blendtruth.exports import ExportFormat
from blendtruth.exports.source import RenderFolder
from blendtruth.geometry.camera_models import CannotExpress
from blendtruth.geometry.frames import invert_pose
from blendtruth.geometry.reproject import project, ray_points, visibility
from blendtruth.writers.atomic import atomic_open, write_bytes

# A point joins a view's track when that view's depth there agrees to this relative tolerance.
TRACK_REL_TOL = 1e-3
# COLMAP's CameraModelId of the models written here.
_MODEL_IDS = {"PINHOLE": 1, "OPENCV_FISHEYE": 5}
#: Default budget of 3D points: SfM sparse models hold tens of thousands, not one per pixel.
MAX_POINTS = 20_000
# images_F/ written beside images/: gsplat's simple_trainer reads images_4 by default.
DEFAULT_IMAGE_FACTORS = (4,)
_CAMERA_SENSOR = 0  # COLMAP's SensorType::CAMERA in binary files
_INVALID_ID = 2**64 - 1  # COLMAP's kInvalidPoint3DId as uint64
SPARSE_DIR, IMAGES_DIR = "sparse", "images"  # what this format adds to its target


def export_colmap(
    folder: RenderFolder,
    out: Path,
    max_points: int = MAX_POINTS,
    image_factors: tuple[int, ...] = DEFAULT_IMAGE_FACTORS,
) -> list[Path]:
    """Write the COLMAP model of ``folder`` into ``out`` (see the module docstring).
    At most about ``max_points`` 3D points: the pixel grid stride grows to fit.
    ``images_F/`` for every F of ``image_factors`` and ``colmap/sparse/0/``:
    :func:`consumer_layout`."""
    model = build_model(folder, max_points)
    sparse = Path(out) / SPARSE_DIR / "0"
    sparse.mkdir(parents=True, exist_ok=True)
    written = write_text(model, sparse) + write_binary(model, sparse)
    if folder.has_rgb:
        (Path(out) / IMAGES_DIR).mkdir(exist_ok=True)
        for name in folder.names:
            dest = Path(out) / IMAGES_DIR / f"{name}.png"
            _link_or_copy(folder.layout.view(name).rgb, dest)
            written.append(dest)
    return written + consumer_layout(folder, Path(out), image_factors)


def consumer_layout(folder: RenderFolder, out: Path, factors: tuple[int, ...]) -> list[Path]:
    """What common COLMAP readers look for at their defaults, beside ``sparse/0``:
    ``colmap/sparse/0/`` (nerfstudio's ``colmap`` parser: ``colmap_path``), as hard links
    of ``sparse/0``'s files (copies where links fail), and, with RGB, ``images_F/NNNN.png``
    for each F of ``factors`` (gsplat's trainer reads ``images_4`` at ``data_factor`` 4):
    the image area-averaged (OpenCV INTER_AREA) to round(W/F) × round(H/F). The resize
    maps pixel edges to pixel edges, so K scaled by the new/old size ratio — what those
    readers do — stays exact for the pixel-centre-at-+0.5 convention."""
    import cv2

    written = []
    src, dst = out / "sparse" / "0", out / "colmap" / "sparse" / "0"
    dst.mkdir(parents=True, exist_ok=True)
    for path in sorted(src.iterdir()):
        if path.is_file() and not path.name.startswith("."):
            _link_or_copy(path, dst / path.name)
            written.append(dst / path.name)
    if not folder.has_rgb:
        return written
    for factor in factors:
        (out / f"images_{factor}").mkdir(exist_ok=True)
        for name in folder.names:
            image = cv2.imread(str(folder.path / "rgb" / f"{name}.png"), cv2.IMREAD_UNCHANGED)
            h, w = image.shape[:2]
            size = (max(1, round(w / factor)), max(1, round(h / factor)))
            small = cv2.resize(image, size, interpolation=cv2.INTER_AREA)
            ok, buf = cv2.imencode(".png", small, [cv2.IMWRITE_PNG_COMPRESSION, 1])
            if not ok:
                raise BlendtruthError(f"{folder.path}: could not encode images_{factor}/{name}")
            dest = out / f"images_{factor}" / f"{name}.png"
            write_bytes(dest, buf.tobytes())
            written.append(dest)
    return written


def parse_image_factors(text: str) -> tuple[int, ...]:
    """'2,4,8' -> (2, 4, 8); 'none' -> (); anything else is a one-line error."""
    if text.strip().lower() == "none":
        return ()
    try:
        factors = tuple(dict.fromkeys(int(x) for x in text.split(",") if x.strip()))
    except ValueError:
        factors = ()
    if not factors or any(f < 2 or f > 64 for f in factors):
        raise BlendtruthError(
            f"--image-factors must be 'none' or whole numbers 2..64, comma-separated; got {text!r}"
        )
    return factors


def _link_or_copy(src: Path, dest: Path) -> None:
    """``dest`` as a hard link to ``src`` (no second copy of the image), else a copy;
    atomically either way."""
    tmp = dest.with_name(f".{dest.name}.{os.getpid()}.tmp")
    with contextlib.suppress(FileNotFoundError):
        os.unlink(tmp)
    try:
        os.link(src, tmp)
    except OSError:
        with atomic_open(dest) as f, open(src, "rb") as source:
            shutil.copyfileobj(source, f)
        return
    os.replace(tmp, dest)


def build_model(folder: RenderFolder, max_points: int) -> dict:
    """Cameras, images (pose, 2D points) and 3D points with tracks, as plain data."""
    views = [folder.read(n) for n in folder.names]
    cameras: list[tuple] = []  # (COLMAP model name, (params...), w, h)
    images = []
    for name, view in zip(folder.names, views, strict=True):
        try:
            colmap_model, params = view.camera.projection.colmap()
        except CannotExpress as exc:
            raise BlendtruthError(f"{folder.path}: export colmap: {exc}") from None
        key = (colmap_model, tuple(params), view.camera.width, view.camera.height)
        if key not in cameras:
            cameras.append(key)
        w2c = invert_pose(view.cam_to_world)
        images.append(
            {
                "qvec": _quaternion(w2c[:3, :3]),
                "tvec": w2c[:3, 3].copy(),
                "camera_id": cameras.index(key) + 1,
                "name": f"{name}.png",
                "points2D": [],
            }
        )
    total = sum(int(v.mask.sum()) for v in views)
    stride = max(1, math.ceil(math.sqrt(total / max_points))) if max_points > 0 else 1
    points = []
    for i, view in enumerate(views):
        sel = np.zeros_like(view.mask)
        sel[stride // 2 :: stride, stride // 2 :: stride] = True
        sel &= view.mask
        rows, cols = np.nonzero(sel)
        centres = np.stack([cols + 0.5, rows + 0.5], axis=1)
        xyz = ray_points(view.camera, centres, view.depth[rows, cols])
        if view.rgb is not None:
            colors = view.rgb[rows, cols]
        else:
            colors = np.full((len(rows), 3), 200, dtype=np.uint8)
        # Mean reprojection error over the track: the other views' 2D points are the
        # projections themselves, so only the source pixel centre contributes.
        proj, _ = project(xyz, view.camera)
        error_sum = np.linalg.norm(proj - centres, axis=1)
        others = []
        for j, other in enumerate(views):
            if j != i:
                uv, seen, _ = visibility(xyz, other.camera, other.depth, other.mask, TRACK_REL_TOL)
                others.append((j, uv, seen))
        count = 1 + sum(seen.astype(int) for _, _, seen in others)
        for k in range(len(rows)):
            track = [(i, float(centres[k, 0]), float(centres[k, 1]))]
            track += [(j, float(uv[k, 0]), float(uv[k, 1])) for j, uv, seen in others if seen[k]]
            points.append(
                {"xyz": xyz[k], "rgb": colors[k], "track": track, "error": error_sum[k] / count[k]}
            )
    for pid, point in enumerate(points, start=1):
        elements = []
        for j, x, y in point["track"]:
            obs = images[j]["points2D"]
            elements.append((j + 1, len(obs)))
            obs.append((x, y, pid))
        point["elements"] = elements
        point["error"] = float(point["error"])
    return {"cameras": cameras, "images": images, "points": points}


def _quaternion(rot: np.ndarray) -> np.ndarray:
    """Unit Hamilton quaternion (w, x, y, z) of a rotation matrix, w >= 0."""
    m = rot
    trace = np.trace(m)
    if trace > 0:
        s = 2.0 * math.sqrt(trace + 1.0)
        q = [0.25 * s, (m[2, 1] - m[1, 2]) / s, (m[0, 2] - m[2, 0]) / s, (m[1, 0] - m[0, 1]) / s]
    elif m[0, 0] > m[1, 1] and m[0, 0] > m[2, 2]:
        s = 2.0 * math.sqrt(1.0 + m[0, 0] - m[1, 1] - m[2, 2])
        q = [(m[2, 1] - m[1, 2]) / s, 0.25 * s, (m[0, 1] + m[1, 0]) / s, (m[0, 2] + m[2, 0]) / s]
    elif m[1, 1] > m[2, 2]:
        s = 2.0 * math.sqrt(1.0 + m[1, 1] - m[0, 0] - m[2, 2])
        q = [(m[0, 2] - m[2, 0]) / s, (m[0, 1] + m[1, 0]) / s, 0.25 * s, (m[1, 2] + m[2, 1]) / s]
    else:
        s = 2.0 * math.sqrt(1.0 + m[2, 2] - m[0, 0] - m[1, 1])
        q = [(m[1, 0] - m[0, 1]) / s, (m[0, 2] + m[2, 0]) / s, (m[1, 2] + m[2, 1]) / s, 0.25 * s]
    q = np.array(q)
    q /= np.linalg.norm(q)
    return -q if q[0] < 0 else q


def _g(x: float) -> str:
    # COLMAP writes doubles with 17 significant digits.
    return format(float(x), ".17g")


def write_text(model: dict, sparse: Path) -> list[Path]:
    cams, images, points = model["cameras"], model["images"], model["points"]
    n_obs = sum(len(im["points2D"]) for im in images)
    mean_obs = n_obs / len(images) if images else 0
    mean_track = n_obs / len(points) if points else 0
    files = {
        "cameras.txt": [
            "# Camera list with one line of data per camera:",
            "#   CAMERA_ID, MODEL, WIDTH, HEIGHT, PARAMS[]",
            f"# Number of cameras: {len(cams)}",
        ]
        + [
            f"{k} {name} {w} {h} " + " ".join(_g(x) for x in params)
            for k, (name, params, w, h) in enumerate(cams, start=1)
        ],
        "images.txt": [
            "# Image list with two lines of data per image:",
            "#   IMAGE_ID, QW, QX, QY, QZ, TX, TY, TZ, CAMERA_ID, NAME",
            "#   POINTS2D[] as (X, Y, POINT3D_ID)",
            f"# Number of images: {len(images)}, mean observations per image: {_g(mean_obs)}",
        ],
        "points3D.txt": [
            "# 3D point list with one line of data per point:",
            "#   POINT3D_ID, X, Y, Z, R, G, B, ERROR, TRACK[] as (IMAGE_ID, POINT2D_IDX)",
            f"# Number of points: {len(points)}, mean track length: {_g(mean_track)}",
        ],
        "rigs.txt": [
            "# Rig calib list with one line of data per calib:",
            "#   RIG_ID, NUM_SENSORS, REF_SENSOR_TYPE, REF_SENSOR_ID, SENSORS[] as "
            "(SENSOR_TYPE, SENSOR_ID, HAS_POSE, [QW, QX, QY, QZ, TX, TY, TZ])",
            f"# Number of rigs: {len(cams)}",
        ]
        + [f"{k} 1 CAMERA {k}" for k in range(1, len(cams) + 1)],
        "frames.txt": [
            "# Frame list with one line of data per frame:",
            "#   FRAME_ID, RIG_ID, RIG_FROM_WORLD[QW, QX, QY, QZ, TX, TY, TZ], NUM_DATA_IDS, "
            "DATA_IDS[] as (SENSOR_TYPE, SENSOR_ID, DATA_ID)",
            f"# Number of frames: {len(images)}",
        ],
    }
    for i, im in enumerate(images, start=1):
        pose = " ".join(_g(x) for x in [*im["qvec"], *im["tvec"]])
        files["images.txt"].append(f"{i} {pose} {im['camera_id']} {im['name']}")
        files["images.txt"].append(
            "".join(f"{_g(x)} {_g(y)} {pid} " for x, y, pid in im["points2D"])
        )
        files["frames.txt"].append(f"{i} {im['camera_id']} {pose} 1 CAMERA {im['camera_id']} {i}")
    for pid, p in enumerate(points, start=1):
        track = " ".join(f"{img} {idx}" for img, idx in p["elements"])
        xyz = " ".join(_g(x) for x in p["xyz"])
        r, g, b = (int(c) for c in p["rgb"])
        files["points3D.txt"].append(f"{pid} {xyz} {r} {g} {b} {_g(p['error'])} {track}")
    written = []
    for name, lines in files.items():
        write_bytes(sparse / name, ("\n".join(lines) + "\n").encode())
        written.append(sparse / name)
    return written


def write_binary(model: dict, sparse: Path) -> list[Path]:
    cams, images, points = model["cameras"], model["images"], model["points"]
    out: dict[str, bytearray] = {k: bytearray() for k in ("cameras", "images", "points3D")}
    out["rigs"], out["frames"] = bytearray(), bytearray()
    out["cameras"] += struct.pack("<Q", len(cams))
    out["rigs"] += struct.pack("<Q", len(cams))
    for k, (name, params, w, h) in enumerate(cams, start=1):
        out["cameras"] += struct.pack(f"<iiQQ{len(params)}d", k, _MODEL_IDS[name], w, h, *params)
        out["rigs"] += struct.pack("<IIiI", k, 1, _CAMERA_SENSOR, k)
    out["images"] += struct.pack("<Q", len(images))
    out["frames"] += struct.pack("<Q", len(images))
    for i, im in enumerate(images, start=1):
        pose = struct.pack("<7d", *im["qvec"], *im["tvec"])
        out["images"] += struct.pack("<I", i) + pose + struct.pack("<I", im["camera_id"])
        out["images"] += im["name"].encode() + b"\0"
        out["images"] += struct.pack("<Q", len(im["points2D"]))
        for x, y, pid in im["points2D"]:
            out["images"] += struct.pack("<ddQ", x, y, pid)
        out["frames"] += struct.pack("<II", i, im["camera_id"]) + pose
        out["frames"] += struct.pack("<IiIQ", 1, _CAMERA_SENSOR, im["camera_id"], i)
    out["points3D"] += struct.pack("<Q", len(points))
    for pid, p in enumerate(points, start=1):
        out["points3D"] += struct.pack("<Q3d3Bd", pid, *p["xyz"], *(int(c) for c in p["rgb"]),
                                       p["error"])  # fmt: skip
        out["points3D"] += struct.pack("<Q", len(p["elements"]))
        for img, idx in p["elements"]:
            out["points3D"] += struct.pack("<II", img, idx)
    written = []
    for name, data in out.items():
        write_bytes(sparse / f"{name}.bin", bytes(data))
        written.append(sparse / f"{name}.bin")
    return written


FORMAT = ExportFormat(
    "colmap",
    export_colmap,
    needs=("depth", "mask"),
    # images_F/ for every factor --image-factors may ask for (2..64)
    writes=(SPARSE_DIR, IMAGES_DIR, "colmap", *(f"images_{f}" for f in range(2, 65))),
    doc="COLMAP sparse model (cameras, images, points3D with tracks) and images/",
)
