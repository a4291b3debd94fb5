"""Choose the Cycles device: a GPU (OptiX, CUDA, HIP, oneAPI, Metal) when one is there."""

from __future__ import annotations

from blendtruth.blender._bpy import bpy
from blendtruth.errors import BlendtruthError

GPU_BACKENDS = ("OPTIX", "CUDA", "HIP", "ONEAPI", "METAL")


def find_gpu() -> tuple[str, list[str]] | None:
    """The first GPU backend with devices, as (backend, device names), or None."""
    prefs = bpy.context.preferences.addons["cycles"].preferences
    for backend in GPU_BACKENDS:
        try:
            prefs.compute_device_type = backend
        except TypeError:  # this build of Cycles lacks the backend
            continue
        prefs.refresh_devices()
        devices = [d for d in prefs.devices if d.type == backend]
        if devices:
            for d in prefs.devices:
                d.use = d.type == backend
            return backend, [d.name for d in devices]
    prefs.compute_device_type = "NONE"
    return None


def select_device(request: str) -> str:
    """Apply ``request`` (auto|cpu|gpu) to the current scene; return what is used, e.g. 'CUDA'."""
    scene = bpy.context.scene
    if request == "cpu":
        scene.cycles.device = "CPU"
        return "CPU"
    gpu = find_gpu()
    if gpu is None:
        if request == "gpu":
            raise BlendtruthError(
                "--device gpu: Cycles found no GPU (tried " + ", ".join(GPU_BACKENDS) + ")"
            )
        scene.cycles.device = "CPU"
        return "CPU"
    scene.cycles.device = "GPU"
    return gpu[0]
