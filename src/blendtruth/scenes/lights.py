"""Image-based lighting and backgrounds, described without bpy (see docs/scenes.md).

An HDRI is an equirectangular environment map that lights the scene and, by default, is
the background of the RGB image. Ground truth (depth, normals, masks, ids) never sees it.

Rotation: ``rotation_deg`` turns the environment counter-clockwise about world +Z seen
from above: the radiance that came from world direction d now comes from R_z(θ) d.
"""

from __future__ import annotations

import hashlib
import math
from pathlib import Path

import numpy as np

from blendtruth.errors import BlendtruthError

# The 8 CC0 HDRIs (Poly Haven, 1k) inside the bpy wheel, in
# <bpy>/<version>/datafiles/studiolights/world/NAME.exr next to their license.txt.
HDRI_NAMES = ("city", "courtyard", "forest", "interior", "night", "studio", "sunrise", "sunset")
HDRI_LIGHTS = tuple(f"hdri:{name}" for name in HDRI_NAMES)
HDRI_EXTENSIONS = (".exr", ".hdr")
ROTATION_MODES = ("random", "random-per-view")
BACKGROUND_KEYWORDS = ("world", "hdri", "transparent")

_EXR_MAGIC = b"\x76\x2f\x31\x01"
_HDR_MAGICS = (b"#?RADIANCE", b"#?RGBE")


def check_hdri_file(path: Path) -> None:
    """Raise BlendtruthError naming ``path`` unless it is a non-empty OpenEXR or Radiance
    HDR file (checked by extension and the format's magic bytes)."""
    path = Path(path)
    if not path.exists():
        raise BlendtruthError(f"--hdri {path}: no such file")
    if not path.is_file():
        raise BlendtruthError(f"--hdri {path}: not a file")
    ext = path.suffix.lower()
    if ext not in HDRI_EXTENSIONS:
        raise BlendtruthError(
            f"--hdri {path}: unknown HDRI format {ext or '(no extension)'!r}; use .exr or .hdr"
        )
    try:
        with open(path, "rb") as f:
            head = f.read(16)
    except OSError as exc:
        raise BlendtruthError(f"--hdri {path}: cannot be read ({exc.strerror})") from None
    ok = head.startswith(_EXR_MAGIC) if ext == ".exr" else head.startswith(_HDR_MAGICS)
    if not ok:
        kind = "OpenEXR" if ext == ".exr" else "Radiance HDR"
        raise BlendtruthError(f"--hdri {path}: not an {kind} file (wrong magic bytes)")


def parse_rotation(value: float | str) -> float | str:
    """Degrees (a number or numeric text), or one of :data:`ROTATION_MODES`."""
    if isinstance(value, str):
        if value in ROTATION_MODES:
            return value
        try:
            value = float(value)
        except ValueError:
            raise BlendtruthError(
                f"--hdri-rotation must be degrees or one of {', '.join(ROTATION_MODES)}; "
                f"got {value!r}"
            ) from None
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise BlendtruthError(f"--hdri-rotation must be a finite number of degrees, got {value!r}")
    return float(value)


def parse_background(value: str) -> str | tuple[float, float, float]:
    """ "world" (whatever the lighting's world shows: the grey ambient world or the HDRI),
    "hdri" (the same, but only valid with HDRI lighting), "transparent", or a colour:
    "#RRGGBB" or "r,g,b" with components in [0, 1], both sRGB display values. Colours
    come back as an (r, g, b) tuple of floats in [0, 1]."""
    if value in BACKGROUND_KEYWORDS:
        return value
    text = value.strip()
    try:
        if text.startswith("#") and len(text) == 7:
            rgb = tuple(int(text[i : i + 2], 16) / 255.0 for i in (1, 3, 5))
        else:
            rgb = tuple(float(x) for x in text.split(","))
    except ValueError:
        rgb = ()
    if len(rgb) != 3 or not all(0.0 <= c <= 1.0 for c in rgb):
        raise BlendtruthError(
            f"--background must be world, hdri, transparent, '#RRGGBB' or 'r,g,b' in [0, 1]; "
            f"got {value!r}"
        )
    return rgb  # type: ignore[return-value]


def rotation_for_view(
    rotation: float | str, seed: int, scene_key: str, cam_to_world: np.ndarray
) -> float:
    """The environment's rotation in degrees, in [0, 360) for the random modes.

    - a number: that angle for every view;
    - "random": one angle per scene (per model in a dataset), uniform from
      ``numpy.random.default_rng`` seeded with SHA-256 of (seed, scene_key);
    - "random-per-view": one angle per view, seeded with SHA-256 of (seed, scene_key,
      the camera pose's float64 bytes), so a re-render of the same camera gets the same
      angle without needing a view index.
    """
    if not isinstance(rotation, str):
        return float(rotation)
    h = hashlib.sha256(f"{seed}\0{scene_key}".encode())
    if rotation == "random-per-view":
        h.update(np.ascontiguousarray(cam_to_world, dtype=np.float64).tobytes())
    rng = np.random.default_rng(int.from_bytes(h.digest()[:8], "little"))
    return float(rng.uniform(0.0, 360.0))


def srgb_to_linear(c: np.ndarray) -> np.ndarray:
    """sRGB display values in [0, 1] -> scene-linear (IEC 61966-2-1)."""
    c = np.asarray(c, dtype=np.float64)
    return np.where(c <= 0.04045, c / 12.92, ((c + 0.055) / 1.055) ** 2.4)


def composite_background(
    combined: np.ndarray, environment: np.ndarray | None, background: str | tuple
) -> tuple[np.ndarray, np.ndarray | None]:
    """The RGB image's scene-linear colour over its background.

    ``combined``: H×W×4 linear RGBA rendered on a transparent film (premultiplied);
    ``environment``: H×W×3 linear radiance of the world seen through each pixel (Cycles'
    Environment pass), or None for engines without one. Returns (H×W×3 linear RGB,
    H×W float32 alpha):

    - "world" / "hdri": combined + environment (equal to Blender's opaque image);
    - "transparent": the un-premultiplied colour combined / alpha (0 where alpha = 0);
      the caller writes it with its alpha as an RGBA PNG;
    - a colour: combined + (1 - alpha) · colour (its sRGB values linearised).
    """
    rgb = combined[..., :3].astype(np.float64)
    alpha = combined[..., 3].astype(np.float32)
    if background in ("world", "hdri"):
        if environment is None:
            raise BlendtruthError("the world background needs an Environment pass")
        return rgb + environment, alpha
    if background == "transparent":
        safe = np.where(alpha > 0, alpha, 1.0)[..., None]
        return np.where(alpha[..., None] > 0, rgb / safe, 0.0), alpha
    color = srgb_to_linear(np.asarray(background, dtype=np.float64))
    return rgb + (1.0 - alpha[..., None].astype(np.float64)) * color, alpha
