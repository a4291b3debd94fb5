"""Small renders for the export/show/check tests, and mesh.ply made with trimesh."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

MESHES = Path(__file__).resolve().parents[1].parent / "shared" / "meshes"
# fx != fy and a principal point off centre, so a swapped or shifted intrinsic shows.
K_ODD = np.array([[60.0, 0.0, 30.5], [0.0, 55.0, 25.25], [0.0, 0.0, 1.0]])


def render(out: Path, model: str, views: int, rgb: bool, sampler: str = "orbit", K=None) -> Path:  # noqa: N803
    import blendtruth
    from blendtruth import RenderSettings, SceneSpec, ViewPlan

    blendtruth.render_model(
        SceneSpec(models=[MESHES / model]),
        ViewPlan(sampler=sampler, views=views, K=K),
        RenderSettings(width=64, height=48, rgb=rgb, samples=4),
        out,
    )
    ensure_mesh_ply(out)
    return out


def ensure_mesh_ply(folder: Path) -> Path:
    """``mesh.ply`` per the contract (world frame, float32 xyz, uchar+int triangles), made
    from the model file with trimesh and meta["scene"]["model_to_world"], unless the
    render wrote one. The shared test models are triangle meshes, so Blender's
    triangulation and the file's are the same triangles."""
    import trimesh

    from blendtruth.writers.meshfile import write_mesh_ply

    path = Path(folder) / "mesh.ply"
    if path.exists():
        return path
    with np.load(Path(folder) / "views" / "0000.npz") as v:
        scene = json.loads(str(v["meta"]))["scene"]
    parts = []
    for model in scene["models"]:
        mesh = trimesh.load(model, force="mesh", process=False)
        parts.append(mesh.apply_transform(np.array(scene["model_to_world"])))
    mesh = trimesh.util.concatenate(parts)
    write_mesh_ply(path, mesh.vertices, mesh.faces)
    return path


def npz(folder: Path, name: str) -> dict[str, np.ndarray]:
    with np.load(Path(folder) / "views" / f"{name}.npz") as data:
        return {k: data[k] for k in data.files}
