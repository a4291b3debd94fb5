"""World-space triangles of a scene, as Cycles tessellates them, in plain numpy.

Every array is indexed by triangle (T triangles) and, where per corner, by corner 0..2 in
Blender's ``loop_triangles`` order. Coordinates are world frame (Blender's: Z up,
right-handed), scene units.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from blendtruth.errors import BlendtruthError
from blendtruth.geometry.pointcloud import bounding_box


@dataclass(frozen=True)
class TriangleScene:
    """The renderable triangles of one scene.

    - ``corners``: T×3×3 float64 world positions of each triangle's corners.
    - ``corner_normals``: T×3×3 float32 world-frame normals per corner (Blender's corner
      normals: smooth, flat or custom split), before any flip; unit length, except on
      instanced meshes under non-uniform scale, where they are the object-space unit
      normals transformed by the inverse transpose (so that their blend is Cycles').
    - ``smooth``: T bool; False = flat-shaded, whose shading normal is the face normal.
    - ``uv``: T×3×2 float32 active-render UV map per corner (0 where a mesh has none).
    - ``material``: T int32 material id (``material.pass_index``; 0 = no material).
    - ``instance``: T int32 instance id (``object.pass_index``).
    - ``transform``: T int32 index into ``transforms``.
    - ``transforms``: K×4×4 float64 object-to-world matrix of each mesh instance.
    - ``vertices``, ``faces`` (optional): the same triangles indexed, V×3 float64 world
      positions and T×3 int64 rows with ``vertices[faces] == corners`` (Blender's own
      vertex sharing; ``mesh.ply`` is written from them without searching for shared
      corners). None where unknown (``select``, or a scene made from corners alone).
    """

    corners: np.ndarray
    corner_normals: np.ndarray
    smooth: np.ndarray
    uv: np.ndarray
    material: np.ndarray
    instance: np.ndarray
    transform: np.ndarray
    transforms: np.ndarray
    vertices: np.ndarray | None = None
    faces: np.ndarray | None = None

    def __post_init__(self) -> None:
        n = len(self.corners)
        expected = {
            "corners": ((n, 3, 3), np.float64),
            "corner_normals": ((n, 3, 3), np.float32),
            "smooth": ((n,), np.bool_),
            "uv": ((n, 3, 2), np.float32),
            "material": ((n,), np.int32),
            "instance": ((n,), np.int32),
            "transform": ((n,), np.int32),
        }
        for name, (shape, dtype) in expected.items():
            arr = getattr(self, name)
            if arr.shape != shape or arr.dtype != dtype:
                raise BlendtruthError(
                    f"TriangleScene.{name}: expected {np.dtype(dtype)} {shape}, "
                    f"got {arr.dtype} {arr.shape}"
                )
        if self.transforms.ndim != 3 or self.transforms.shape[1:] != (4, 4):
            raise BlendtruthError(
                f"TriangleScene.transforms: expected K×4×4, got {self.transforms.shape}"
            )
        indexed = self.faces is not None and self.vertices is not None
        if (self.faces is None) != (self.vertices is None) or (
            indexed and (self.faces.shape != (n, 3) or self.vertices.shape[1:] != (3,))
        ):
            raise BlendtruthError("TriangleScene.vertices/faces: expected V×3 and T×3, or neither")
        if n == 0:
            raise BlendtruthError("the scene has no triangles to ray-cast")
        if not np.isfinite(self.corners).all():
            raise BlendtruthError("the scene has NaN or infinite vertex positions")

    @property
    def triangle_count(self) -> int:
        return len(self.corners)

    def face_normals(self) -> np.ndarray:
        """T×3 float64 unit face normals, right-handed from the corner order (v0, v1, v2);
        zero for degenerate triangles."""
        c = self.corners
        a, b = c[:, 1] - c[:, 0], c[:, 2] - c[:, 0]
        n = np.empty_like(a)  # a x b, written out: np.cross is several times slower
        n[:, 0] = a[:, 1] * b[:, 2] - a[:, 2] * b[:, 1]
        n[:, 1] = a[:, 2] * b[:, 0] - a[:, 0] * b[:, 2]
        n[:, 2] = a[:, 0] * b[:, 1] - a[:, 1] * b[:, 0]
        length = np.linalg.norm(n, axis=1, keepdims=True)
        return np.divide(n, length, out=np.zeros_like(n), where=length > 0)

    def select(self, keep: np.ndarray) -> TriangleScene:
        """The triangles where the T bool ``keep`` is True (transforms kept as they are)."""
        return TriangleScene(
            corners=self.corners[keep],
            corner_normals=self.corner_normals[keep],
            smooth=self.smooth[keep],
            uv=self.uv[keep],
            material=self.material[keep],
            instance=self.instance[keep],
            transform=self.transform[keep],
            transforms=self.transforms,
        )

    def bounds(self) -> tuple[np.ndarray, np.ndarray]:
        """(min, max) world corners of the bounding box, 3 float64 each."""
        return bounding_box(self.corners.reshape(-1, 3))


def concatenate(parts: list[TriangleScene]) -> TriangleScene:
    """One scene of every part's triangles; transform indices are renumbered."""
    if not parts:
        raise BlendtruthError("the scene has no triangles to ray-cast")
    offsets = np.cumsum([0] + [len(p.transforms) for p in parts[:-1]])
    vertices = faces = None
    if all(p.faces is not None for p in parts):
        starts = np.cumsum([0] + [len(p.vertices) for p in parts[:-1]])
        vertices = np.concatenate([p.vertices for p in parts])
        faces = np.concatenate([p.faces + s for p, s in zip(parts, starts, strict=True)])
    return TriangleScene(
        corners=np.concatenate([p.corners for p in parts]),
        corner_normals=np.concatenate([p.corner_normals for p in parts]),
        smooth=np.concatenate([p.smooth for p in parts]),
        uv=np.concatenate([p.uv for p in parts]),
        material=np.concatenate([p.material for p in parts]),
        instance=np.concatenate([p.instance for p in parts]),
        transform=np.concatenate(
            [p.transform + np.int32(o) for p, o in zip(parts, offsets, strict=True)]
        ).astype(np.int32),
        transforms=np.concatenate([p.transforms for p in parts]),
        vertices=vertices,
        faces=faces,
    )


def from_arrays(
    vertices: np.ndarray,
    faces: np.ndarray,
    *,
    vertex_normals: np.ndarray | None = None,
    uv: np.ndarray | None = None,
    material: int = 0,
    instance: int = 1,
) -> TriangleScene:
    """A scene from an indexed mesh (V×3 vertices, F×3 int faces), world frame: flat-shaded
    unless ``vertex_normals`` (V×3) are given; ``uv`` V×2 per vertex. For tests and benches."""
    v = np.asarray(vertices, dtype=np.float64)
    f = np.asarray(faces, dtype=np.int64)
    corners = v[f]
    n = len(f)
    if vertex_normals is None:
        fn = np.cross(corners[:, 1] - corners[:, 0], corners[:, 2] - corners[:, 0])
        fn /= np.maximum(np.linalg.norm(fn, axis=1, keepdims=True), 1e-300)
        normals = np.repeat(fn[:, None], 3, axis=1).astype(np.float32)
        smooth = np.zeros(n, bool)
    else:
        vn = np.asarray(vertex_normals, dtype=np.float64)
        vn = vn / np.linalg.norm(vn, axis=1, keepdims=True)
        normals = vn[f].astype(np.float32)
        smooth = np.ones(n, bool)
    uvs = np.zeros((n, 3, 2), np.float32) if uv is None else np.asarray(uv, np.float32)[f]
    return TriangleScene(
        corners=corners,
        corner_normals=normals,
        smooth=smooth,
        uv=uvs,
        material=np.full(n, material, np.int32),
        instance=np.full(n, instance, np.int32),
        transform=np.zeros(n, np.int32),
        transforms=np.eye(4)[None],
        vertices=v,
        faces=f,
    )
