"""One ray per pixel centre against a :class:`TriangleScene`, with Embree, refined in float64.

Rays follow docs/conventions.md: the ray of pixel (u, v) is ``K^-1 (u + 0.5, v + 0.5, 1)``
in the camera frame (OpenCV axes), scaled to camera z = 1, rotated to the world by
``cam_to_world``. Embree (float32) finds the hit triangle; the hit's parameter is then
recomputed in float64 against that triangle's plane from the float64 corners, so depth
(= the parameter, since rays have z = 1) is exact to float64 rounding, not float32's.

Shading normals follow Cycles: a flat triangle's normal is its face normal; a smooth one's
is the barycentric blend of its corner normals, normalised (the face normal if the blend is
zero); both are flipped when the ray hits the back of the triangle (Cycles' ``backfacing``,
judged from the face normal).
"""

from __future__ import annotations

import math
import os

import numpy as np

from blendtruth.geometry.projection import camera_rays
from blendtruth.geometry.rays import ray_directions
from blendtruth.raycast.embree import PacketScene, make_scene
from blendtruth.raycast.kernels import NO_REFINE, kernel, merge_loop, records
from blendtruth.raycast.raster import Rasterizer
from blendtruth.raycast.raster import available as raster_available
from blendtruth.raycast.scene import TriangleScene
from blendtruth.view import Camera

# Passes this module makes itself; others (semantic, object_coords, boundary) are derived.
CAST_PASSES = ("depth", "distance", "normal", "normal_geometric", "mask", "instance",
               "material", "position", "uv")  # fmt: skip


