"""Render settings, validated where they enter."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from blendtruth.errors import BlendtruthError
from blendtruth.passes import DEFAULT_PASSES, parse_passes

ENGINES = ("cycles", "eevee", "workbench")
DEVICES = ("auto", "cpu", "gpu")
NORMAL_SOURCES = ("pass", "pinhole", "sobel")
TRUTHS = ("raycast", "cycles")
MIN_SIZE = 4  # Blender renders at least 4 px in each direction
MAX_SIZE = 16384


@dataclass(frozen=True)
class RenderSettings:
    """How to render one view.

    ``width``/``height`` in pixels; ``samples`` per pixel for the RGB image only (ground truth
    always uses one pixel-centre sample); ``engine`` renders RGB only, ground truth always
    comes from Cycles; ``threads`` = 0 lets Blender use every core; ``passes``: the
    ground-truth passes to make (names from :mod:`blendtruth.passes`; depth, distance,
    normal and mask are always made); ``alpha_threshold``: the transparency policy, surfaces
    with material alpha below it are skipped by ground truth (0: every surface counts);
    ``amodal``: also make every instance's full silhouette (see :mod:`blendtruth.amodal`);
    ``truth``: "raycast" casts Blender's evaluated triangles with Embree (falling back to
    Cycles per scene where it cannot match it) or "cycles" renders ground truth with Cycles;
    ``compress``: zlib-compressed view files (smaller, slower); ``previews``: write the
    depth/normal preview PNGs; ``points``: write ``points.ply``, every view fused.
    """

    width: int = 640
    height: int = 360
    samples: int = 64
    engine: str = "cycles"
    device: str = "auto"
    seed: int = 0
    denoise: bool = False
    rgb: bool = True
    threads: int = 0
    passes: tuple[str, ...] = DEFAULT_PASSES
    truth: str = "raycast"
    compress: bool = False
    previews: bool = False
    points: bool = False
    alpha_threshold: float = 0.5
    amodal: bool = False

    def __post_init__(self) -> None:
        for name in ("width", "height", "samples"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise BlendtruthError(f"--{name} must be a whole number >= 1, got {value!r}")
        if min(self.width, self.height) < MIN_SIZE:
            raise BlendtruthError(
                f"--width/--height must be at least {MIN_SIZE} px (Blender's smallest image), "
                f"got {self.width}x{self.height}"
            )
        if max(self.width, self.height) > MAX_SIZE:
            raise BlendtruthError(
                f"--width/--height must be at most {MAX_SIZE}, got {self.width}x{self.height}"
            )
        if not isinstance(self.seed, int) or not 0 <= self.seed < 2**31:
            raise BlendtruthError(f"--seed must be a whole number in [0, 2^31), got {self.seed!r}")
        if not isinstance(self.threads, int) or self.threads < 0:
            raise BlendtruthError(f"--threads must be a whole number >= 0, got {self.threads!r}")
        object.__setattr__(self, "passes", parse_passes(self.passes))
        if not (isinstance(self.alpha_threshold, int | float) and 0 <= self.alpha_threshold <= 1):
            raise BlendtruthError(
                f"--alpha-threshold must be a number in [0, 1], got {self.alpha_threshold!r}"
            )
        _choice("engine", self.engine, ENGINES)
        _choice("device", self.device, DEVICES)
        _choice("truth", self.truth, TRUTHS)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def _choice(option: str, value: str, choices: tuple[str, ...]) -> None:
    if value not in choices:
        raise BlendtruthError(f"--{option} must be one of {', '.join(choices)}; got {value!r}")
