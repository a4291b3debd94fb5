"""Embree's hit triangles for camera rays: 8-ray packets, or embreex one ray at a time.

Both classes take triangles (T×3×3 float32, the caster's offset already removed) and answer
:meth:`hits`: for the camera-frame rays ``rays`` (N×3 float64) rotated by ``rot`` (3×3,
camera to world) from ``origins`` (1×3 or N×3 float64), the hit triangle per ray (N
int32, -1 = miss) and optionally Embree's float32 ray parameter. World directions are
rounded to float32 from float64 in both, and a ``near`` start moves each origin ``near``
along its direction, so the two classes see the same rays and find the same triangles
(tested).

:class:`PacketScene` is the fast one. embreex (trimesh's binding) casts with
``rtcIntersect1``, one ray per call; camera rays are coherent, and Embree's packet traversal
with the coherent-ray flag is 2-4x faster on the same BVH (bunny, 512², two threads: ~5 ms
instead of ~11-20 ms). It loads the Embree library that the embreex wheel ships, builds the
scene through ctypes, and calls ``rtcIntersect8`` from a compiled numba loop over 4×2-pixel
tiles (:mod:`.kernels`, where the float64 refinement is fused into the same loop).
:class:`EmbreexScene` is the fallback where that library or numba is missing.
"""

from __future__ import annotations

import ctypes
import glob
import os
from concurrent.futures import ThreadPoolExecutor

import numpy as np

from blendtruth.errors import BlendtruthError
from blendtruth.raycast import kernels

# Rays per embreex call: bounds its float32 buffers and lets threads share the image.
_CHUNK = 1 << 17
# Embree 4's enums (rtcore_common.h, rtcore_buffer.h, rtcore_scene.h).
_GEOMETRY_TRIANGLE, _BUFFER_INDEX, _BUFFER_VERTEX = 0, 0, 1
_FORMAT_UINT3, _FORMAT_FLOAT3 = 0x5003, 0x9003
_SCENE_ROBUST, _QUERY_COHERENT, _FEATURES_ALL = 1 << 2, 1 << 16, -1


def embreex():
    """(rtcore_scene, TriangleMesh) from embreex, or one clear line when it is missing."""
    try:
        from embreex import rtcore_scene
        from embreex.mesh_construction import TriangleMesh
    except ImportError:
        raise BlendtruthError(
            "--truth raycast needs the embreex package (a blendtruth dependency): "
            "pip install embreex (or use --truth cycles)"
        ) from None
    return rtcore_scene, TriangleMesh


_STATE: dict = {}


def _library():
    """(ctypes library, compiled packet loop), or None: no bundled Embree or no numba."""
    if "lib" not in _STATE:
        _STATE["lib"] = None
        try:
            import embreex
        except ImportError:
            return None
        root = os.path.dirname(os.path.dirname(os.path.abspath(embreex.__file__)))
        found = sorted(glob.glob(os.path.join(root, "embreex.libs", "libembree4*.so*")))
        if not found:
            return None
        lib = ctypes.CDLL(found[0])
        ptr, uint, sint = ctypes.c_void_p, ctypes.c_uint, ctypes.c_int
        signatures = {
            "rtcNewDevice": (ptr, [ctypes.c_char_p]),
            "rtcGetDeviceError": (sint, [ptr]),
            "rtcNewScene": (ptr, [ptr]),
            "rtcSetSceneFlags": (None, [ptr, sint]),
            "rtcNewGeometry": (ptr, [ptr, sint]),
            "rtcSetSharedGeometryBuffer": (
                None, [ptr, sint, uint, sint, ptr, ctypes.c_size_t, ctypes.c_size_t,
                       ctypes.c_size_t]),
            "rtcCommitGeometry": (None, [ptr]),
            "rtcAttachGeometry": (uint, [ptr, ptr]),
            "rtcReleaseGeometry": (None, [ptr]),
            "rtcCommitScene": (None, [ptr]),
            "rtcReleaseScene": (None, [ptr]),
        }  # fmt: skip
        for name, (restype, argtypes) in signatures.items():
            fn = getattr(lib, name)
            fn.restype, fn.argtypes = restype, argtypes
        loop = kernels.packet_loop(found[0])
        if loop is None:
            return None
        _STATE["lib"] = (lib, loop)
        _STATE["device"] = lib.rtcNewDevice(None)
    return _STATE["lib"]


def packets_available() -> bool:
    """True when :class:`PacketScene` can be built in this process."""
    return _library() is not None