class RayCaster:
    """An Embree scene of ``scene``'s triangles, built once, cast per camera.

    ``threads``: rays are cast on this many threads (0 = one per core). ``packets``:
    None casts 8-ray packets where Embree's library and numba allow
    (:mod:`.embree`), False casts one ray at a time through embreex (same hits).
    ``raster``: None finds a pinhole camera's hits by rasterising the triangles
    (:mod:`.raster`) when numba is installed and the whole scene is beyond the near
    plane (the same hits as Embree's up to pixel centres on edges), False never."""

    def __init__(
        self,
        scene: TriangleScene,
        threads: int = 0,
        packets: bool | None = None,
        raster: bool | None = None,
    ) -> None:
        self.scene = scene
        lo, hi = scene.bounds()
        # Embree works in float32: centre the scene so float32 keeps its relative precision.
        self._offset = (lo + hi) / 2
        self._embree = make_scene(scene.corners - self._offset, packets)
        normal = scene.face_normals()
        corner0 = scene.corners[:, 0] - self._offset
        plane = np.einsum("ij,ij->i", normal, corner0)
        # Everything the refinement reads of a hit triangle, one row each (kernels.py);
        # the numpy path reads the same numbers through views of it.
        self._tri = records(normal, plane, corner0, _dual_basis(scene.corners), scene.smooth,
                            scene.instance)  # fmt: skip
        self._face_normal, self._plane = self._tri[:, 0:3], self._tri[:, 3]
        self._dual = self._tri[:, 7:13].reshape(-1, 2, 3)
        # Corner normals for the compiled loops; none when no triangle is smooth.
        smooth = scene.smooth.any()
        self._corner_normals = np.ascontiguousarray(
            scene.corner_normals if smooth else np.zeros((0, 3, 3)), np.float32
        )
        self._box = np.array([[x, y, z] for x in (lo[0], hi[0]) for y in (lo[1], hi[1])
                              for z in (lo[2], hi[2])])  # fmt: skip
        self._size = float(np.linalg.norm(hi - lo)) or 1.0
        self._threads = threads if threads > 0 else (os.cpu_count() or 1)
        self._rays_key: tuple | None = None
        self._rays = self._lengths = np.zeros((0, 3))
        self._ray_origins: np.ndarray | None = None
        self._valid: np.ndarray | None = None
        self._raster = raster is not False and raster_available()
        self._rasterizer: Rasterizer | None = None
        # How the last cast found its hit triangles (for the view's meta).
        self.hits_by = ""

    def _camera_rays(self, camera: Camera) -> tuple:
        """Camera-frame rays of the last camera model and intrinsics, cached: origins
        (N×3 float64, None for a pinhole: all at the centre), directions N×3 float64
        (camera z = 1 for pinhole and ortho, so the ray parameter is depth; unit
        for panoramic cameras, so it is the ray distance), their N lengths, and the N
        pixels that have a ray (None: all; a fisheye's image circle)."""
        intr = camera.intrinsics
        key = (camera.model, camera.fisheye_fov_deg, intr.fx, intr.fy, intr.cx, intr.cy,
               intr.width, intr.height)  # fmt: skip
        if key != self._rays_key:
            origins = valid = None
            if camera.model == "pinhole":
                rays = ray_directions(intr).reshape(-1, 3)
            else:
                o, rays, ok = camera_rays(camera)
                o, rays, ok = o.reshape(-1, 3), rays.reshape(-1, 3), ok.reshape(-1)
                origins = o if o.any() else None
                valid = None if ok.all() else ok
            self._rays = rays
            self._lengths = np.linalg.norm(rays, axis=1)
            self._ray_origins, self._valid = origins, valid
            self._rays_key = key
        return self._ray_origins, self._rays, self._lengths, self._valid

    def _window(self, camera: Camera) -> tuple[int, int, int, int, int] | None:
        """(r0, r1, c0, c1, width): the rows and columns (inclusive) of the pinhole pixels
        whose centre rays can meet the scene's bounding box (its 8 corners projected,
        padded by a pixel; r0 > r1 when none can), or None to cast every pixel: the camera
        is not in front of the whole box, or the window is most of the image. A ray
        outside the window misses every triangle, so culling changes nothing."""
        pose = camera.cam_to_world
        local = (self._box - pose[:3, 3]) @ pose[:3, :3]  # the corners in the camera frame
        z = local[:, 2]
        if z.min() <= 1e-6 * self._size:
            return None
        intr = camera.intrinsics
        u = intr.fx * local[:, 0] / z + intr.cx - 0.5  # pixel-centre column coordinates
        v = intr.fy * local[:, 1] / z + intr.cy - 0.5
        c0, c1 = max(0, math.floor(u.min()) - 1), min(intr.width - 1, math.ceil(u.max()) + 1)
        r0, r1 = max(0, math.floor(v.min()) - 1), min(intr.height - 1, math.ceil(v.max()) + 1)
        if (c1 - c0 + 1) * (r1 - r0 + 1) > 0.9 * intr.width * intr.height:
            return None
        return r0, r1, c0, c1, intr.width

    def _in_front(self, camera: Camera, near: float) -> bool:
        """True when the rasteriser may find ``camera``'s hits: it is on, and the scene's
        bounding box lies wholly beyond the plane z = ``near`` (nothing is clipped, every
        vertex projects)."""
        if not self._raster:
            return False
        pose = camera.cam_to_world
        z = (self._box - pose[:3, 3]) @ pose[:3, 2]
        return bool(z.min() > max(near, 1e-6 * self._size))

    def _rasterised(self, camera: Camera, origin: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """The rasteriser's coverage of a pinhole ``camera`` at ``origin`` (the caster's
        frame; :meth:`.Rasterizer.coverage`), the rasteriser built on first use."""
        if self._rasterizer is None:
            scene = self.scene
            if scene.faces is None:  # corners alone: every corner its own vertex
                vertices = scene.corners.reshape(-1, 3)
                faces = np.arange(len(vertices)).reshape(-1, 3)
            else:
                vertices, faces = scene.vertices, scene.faces
            self._rasterizer = Rasterizer(vertices - self._offset, faces)
        rot = camera.cam_to_world[:3, :3]
        return self._rasterizer.coverage(rot, origin, camera.intrinsics, self._threads)

    def cast(
        self,
        camera: Camera,
        passes: tuple[str, ...] = CAST_PASSES,
        *,
        internals: bool = False,
        near: float = 0.0,
    ) -> dict[str, np.ndarray]:
        """The requested passes of :data:`CAST_PASSES` for ``camera`` (H×W[×C] arrays with
        the dtypes of :mod:`blendtruth.passes`; camera-frame normals, world positions).
        ``internals`` adds ``triangle`` (H×W int32, -1 = miss) and ``barycentric``
        (H×W×3 float64 weights of the corners). ``near``: surfaces closer than the plane
        z = near of the camera are not seen (Cycles' clip_start); depth is still measured
        from the camera centre."""
        from blendtruth.passes import PASSES

        h, w = camera.height, camera.width
        pose = camera.cam_to_world
        rot = pose[:3, :3]
        o_cam, rays_cam, lengths, valid = self._camera_rays(camera)
        # World ray origins with the scene offset removed: one, or one per ray.
        origins = (pose[:3, 3] - self._offset)[None]
        if o_cam is not None:
            origins = origins + o_cam @ rot.T
        pinhole = camera.model == "pinhole"  # the window and the rasteriser project
        window = self._window(camera) if pinhole else None
        compiled = kernel()
        prim = None  # cast and refined in one loop (packets and numba)
        packets = isinstance(self._embree, PacketScene)
        self.hits_by = "Embree 4, 8-ray packets" if packets else "Embree 4 (embreex)"
        if window is not None and (window[0] > window[1] or window[2] > window[3]):
            prim = np.full(h * w, -1, np.int32)  # the scene is outside the view
        elif pinhole and self._in_front(camera, near):
            self.hits_by = "rasterised in float64"
            prim = self._rasterised(camera, origins[0])  # merged in _refine_compiled
            if compiled is None:
                prim = _merged(prim)
        elif compiled is None or not packets:
            prim, _ = self._embree.hits(origins, rays_cam, rot, near, valid, window,
                                        self._threads)  # fmt: skip
        if compiled is not None:
            rays = (o_cam, rays_cam, lengths, valid, origins, near, window)
            out, prim = self._refine_compiled(compiled, camera, prim, rays, set(passes),
                                              internals)  # fmt: skip
            if out is not None:
                return out
        hit = np.flatnonzero(prim >= 0)
        p = prim[hit]
        d = rays_cam[hit] @ rot.T  # float64, for the refinement
        ng = self._face_normal[p]
        denom = np.einsum("ij,ij->i", ng, d)
        if len(origins) == 1:
            origin = origins[0]
            ng_o = ng @ origin
        else:
            origin = origins[hit]
            ng_o = ng[:, 0] * origin[:, 0] + ng[:, 1] * origin[:, 1] + ng[:, 2] * origin[:, 2]
        with np.errstate(divide="ignore", invalid="ignore"):
            t = (self._plane[p] - ng_o) / denom
        # Embree's own distance where the float64 plane is degenerate (ray in its plane).
        bad = ~(np.isfinite(t) & (t > 0))
        if bad.any():
            o = origin[None] if origin.ndim == 1 else origin[bad]
            _, tfar = self._embree.hits(o, d[bad], np.eye(3), distances=True)
            t[bad] = tfar
        # Barycentrics of the float64 hit: (q - c0) against the triangle's dual basis.
        q = origin + t[:, None] * d - (self.scene.corners[p, 0] - self._offset)
        dual = self._dual[p]
        bu = np.einsum("ij,ij->i", q, dual[:, 0])
        bv = np.einsum("ij,ij->i", q, dual[:, 1])
        bary = np.stack([1.0 - bu - bv, bu, bv], axis=1)
        backfacing = denom > 0
        sign = np.where(backfacing, -1.0, 1.0)[:, None]
        out: dict[str, np.ndarray] = {}

        def image(values: np.ndarray, name: str) -> np.ndarray:
            spec = PASSES[name]
            shape = (h * w,) if spec.channels == 0 else (h * w, spec.channels)
            arr = np.zeros(shape, spec.dtype)  # every cast pass's background is 0
            arr[hit] = values
            return arr.reshape((h, w) + shape[1:])

        want = set(passes)
        if "mask" in want:
            mask = np.zeros(h * w, bool)
            mask[hit] = True
            out["mask"] = mask.reshape(h, w)
        if "depth" in want:
            out["depth"] = image(t, "depth")
        if "distance" in want:
            out["distance"] = image(t * lengths[hit], "distance")
        if "normal_geometric" in want:
            out["normal_geometric"] = image((ng * sign) @ rot, "normal_geometric")
        if "normal" in want:
            out["normal"] = image(self._shading_normals(p, ng, bary) * sign @ rot, "normal")
        if "instance" in want:
            out["instance"] = image(self.scene.instance[p], "instance")
        if "material" in want:
            out["material"] = image(self.scene.material[p], "material")
        if "position" in want:
            start = pose[:3, 3] if o_cam is None else origin + self._offset
            out["position"] = image(start + t[:, None] * d, "position")
        if "uv" in want:
            out["uv"] = image(_blend(bary, self.scene.uv[p]), "uv")
        if internals:
            tri = np.full(h * w, -1, np.int32)
            tri[hit] = p
            out["triangle"] = tri.reshape(h, w)
            full = np.zeros((h * w, 3))
            full[hit] = bary
            out["barycentric"] = full.reshape(h, w, 3)
        return out

    def _refine_compiled(
        self,
        compiled,
        camera: Camera,
        prim: np.ndarray | None,
        rays: tuple,
        want: set[str],
        internals: bool,
    ) -> tuple[dict[str, np.ndarray] | None, np.ndarray]:
        """:meth:`cast`'s refinement by the compiled loops (:mod:`.kernels`): of the hits
        ``prim``, of the rasteriser's coverage (``prim`` a tuple, merged in the same loop),
        or (``prim`` None) cast and refined in one packet loop, of the ``rays``
        (:meth:`_camera_rays`' four arrays, then the world origins, near and window).
        (passes, hit triangles); passes None when a hit's float64 plane is degenerate
        for its ray (the numpy path handles that)."""
        import numba

        h, w = camera.height, camera.width
        n = h * w
        pose = camera.cam_to_world
        rot = np.ascontiguousarray(pose[:3, :3])
        o_cam, rays_cam, lengths, valid, origins, near, window = rays
        numba.set_num_threads(min(self._threads, numba.config.NUMBA_NUM_THREADS))

        def buffer(wanted: bool, dtype, *channels: int) -> np.ndarray:
            # The kernel skips a pass whose buffer has no rows.
            return np.zeros((n if wanted else 0, *channels), dtype)

        extra = internals or bool(want & {"position", "uv"})
        depth, distance = buffer(True, np.float32), buffer(True, np.float32)
        normal = buffer("normal" in want, np.float32, 3)
        geo = buffer("normal_geometric" in want, np.float32, 3)
        inst = buffer("instance" in want, np.int32)
        t, bary = buffer(extra, np.float64), buffer(extra, np.float64, 3)
        refine = (lengths, self._tri, self._corner_normals, depth, distance, normal, geo,
                  inst, t, bary)  # fmt: skip
        if isinstance(prim, tuple):  # the rasteriser's parts: merged and refined at once
            inv_z, parts = prim
            prim = np.empty(n, np.int32)
            bad = merge_loop()(inv_z, parts, prim, rays_cam, rot, origins, *refine)
        elif prim is None:
            prim, bad = self._embree.refined_hits(origins, rays_cam, rot, near, valid, window,
                                                  self._threads, refine=refine)  # fmt: skip
        else:
            bad = compiled(prim, rays_cam, rot, origins, *refine)
        if bad:
            return None, prim
        mask = prim >= 0
        images = {"depth": depth, "distance": distance, "normal": normal,
                  "normal_geometric": geo, "instance": inst, "mask": mask}  # fmt: skip
        out = {k: v.reshape((h, w) + v.shape[1:]) for k, v in images.items() if k in want}
        if want & {"material", "position", "uv"}:
            hit = np.flatnonzero(mask)
            p = prim[hit]
        if "material" in want:
            material = np.zeros(n, np.int32)
            material[hit] = self.scene.material[p]
            out["material"] = material.reshape(h, w)
        if "position" in want:
            position = np.zeros((n, 3), np.float32)
            start = pose[:3, 3] if o_cam is None else origins[hit] + self._offset
            position[hit] = start + t[hit, None] * (rays_cam[hit] @ rot.T)
            out["position"] = position.reshape(h, w, 3)
        if "uv" in want:
            uv = np.zeros((n, 2), np.float32)
            uv[hit] = _blend(bary[hit], self.scene.uv[p])
            out["uv"] = uv.reshape(h, w, 2)
        if internals:
            out["triangle"] = np.where(mask, prim, -1).astype(np.int32).reshape(h, w)
            out["barycentric"] = bary.reshape(h, w, 3)
        return out, prim

    def _shading_normals(self, p: np.ndarray, ng: np.ndarray, bary: np.ndarray) -> np.ndarray:
        """World-frame unit shading normals of hits on triangles ``p`` (before the flip)."""
        smooth = self.scene.smooth[p]
        if smooth.all():
            n = np.empty_like(ng)
            blend = _blend(bary, self.scene.corner_normals[p])
            length = np.linalg.norm(blend, axis=1, keepdims=True)
            ok = length[:, 0] > 0
            n[ok] = blend[ok] / length[ok]
            n[~ok] = ng[~ok]
            return n
        n = ng.copy()
        if smooth.any():
            blend = _blend(bary[smooth], self.scene.corner_normals[p[smooth]])
            length = np.linalg.norm(blend, axis=1, keepdims=True)
            ok = length[:, 0] > 0
            blend = np.divide(blend, length, out=np.zeros_like(blend), where=length > 0)
            n[np.flatnonzero(smooth)[ok]] = blend[ok]
        return n


def _merged(coverage: tuple[np.ndarray, np.ndarray]) -> np.ndarray:
    """The hit triangles (N int32, -1 = miss) of the rasteriser's coverage."""
    inv_z, parts = coverage
    prim = np.empty(parts.shape[1], np.int32)
    merge_loop()(inv_z, parts, prim, np.zeros((0, 3)), np.eye(3), np.zeros((1, 3)),
                 *NO_REFINE)  # fmt: skip
    return prim


def _blend(weights: np.ndarray, corners: np.ndarray) -> np.ndarray:
    """N×C: the N×3 barycentric ``weights`` applied to N×3×C corner values (float64)."""
    return (
        weights[:, 0:1] * corners[:, 0] + weights[:, 1:2] * corners[:, 1]
        + weights[:, 2:3] * corners[:, 2]
    )  # fmt: skip


def _dual_basis(corners: np.ndarray) -> np.ndarray:
    """T×2×3 float64 (g1, g2) with (q - c0)·g1, (q - c0)·g2 the barycentric weights of
    corners 1 and 2 of a point q in the triangle's plane; 0 for degenerate triangles."""
    e1 = corners[:, 1] - corners[:, 0]
    e2 = corners[:, 2] - corners[:, 0]
    d00 = np.einsum("ij,ij->i", e1, e1)
    d01 = np.einsum("ij,ij->i", e1, e2)
    d11 = np.einsum("ij,ij->i", e2, e2)
    det = d00 * d11 - d01 * d01
    inv = np.divide(1.0, det, out=np.zeros_like(det), where=det > 0)[:, None]
    g1 = (d11[:, None] * e1 - d01[:, None] * e2) * inv
    g2 = (d00[:, None] * e2 - d01[:, None] * e1) * inv
    return np.stack([g1, g2], axis=1)
