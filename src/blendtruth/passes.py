"""Every per-pixel ground-truth pass, declared once.

Writers, metadata, the conventions page and the tests read this table instead of
repeating a pass's dtype, shape, background value or meaning. Every pass is sampled by the
one ray through each pixel centre (never blended), so all passes share ``mask``'s
silhouette: a pixel outside ``mask`` holds the pass's ``background`` value.

Each pass says whether it is exact ground truth (:data:`TRUTH`) or simulated
(:data:`SIMULATED`: a sensor model's output, e.g. noisy depth, never the truth it was made
from) and which passes it is computed from. Exports and ``check`` ask
:func:`require_truth` before they read a pass as truth.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from blendtruth.errors import BlendtruthError

CYCLES = "cycles"
RAYCAST = "raycast"
TRUTH = "truth"
SIMULATED = "simulated"


@dataclass(frozen=True)
class Pass:
    """One per-pixel array of a view.

    ``channels`` = 0 means an H×W array, otherwise H×W×channels. ``background`` is the
    value where ``mask`` is False. ``doc`` is the sentence stored in ``meta`` and shown in
    docs/conventions.md; ``backends`` lists the ground-truth backends that produce it.
    ``kind``: :data:`TRUTH` or :data:`SIMULATED`; ``derives_from``: the passes it is
    computed from (empty: sampled directly from the hit along the pixel-centre ray).
    """

    name: str
    dtype: str
    channels: int
    background: float | int | bool
    units: str
    doc: str
    backends: tuple[str, ...] = (CYCLES, RAYCAST)
    kind: str = TRUTH
    derives_from: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if self.kind not in (TRUTH, SIMULATED):
            raise ValueError(f"pass {self.name!r}: kind must be {TRUTH!r} or {SIMULATED!r}")

    @property
    def is_truth(self) -> bool:
        return self.kind == TRUTH

    @property
    def shape(self) -> str:
        """'HxW' or 'HxWxC', as written in docs and meta."""
        return "HxW" if self.channels == 0 else f"HxWx{self.channels}"

    def describe(self) -> str:
        """The one-line statement stored in ``meta["conventions"]["passes"]``."""
        bg = self.background
        text = f"{self.dtype} {self.shape}, {self.units}: {self.doc}; {bg} where mask is False"
        if not self.is_truth:
            text += f"; SIMULATED from {', '.join(self.derives_from)}, not ground truth"
        return text

    def empty(self, height: int, width: int) -> np.ndarray:
        """An array of this pass filled with its background value."""
        shape = (height, width) if self.channels == 0 else (height, width, self.channels)
        return np.full(shape, self.background, dtype=self.dtype)

    def check(self, array: np.ndarray, height: int, width: int) -> None:
        """Raise if ``array`` is not of this pass's dtype and shape (a programming error)."""
        shape = (height, width) if self.channels == 0 else (height, width, self.channels)
        if array.dtype != np.dtype(self.dtype) or array.shape != shape:
            raise BlendtruthError(
                f"pass {self.name!r}: expected {self.dtype} {shape}, "
                f"got {array.dtype} {array.shape}"
            )


_TABLE = (
    Pass("depth", "float32", 0, 0.0, "scene units (metres)",
         "planar depth, the camera-frame z of the surface point along the optical axis"),
    Pass("distance", "float32", 0, 0.0, "scene units (metres)",
         "Euclidean length of the pixel-centre ray from the camera centre to the surface "
         "point; distance = depth * |K^-1 (u + 0.5, v + 0.5, 1)|"),
    Pass("normal", "float32", 3, 0.0, "unit vector, camera frame (OpenCV axes)",
         "shading normal as Cycles shades it: the interpolated (smooth, custom split) or face "
         "(flat) normal of the mesh, without bump or normal maps, flipped to the side the ray "
         "hits; an interpolated normal may still lean away from the camera at grazing "
         "incidence"),
    Pass("normal_geometric", "float32", 3, 0.0, "unit vector, camera frame (OpenCV axes)",
         "face normal of the hit triangle (Blender's triangulation), always facing the "
         "camera: dot(normal_geometric, ray) < 0"),
    Pass("normal_bump", "float32", 3, 0.0, "unit vector, camera frame (OpenCV axes)",
         "shading normal with the materials' bump and normal maps applied (Cycles' Normal "
         "pass); equal to normal where no material perturbs it"),
    Pass("mask", "bool", 0, False, "flag",
         "a surface is hit by the ray through the pixel centre"),
    Pass("instance", "int32", 0, 0, "id",
         "instance id of the hit object (1..N, stable per scene; table in instances.json)"),
    Pass("semantic", "int32", 0, 0, "id",
         "class id of the hit object (by default one class per source model file, 1..M; "
         "table in instances.json)"),
    Pass("material", "int32", 0, 0, "id",
         "material id of the hit triangle (1..M, stable per scene; 0 also where the "
         "triangle has no material; table in instances.json)"),
    Pass("position", "float32", 3, 0.0, "scene units, world frame",
         "world coordinates of the surface point hit by the pixel-centre ray"),
    Pass("object_coords", "float32", 3, 0.0, "unitless, [0, 1]^3",
         "NOCS: the hit in its object's own frame, with the object's local bounding box "
         "mapped to [0, 1]^3 (per-instance mapping in instances.json)"),
    Pass("uv", "float32", 2, 0.0, "texture coordinates",
         "active UV map at the hit, Blender's convention: V = 0 at the image's bottom row "
         "(OpenGL/glTF-flipped files are already flipped back by their importers)"),
    Pass("albedo", "float32", 3, 0.0, "linear RGB, 0..1",
         "base colour of the material at the hit, unlit: the Principled BSDF's Base Color "
         "(its constant, image texture sampled at uv, or vertex colour) times (1 - metallic) "
         "and (1 - transmission): Cycles' Diffuse Color pass with the specular, coat and sheen "
         "layers off, so it does not depend on the view"),
    Pass("transparent", "bool", 0, False, "flag",
         "the first surface along the ray is not opaque (alpha below 1 or a transmissive "
         "material); see the transparency policy in meta"),
    Pass("boundary", "bool", 0, False, "flag",
         "occlusion boundary: a 4-neighbour hits another instance, the background, or a "
         "surface whose depth differs by more than 2% (depth discontinuity) where neither "
         "side's plane continued by one pixel reaches the other, so slopes are not flagged "
         "(correspondence.occlusion_boundary)", derives_from=("depth", "mask", "instance")),
)  # fmt: skip