class PacketScene:
    """An Embree scene built through ctypes, cast with 8-ray coherent packets."""

    def __init__(self, corners: np.ndarray) -> None:
        found = _library()
        if found is None:
            raise BlendtruthError("Embree packets need numba and embreex's bundled Embree")
        self._lib, self._loop = found
        lib, device = self._lib, _STATE["device"]
        n = len(corners)
        # Shared buffers must outlive the scene; Embree reads up to 16 bytes past a vertex.
        self._vertices = np.zeros(n * 9 + 4, np.float32)
        self._vertices[: n * 9] = corners.reshape(-1)
        self._indices = np.arange(n * 3, dtype=np.uint32)
        self._scene = lib.rtcNewScene(device)
        lib.rtcSetSceneFlags(self._scene, _SCENE_ROBUST)
        geometry = lib.rtcNewGeometry(device, _GEOMETRY_TRIANGLE)
        lib.rtcSetSharedGeometryBuffer(geometry, _BUFFER_VERTEX, 0, _FORMAT_FLOAT3,
                                       self._vertices.ctypes.data, 0, 12, n * 3)  # fmt: skip
        lib.rtcSetSharedGeometryBuffer(geometry, _BUFFER_INDEX, 0, _FORMAT_UINT3,
                                       self._indices.ctypes.data, 0, 12, n)  # fmt: skip
        lib.rtcCommitGeometry(geometry)
        lib.rtcAttachGeometry(self._scene, geometry)
        lib.rtcReleaseGeometry(geometry)
        lib.rtcCommitScene(self._scene)
        error = lib.rtcGetDeviceError(device)
        if error:
            raise BlendtruthError(f"Embree could not build the scene of {n} triangles "
                                  f"(RTCError {error}; 2 = out of memory)")  # fmt: skip
        # RTCIntersectArguments: coherent rays, every feature, no context or callbacks.
        self._args = np.zeros(12, np.int32)
        self._args[0], self._args[1] = _QUERY_COHERENT, _FEATURES_ALL

    def hits(self, origins, rays, rot, near=0.0, valid=None, window=None, threads=1,
             distances=False):  # fmt: skip
        """(N int32 hit triangles, -1 = miss; N float32 Embree ray parameters or None).
        ``valid``: N bool, False = no ray; ``window``: (r0, r1, c0, c1, width), the only
        pixels (inclusive) that may hit, rays being row-major pixels of that width."""
        tfar = np.zeros(len(rays) if distances else 0, np.float32)
        prim, _ = self.refined_hits(origins, rays, rot, near, valid, window, threads, tfar)
        return prim, (tfar if distances else None)

    def refined_hits(self, origins, rays, rot, near=0.0, valid=None, window=None,
                     threads=1, tfar=None, refine=None):  # fmt: skip
        """As :meth:`hits`, and with ``refine`` (the arrays of :func:`.kernels._refine`
        after ``origins``: lengths, records, corner normals and the outputs) each hit
        refined in the same loop: (N int32 hit triangles, number of degenerate hits)."""
        import numba

        n = len(rays)
        r0, r1, c0, c1, width = window or (0, 0, 0, n - 1, n)
        prim = np.full(n, -1, np.int32)
        tfar = np.zeros(0, np.float32) if tfar is None else tfar
        ok = np.zeros(0, bool) if valid is None else valid
        numba.set_num_threads(max(1, min(threads, numba.config.NUMBA_NUM_THREADS)))
        bad = self._loop(self._scene, self._args.ctypes.data, prim, tfar,
                         np.ascontiguousarray(rays), np.ascontiguousarray(rot),
                         np.ascontiguousarray(origins), float(near), ok, r0, r1, c0, c1,
                         width, *(refine or kernels.NO_REFINE))  # fmt: skip
        return prim, int(bad)

    def __del__(self) -> None:
        scene = getattr(self, "_scene", None)
        if scene:
            self._lib.rtcReleaseScene(scene)
            self._scene = None


class EmbreexScene:
    """The same answers through embreex's ``rtcIntersect1`` loop, on a thread pool."""

    def __init__(self, corners: np.ndarray) -> None:
        rtcore_scene, triangle_mesh = embreex()
        self._embree = rtcore_scene.EmbreeScene()
        triangle_mesh(self._embree, corners)

    def hits(self, origins, rays, rot, near=0.0, valid=None, window=None, threads=1,
             distances=False):  # fmt: skip
        """As :meth:`PacketScene.hits`."""
        n = len(rays)
        pick = np.arange(n) if window is None else _flat(window)
        if valid is not None:
            pick = pick[valid[pick]]
        r = rays[pick]
        # Written out in the packet loop's order, so both round the same float64 to float32.
        d = r[:, 0:1] * rot[:, 0] + r[:, 1:2] * rot[:, 1] + r[:, 2:3] * rot[:, 2]
        starts = (origins if len(origins) == 1 else origins[pick]) + near * d
        starts = np.ascontiguousarray(np.broadcast_to(starts.astype(np.float32), d.shape))
        d32 = d.astype(np.float32)
        prim = np.full(n, -1, np.int32)
        tfar = np.zeros(n, np.float32) if distances else None
        found = np.empty(len(pick), np.int32)
        t = np.empty(len(pick), np.float32)

        def run(start: int) -> None:
            s = slice(start, min(start + _CHUNK, len(pick)))
            if distances:
                out = self._embree.run(starts[s], d32[s], output=1)
                found[s], t[s] = out["primID"], out["tfar"]
            else:
                found[s] = self._embree.run(starts[s], d32[s])

        chunks = range(0, len(pick), _CHUNK)
        if threads > 1 and len(chunks) > 1:
            list(_pool(threads).map(run, chunks))
        else:
            for start in chunks:
                run(start)
        prim[pick] = found
        if distances:
            tfar[pick] = t
        return prim, tfar


def make_scene(corners: np.ndarray, packets: bool | None = None):
    """A :class:`PacketScene` where it can be built (``packets`` None or True), else an
    :class:`EmbreexScene`; ``packets=False`` forces embreex."""
    corners = np.ascontiguousarray(corners, np.float32)
    if packets is not False and packets_available():
        return PacketScene(corners)
    return EmbreexScene(corners)


def _flat(window: tuple[int, int, int, int, int]) -> np.ndarray:
    r0, r1, c0, c1, width = window
    return (np.arange(r0, r1 + 1)[:, None] * width + np.arange(c0, c1 + 1)[None, :]).ravel()


_POOLS: dict[int, ThreadPoolExecutor] = {}


def _pool(threads: int) -> ThreadPoolExecutor:
    """One casting pool per thread count, shared by every scene of the process."""
    if threads not in _POOLS:
        _POOLS[threads] = ThreadPoolExecutor(threads, thread_name_prefix="embree")
    return _POOLS[threads]
