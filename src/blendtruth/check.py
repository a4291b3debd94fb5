"""``blendtruth check``: re-derive every view's ground truth independently and compare.

For each model folder: ray cast ``mesh.ply`` (trimesh + embreex, the hit triangle then
intersected again in float64) through every pixel centre of the saved cameras, and
compare with the saved mask, depth and normals; then back-project every view's depth
and compare it with the depth the other views recorded there (multi-view consistency).

A model passes when every view is within every threshold of :data:`THRESHOLDS`:
- ``mask_disagreement``: fraction of pixels where the saved mask and the ray cast's hit
  differ, <= 0.5 %;
- ``depth_outliers``: fraction of pixels hit in both whose relative depth error
  |depth − ray cast| / ray cast exceeds 1e-5, <= 1 %;
- ``depth_median``: median relative depth error over pixels hit in both, <= 1e-6;
- ``reprojection_px``: multi-view round trip: a pixel centre of view i, back-projected
  with its depth, lands at a sub-pixel point of view j; j's depth there (bilinear in 1/z
  between its pixel centres) back-projects to a point that projects back into view i;
  the median distance (pixels) from the starting centre over the points both views see
  (depths within 1 %), <= 0.25 px (the bilinear step alone gives 0.03-0.13 px at 64×48
  on a faceted mesh; half a pixel of pose error gives about 0.5 px);
- ``normal_geometric_median``: only when the views hold ``normal_geometric``: median
  angle to the ray cast's face normal, <= 0.01° (camera frame, unless the view's
  conventions say the pass is in the world frame).
``normal_median_deg`` (saved shading normal vs. face normal) is reported, not judged:
shading normals are interpolated on smooth meshes and differ from face normals by design.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from blendtruth.errors import BlendtruthError
from blendtruth.exports.source import RenderFolder
from blendtruth.geometry.reproject import project, ray_points, visibility
from blendtruth.passes import require_truth
from blendtruth.writers.meshfile import read_mesh_ply

# The passes check compares with its own ray cast and reprojection: ground truth only.
CHECKED = ("depth", "distance", "normal", "mask")

THRESHOLDS = {
    "mask_disagreement": 0.005,
    "depth_outliers": 0.01,
    "depth_median": 1e-6,
    "reprojection_px": 0.25,
    "normal_geometric_median": 0.01,
}
DEPTH_OUTLIER_REL = 1e-5
MATCH_REL = 1e-2


@dataclass
class ModelReport:
    """Figures per view (name -> metric -> value) and the thresholds crossed."""

    model_id: str
    views: dict[str, dict[str, float]] = field(default_factory=dict)
    failures: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.failures

    def worst(self, metric: str) -> float:
        values = [v[metric] for v in self.views.values() if metric in v]
        return max(values) if values else float("nan")


def _intersector(vertices: np.ndarray, faces: np.ndarray):
    try:
        import trimesh
        from trimesh.ray.ray_pyembree import RayMeshIntersector
    except ImportError:
        raise BlendtruthError(
            "blendtruth check needs trimesh and embreex, core dependencies of blendtruth: "
            "reinstall it (pip install --force-reinstall blendtruth)"
        ) from None
    mesh = trimesh.Trimesh(vertices, faces, process=False)
    return RayMeshIntersector(mesh)


def raycast(vertices: np.ndarray, faces: np.ndarray, view, intersector=None):
    """Ray cast the mesh through every pixel centre of ``view``'s camera, along the rays
    of its own camera model (``view.camera.projection``).

    Returns (hit H×W bool, depth H×W float64 as the model's depth pass defines it (planar
    depth, or ray distance for panoramic models; 0 where no hit), normal H×W×3 float64 unit
    face normal in the camera frame facing the camera)."""
    intersector = intersector or _intersector(vertices, faces)
    model = view.camera.projection
    o_cam, d_cam, valid = model.rays(model.pixel_grid())
    o_cam, d_cam, valid = o_cam.reshape(-1, 3), d_cam.reshape(-1, 3), valid.reshape(-1)
    pose = view.cam_to_world
    origins = o_cam[valid] @ pose[:3, :3].T + pose[:3, 3]
    dirs = d_cam[valid] @ pose[:3, :3].T
    tri = np.full(len(valid), -1, dtype=np.int64)
    tri[valid] = intersector.intersects_first(origins, dirs)
    hit = tri >= 0
    v0, v1, v2 = (vertices[faces[tri[hit], k]] for k in range(3))
    n = np.cross(v1 - v0, v2 - v0)
    o_w = o_cam[hit] @ pose[:3, :3].T + pose[:3, 3]
    d_w = d_cam[hit] @ pose[:3, :3].T
    t = np.einsum("ij,ij->i", n, v0 - o_w) / np.einsum("ij,ij->i", n, d_w)
    depth = np.zeros(len(valid))
    depth[hit] = model.depth_of(o_cam[hit], d_cam[hit], t)
    n = n / np.linalg.norm(n, axis=1, keepdims=True)
    n_cam = n @ pose[:3, :3]
    n_cam *= -np.sign(np.einsum("ij,ij->i", n_cam, d_cam[hit]))[:, None]
    normal = np.zeros((len(valid), 3))
    normal[hit] = n_cam
    h, w = view.camera.height, view.camera.width
    return hit.reshape(h, w), depth.reshape(h, w), normal.reshape(h, w, 3)


def _angle_deg(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    cos = np.einsum("ij,ij->i", a, b) / (np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1))
    return np.degrees(np.arccos(np.clip(cos, -1.0, 1.0)))


def check_folder(folder: RenderFolder) -> ModelReport:
    """Every view of ``folder`` against its ``mesh.ply`` and the other views."""
    require_truth(CHECKED, "check")
    mesh_path = folder.layout.mesh_ply
    if not mesh_path.is_file():
        raise BlendtruthError(f"{folder.path}: no mesh.ply to check against")
    vertices, faces = read_mesh_ply(mesh_path)
    intersector = _intersector(vertices, faces)
    report = ModelReport(folder.model_id)
    views = {}
    for name in folder.names:
        view = folder.read(name)
        views[name] = view
        hit, depth, normal = raycast(vertices, faces, view, intersector)
        both = hit & view.mask
        rel = np.abs(view.depth[both] - depth[both]) / depth[both]
        figures = {
            "mask_disagreement": float((hit != view.mask).mean()),
            "depth_outliers": float((rel > DEPTH_OUTLIER_REL).mean()) if rel.size else 1.0,
            "depth_median": float(np.median(rel)) if rel.size else 1.0,
            "depth_p99": float(np.quantile(rel, 0.99)) if rel.size else 1.0,
            "normal_median_deg": float(np.median(_angle_deg(view.normal[both], normal[both])))
            if rel.size
            else float("nan"),
        }
        if "normal_geometric" in view.extra:
            require_truth(("normal_geometric",), "check")
            geo = view.extra["normal_geometric"][both]
            rule = str(view.meta.get("conventions", {}).get("normal_geometric", ""))
            if "world" in rule and "camera frame" not in rule:
                geo = geo @ view.cam_to_world[:3, :3]  # world -> camera
            figures["normal_geometric_median"] = float(np.median(_angle_deg(geo, normal[both])))
        report.views[name] = figures
    for name, view in views.items():
        errors = [_round_trip(view, other) for o, other in views.items() if o != name]
        px = np.concatenate(errors) if errors else np.zeros(0)
        report.views[name]["reprojection_points"] = float(px.size)
        if px.size:
            report.views[name]["reprojection_px"] = float(np.median(px))
    for metric, limit in THRESHOLDS.items():
        worst = report.worst(metric)
        if worst > limit:
            report.failures.append(f"{metric} {worst:.3g} > {limit:g}")
    return report


def _round_trip(view, other) -> np.ndarray:
    """Pixel distances of the view -> other -> view round trip (see the module docstring),
    through each camera's own model."""
    rows, cols = np.nonzero(view.mask)
    start = np.stack([cols + 0.5, rows + 0.5], axis=1)
    points = ray_points(view.camera, start, view.depth[rows, cols])
    uv, _, r = visibility(points, other.camera, other.depth, other.mask, MATCH_REL)
    z = project(points, other.camera)[1]
    ok = np.abs(np.nan_to_num(r, nan=np.inf)) <= MATCH_REL
    d = z[ok] / (1 + r[ok])  # the other view's interpolated depth at uv
    back, _ = project(ray_points(other.camera, uv[ok], d), view.camera)
    return np.linalg.norm(back - start[ok], axis=1)


def format_report(report: ModelReport) -> str:
    """One verdict line with the worst figures over the model's views."""
    figures = ", ".join(
        f"{m} {report.worst(m):.3g}"
        for m in ("mask_disagreement", "depth_median", "depth_p99", "depth_outliers",
                  "reprojection_px", "normal_median_deg", "normal_geometric_median")
        if not np.isnan(report.worst(m))
    )  # fmt: skip
    verdict = "PASS" if report.ok else "FAIL (" + "; ".join(report.failures) + ")"
    return f"{report.model_id}: {verdict}: worst over {len(report.views)} views: {figures}"


def check(path: Path) -> list[ModelReport]:
    from blendtruth.exports.source import render_folders

    return [check_folder(f) for f in render_folders(path)]
