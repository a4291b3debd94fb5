"""Correspondence between two instants: anchor surface points at frame t, evaluate at frame s.

A query (a pixel of frame t, or a track's query point) is anchored to the surface it hits:
``(triangle, barycentrics)`` in frame t's triangulation, frozen (the same vertex triples are
used at every frame, so a deforming quad whose diagonal Blender flips does not make the
point jump), plus its instance id. At frame s the point is ``sum_i b_i * V_s[faces_t[tri, i]]``
in float64, where ``V_s`` are frame s's evaluated world vertices. Everything is world frame
(Blender's, Z up) and scene units; pixel coordinates follow blendtruth's pixel-centre
convention (pixel (column i, row j) has its centre at (i + 0.5, j + 0.5)); cameras have
OpenCV axes (x right, y down, z forward).

**Topology.** Each frame's vertices are laid out in blocks, one per placed mesh instance, in
the depsgraph's order. A block carries its vertex count and a hash of its polygons' vertex
indices; an anchor whose block is missing at s or whose key differs is *invalid* at s (no
value is evaluated for it), never paired by index silently.

**Covisibility** (strict, no depth-map tolerance): frame s's camera sees the point iff the
first hit of the ray from its centre towards the point lies on the same instance and within
``tol`` (scene units, along the ray) of the point. The ray cast is a callable so that this
module stays pure numpy (:mod:`blendtruth.raycast.points` gives the Embree one).

Projection happens in :func:`project_points` only (pinhole via :func:`.rays.project`), so a
camera-model type can replace it in one place.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from blendtruth.errors import BlendtruthError
from blendtruth.geometry import rays

# (origin 3 float64, unit directions N×3 float64) -> (first-hit instance N int, -1 = miss;
# distance along each ray N float64).
FirstHit = Callable[[np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray]]


@dataclass(frozen=True)
class FrameGeometry:
    """One frame's evaluated triangles, as the ray caster sees them.

    - ``vertices``: V×3 float64 world positions.
    - ``faces``: T×3 int64 rows into ``vertices`` (this frame's own triangulation).
    - ``instance``: T int32 instance id of each triangle.
    - ``block_sizes``: B int64 vertex count of each mesh-instance block, in order.
    - ``block_keys``: B int64 topology hash of each block (polygon vertex indices).
    """

    vertices: np.ndarray
    faces: np.ndarray
    instance: np.ndarray
    block_sizes: np.ndarray
    block_keys: np.ndarray

    def __post_init__(self) -> None:
        if int(np.sum(self.block_sizes)) != len(self.vertices):
            raise BlendtruthError(
                f"FrameGeometry: block sizes sum to {int(np.sum(self.block_sizes))}, "
                f"but there are {len(self.vertices)} vertices"
            )
        if len(self.block_sizes) != len(self.block_keys):
            raise BlendtruthError("FrameGeometry: block_sizes and block_keys differ in length")

    @property
    def block_starts(self) -> np.ndarray:
        """B int64 index of each block's first vertex."""
        return np.concatenate([[0], np.cumsum(self.block_sizes)[:-1]]).astype(np.int64)

    def scene_size(self) -> float:
        """Diagonal of the vertices' bounding box (scene units; 1 when degenerate)."""
        if len(self.vertices) == 0:
            return 1.0
        return float(np.linalg.norm(self.vertices.max(0) - self.vertices.min(0))) or 1.0


@dataclass(frozen=True)
class Anchors:
    """N surface points anchored at their query frame t.

    ``triangle`` N int64 into ``faces`` (frame t's triangulation, frozen here as N×3
    vertex indices), ``bary`` N×3 float64 corner weights, ``instance`` N int32."""

    faces: np.ndarray
    bary: np.ndarray
    instance: np.ndarray


def anchor(geometry: FrameGeometry, triangle: np.ndarray, bary: np.ndarray) -> Anchors:
    """Anchors of hits (``triangle`` N int, -1 = miss not allowed; ``bary`` N×3) at the
    frame that ``geometry`` describes."""
    triangle = np.asarray(triangle, np.int64).reshape(-1)
    if len(triangle) and (triangle.min() < 0 or triangle.max() >= len(geometry.faces)):
        raise BlendtruthError("anchor: triangle indices outside the frame's triangles")
    return Anchors(
        faces=geometry.faces[triangle],
        bary=np.asarray(bary, np.float64).reshape(-1, 3),
        instance=geometry.instance[triangle].astype(np.int32),
    )


def remap_vertices(
    anchors: Anchors, at_t: FrameGeometry, at_s: FrameGeometry
) -> tuple[np.ndarray, np.ndarray]:
    """(N×3 int64 vertex indices into ``at_s.vertices``, N bool valid): each anchor's
    corner vertices moved to frame s's block layout; invalid where the block's topology
    (vertex count or key) changed or the block is gone (indices there are 0)."""
    starts_t, starts_s = at_t.block_starts, at_s.block_starts
    block = np.searchsorted(starts_t, anchors.faces[:, 0], side="right") - 1
    local = anchors.faces - starts_t[block][:, None]
    same = np.zeros(len(at_t.block_sizes), bool)
    shared = min(len(at_t.block_sizes), len(at_s.block_sizes))
    same[:shared] = (at_t.block_sizes[:shared] == at_s.block_sizes[:shared]) & (
        at_t.block_keys[:shared] == at_s.block_keys[:shared]
    )
    valid = same[block] if len(block) else np.zeros(0, bool)
    index = np.zeros_like(anchors.faces)
    index[valid] = local[valid] + starts_s[block[valid]][:, None]
    return index, valid


def evaluate(anchors: Anchors, at_t: FrameGeometry, at_s: FrameGeometry) -> tuple:
    """(N×3 float64 world points at frame s, NaN where invalid; N bool valid)."""
    index, valid = remap_vertices(anchors, at_t, at_s)
    points = np.einsum("ni,nij->nj", anchors.bary, at_s.vertices[index])
    points[~valid] = np.nan
    return points, valid


def project_points(camera, points: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(N×2 float64 pixel positions, pixel-centre convention; N float64 planar depth) of
    world ``points`` in ``camera`` (anything with ``intrinsics`` and ``cam_to_world``,
    OpenCV axes). The one place this module projects."""
    return rays.project(points, camera.intrinsics, camera.cam_to_world)


def camera_points(camera, points: np.ndarray) -> np.ndarray:
    """World points (N×3) in ``camera``'s frame (OpenCV axes), float64."""
    pose = np.asarray(camera.cam_to_world, np.float64)
    return (points - pose[:3, 3]) @ pose[:3, :3]


def covisible(
    camera, points: np.ndarray, instance: np.ndarray, first_hit: FirstHit, tol: float
) -> np.ndarray:
    """N bool: the ray from ``camera``'s centre to each world point first hits the same
    instance within ``tol`` scene units of the point, and the point projects into the
    image in front of the camera. NaN points are not covisible."""
    n = len(points)
    out = np.zeros(n, bool)
    ok = np.isfinite(points).all(axis=1)
    uv, z = project_points(camera, np.where(ok[:, None], points, 0.0))
    w, h = camera.intrinsics.width, camera.intrinsics.height
    with np.errstate(invalid="ignore"):
        ok &= (z > 0) & (uv[:, 0] >= 0) & (uv[:, 0] <= w) & (uv[:, 1] >= 0) & (uv[:, 1] <= h)
    if not ok.any():
        return out
    origin = np.asarray(camera.cam_to_world, np.float64)[:3, 3]
    offset = points[ok] - origin
    length = np.linalg.norm(offset, axis=1)
    hit_instance, distance = first_hit(origin, offset / length[:, None])
    out[ok] = (hit_instance == instance[ok]) & (np.abs(distance - length) <= tol)
    return out


def correspond(
    anchors: Anchors,
    at_t: FrameGeometry,
    at_s: FrameGeometry,
    camera_t,
    camera_s,
    first_hit_s: FirstHit,
    tol: float,
    origin_uv: np.ndarray | None = None,
) -> dict[str, np.ndarray]:
    """Every quantity of the anchors at frame s (float64, N rows):

    - ``points_s`` N×3 world, ``scene_flow_world`` = points_s - points_t,
      ``scene_flow_camera`` = the same displacement in camera t's axes (R_t^T d),
    - ``uv_s`` N×2 pixel position in camera s, ``depth_s`` N planar depth,
    - ``flow`` N×2 = uv_s - origin_uv (default: the projection of points_t in camera t),
    - ``valid`` N bool (topology unchanged, in front of camera s, inside its image),
    - ``covisible`` N bool (strict ray cast, see :func:`covisible`).
    """
    points_t, _ = evaluate(anchors, at_t, at_t)
    points_s, topo = evaluate(anchors, at_t, at_s)
    if (~topo).any():
        warnings.warn(
            f"{int((~topo).sum())} of {len(topo)} anchored points are on meshes whose "
            "topology changed between the two frames; they are marked invalid",
            stacklevel=2,
        )
    if origin_uv is None:
        origin_uv, _ = project_points(camera_t, points_t)
    uv_s, depth_s = project_points(camera_s, np.where(topo[:, None], points_s, 0.0))
    w, h = camera_s.intrinsics.width, camera_s.intrinsics.height
    with np.errstate(invalid="ignore"):
        inside = (uv_s[:, 0] >= 0) & (uv_s[:, 0] <= w) & (uv_s[:, 1] >= 0) & (uv_s[:, 1] <= h)
    valid = topo & (depth_s > 0) & inside
    uv_s[~topo] = np.nan
    depth_s[~topo] = np.nan
    flow_world = points_s - points_t
    rot_t = np.asarray(camera_t.cam_to_world, np.float64)[:3, :3]
    return {
        "points_s": points_s,
        "scene_flow_world": flow_world,
        "scene_flow_camera": flow_world @ rot_t,
        "uv_s": uv_s,
        "depth_s": depth_s,
        "flow": uv_s - origin_uv,
        "valid": valid,
        "covisible": covisible(camera_s, points_s, anchors.instance, first_hit_s, tol) & valid,
    }


def pixel_anchors(
    geometry: FrameGeometry, triangle: np.ndarray, bary: np.ndarray
) -> tuple[Anchors, np.ndarray, np.ndarray]:
    """Anchors of every hit pixel of an H×W ``triangle`` image (-1 = miss) with its H×W×3
    ``bary``: (anchors, N flat pixel indices, N×2 pixel-centre positions)."""
    h, w = triangle.shape
    flat = np.flatnonzero(triangle.reshape(-1) >= 0)
    anchors = anchor(geometry, triangle.reshape(-1)[flat], bary.reshape(-1, 3)[flat])
    uv = np.column_stack([flat % w + 0.5, flat // w + 0.5]).astype(np.float64)
    return anchors, flat, uv


def flow_images(
    geometry_t: FrameGeometry,
    geometry_s: FrameGeometry,
    triangle: np.ndarray,
    bary: np.ndarray,
    camera_t,
    camera_s,
    first_hit_s: FirstHit,
    tol: float,
) -> dict[str, np.ndarray]:
    """Dense t -> s images from frame t's cast (``triangle`` H×W, ``bary`` H×W×3):
    ``flow`` H×W×2 float32 (pixels, x right and y down, displacement from the pixel centre),
    ``scene_flow_world`` / ``scene_flow_camera`` H×W×3 float32, ``valid`` and
    ``covisible`` H×W bool. No surface: all 0 / False; flow is 0 where not ``valid``,
    scene flow 0 where the topology changed."""
    h, w = triangle.shape
    anchors, flat, uv = pixel_anchors(geometry_t, triangle, bary)
    got = correspond(anchors, geometry_t, geometry_s, camera_t, camera_s, first_hit_s, tol, uv)
    out: dict[str, np.ndarray] = {}
    for name, channels in (("flow", 2), ("scene_flow_world", 3), ("scene_flow_camera", 3)):
        image = np.zeros((h * w, channels), np.float32)
        # Flow needs camera s to see the point's place; 3D flow only the topology.
        keep = got["valid"] if name == "flow" else np.isfinite(got[name]).all(axis=1)
        values = np.where(keep[:, None], got[name], 0.0)
        image[flat] = values
        out[name] = image.reshape(h, w, channels)
    for name in ("valid", "covisible"):
        image = np.zeros(h * w, bool)
        image[flat] = got[name]
        out[name] = image.reshape(h, w)
    return out