PASSES: dict[str, Pass] = {p.name: p for p in _TABLE}


def register_pass(spec: Pass) -> Pass:
    """Add a pass to the table (after the built-in ones); the passes it derives from must
    be there already. A name already taken is a programming error."""
    if spec.name in PASSES:
        raise ValueError(f"pass {spec.name!r} is already in the pass table")
    missing = [n for n in spec.derives_from if n not in PASSES]
    if missing:
        raise ValueError(f"pass {spec.name!r} derives from unknown passes {missing}")
    PASSES[spec.name] = spec
    return spec


def unregister_pass(name: str) -> None:
    """Remove a pass added by :func:`register_pass` (built-in passes stay)."""
    if name in {p.name for p in _TABLE}:
        raise ValueError(f"pass {name!r} is built in")
    PASSES.pop(name, None)


def require_truth(names, who: str) -> None:
    """One-line error when any of ``names`` is a simulated pass: ``who`` (an export, check)
    reads them as ground truth. Names not in the table are left to the caller."""
    for name in names:
        spec = PASSES.get(name)
        if spec is not None and not spec.is_truth:
            raise BlendtruthError(
                f"{who}: pass {name!r} is simulated (from {', '.join(spec.derives_from) or '?'}),"
                " not ground truth; it is never used in place of the exact passes"
            )


# Always made: the silhouette every other pass is defined against.
REQUIRED = ("depth", "distance", "normal", "mask")
DEFAULT_PASSES = ("depth", "distance", "normal", "mask", "instance")


def parse_passes(text: str | tuple[str, ...] | list[str] | None) -> tuple[str, ...]:
    """``--passes``: a comma list of pass names, ``all``, or ``default``; the required
    passes are always included. Returned in the table's order."""
    if text is None:
        return DEFAULT_PASSES
    names = text.split(",") if isinstance(text, str) else list(text)
    names = [n.strip() for n in names if n.strip()]
    chosen: set[str] = set(REQUIRED)
    for name in names:
        if name == "all":  # every ground-truth pass: simulated ones come from a sensor model
            chosen |= {n for n, p in PASSES.items() if p.is_truth}
        elif name == "default":
            chosen |= set(DEFAULT_PASSES)
        elif name in PASSES:
            chosen.add(name)
        else:
            raise BlendtruthError(
                f"--passes: unknown pass {name!r}; choose from all, default, {', '.join(PASSES)}"
            )
    return tuple(n for n in PASSES if n in chosen)


def pass_conventions() -> dict[str, str]:
    """Every pass's one-line statement, for ``meta["conventions"]``."""
    return {p.name: p.describe() for p in PASSES.values()}


def markdown_table() -> str:
    """The passes as the Markdown table in docs/conventions.md (a test keeps them equal)."""
    rows = ["| key | dtype, shape | units / frame | meaning | background | backends | kind |",
            "|---|---|---|---|---|---|---|"]  # fmt: skip
    for p in PASSES.values():
        kind = p.kind + (f", from {', '.join(p.derives_from)}" if p.derives_from else "")
        rows.append(
            f"| `{p.name}` | {p.dtype} {p.shape} | {p.units} | {p.doc} | {p.background} | "
            f"{', '.join(p.backends)} | {kind} |"
        )
    return "\n".join(rows)
