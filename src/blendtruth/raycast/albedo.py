"""The ``albedo`` pass from ray hits, without Cycles: each material's Base Color in numpy.

Albedo is defined as Cycles' Diffuse Color pass of the ground-truth render (see
:mod:`blendtruth.passes` and docs/conventions.md): the Base Color of the material's
Principled BSDF (or the Color of a Diffuse BSDF) times (1 - metallic) (1 - transmission),
linear RGB. A material is expressed here as a :class:`MaterialAlbedo` (built from Blender's
node trees by :mod:`blendtruth.blender.albedo_materials`): a constant colour, an image
texture sampled at the hit's UV, or a colour attribute interpolated at the hit, each times
a constant factor.

Texture lookup follows Cycles' CPU kernel (``kernel_tex_image_interp``): UV (0, 0) is the
lower-left corner of the image, ``Closest`` takes the texel containing (u W, v H),
``Linear`` is bilinear between the four texel centres around (u W - 0.5, v H - 0.5), and the
extension (REPEAT, EXTEND, CLIP, MIRROR) decides the texels outside the image (CLIP: black).
An 8-bit sRGB image is interpolated in sRGB and decoded to linear afterwards, as Cycles does
(it keeps such images compressed as sRGB); other images are interpolated as stored.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

EXTENSIONS = ("REPEAT", "EXTEND", "CLIP", "MIRROR")
INTERPOLATIONS = ("Linear", "Closest")


@dataclass(frozen=True)
class Texture:
    """An image as the texture lookup reads it.

    ``texels``: H×W×3 float32, row 0 the image's bottom row (Blender's ``image.pixels``
    order, so V = 0 is row 0); values as stored (8-bit images: byte / 255 in the file's
    colour space). ``srgb``: decode sRGB to linear after interpolation."""

    name: str
    texels: np.ndarray
    interpolation: str = "Linear"
    extension: str = "REPEAT"
    srgb: bool = False

    def describe(self) -> str:
        space = "sRGB decoded after interpolation" if self.srgb else "linear as stored"
        h, w = self.texels.shape[:2]
        return (
            f"image texture {self.name!r} ({w}x{h}) at the active UV map, "
            f"{self.interpolation}, {self.extension}, {space}"
        )


@dataclass(frozen=True)
class MaterialAlbedo:
    """One material's albedo: ``factor`` times a constant ``color`` (linear RGB), or
    ``tint`` (linear RGB) times a ``texture`` at the hit's UV or the colour attribute
    ``attribute`` ("" = each mesh's default colour attribute) at the hit; exactly one of
    the three is set."""

    factor: float
    color: tuple[float, float, float] | None = None
    texture: Texture | None = None
    attribute: str | None = None
    tint: tuple[float, float, float] = (1.0, 1.0, 1.0)

    def describe(self) -> str:
        if self.texture is not None:
            what = self.texture.describe()
        elif self.attribute is not None:
            what = f"colour attribute {self.attribute or '(default)'!r}, interpolated"
        else:
            what = "constant ({:.6g}, {:.6g}, {:.6g})".format(*self.color)
        if self.tint != (1.0, 1.0, 1.0):
            what += " x ({:.6g}, {:.6g}, {:.6g})".format(*self.tint)
        return f"{what} x {self.factor:.6g}"


# Cycles renders a triangle without a material with its default surface, a 0.8 grey
# diffuse (blender/truth_passes.py gives such slots the same material).
DEFAULT = MaterialAlbedo(factor=1.0, color=(0.8, 0.8, 0.8))


def srgb_to_linear(c: np.ndarray) -> np.ndarray:
    """The sRGB transfer function inverted (IEC 61966-2-1), negative values to 0."""
    c = np.array(c, np.float64, ndmin=1)
    out = np.maximum(c, 0.0) / 12.92
    high = c >= 0.04045
    out[high] = ((c[high] + 0.055) / 1.055) ** 2.4
    return out


def _wrap(i: np.ndarray, n: int, extension: str) -> tuple[np.ndarray, np.ndarray | None]:
    """Texel indices ``i`` (int64) inside 0..n-1 under ``extension``, and for CLIP which
    are inside the image (the others read as black; None: all are read)."""
    if extension == "REPEAT":
        return np.mod(i, n), None
    if extension == "MIRROR":
        m = np.mod(np.where(i < 0, -i - 1, i), 2 * n)
        return np.where(m >= n, 2 * n - m - 1, m), None
    inside = ((i >= 0) & (i < n)) if extension == "CLIP" else None
    return np.clip(i, 0, n - 1), inside


def sample(texture: Texture, uv: np.ndarray) -> np.ndarray:
    """N×3 float64 linear RGB of ``texture`` at N×2 texture coordinates ``uv``."""
    tex = texture.texels
    h, w = tex.shape[:2]
    flat = tex.reshape(-1, 3)
    x = uv[:, 0].astype(np.float64) * w
    y = uv[:, 1].astype(np.float64) * h
    if texture.interpolation == "Closest":
        corners = [(np.floor(x).astype(np.int64), np.floor(y).astype(np.int64), None)]
    else:
        x, y = x - 0.5, y - 0.5
        fx, fy = np.floor(x), np.floor(y)
        # Weights and texels in float32, as Cycles interpolates.
        tx, ty = (x - fx).astype(np.float32), (y - fy).astype(np.float32)
        ix, iy = fx.astype(np.int64), fy.astype(np.int64)
        corners = [(ix, iy, (1 - tx) * (1 - ty)), (ix + 1, iy, tx * (1 - ty)),
                   (ix, iy + 1, (1 - tx) * ty), (ix + 1, iy + 1, tx * ty)]  # fmt: skip
    out = np.zeros((len(x), 3), np.float32)
    for cx_raw, cy_raw, weight in corners:
        cx, okx = _wrap(cx_raw, w, texture.extension)
        cy, oky = _wrap(cy_raw, h, texture.extension)
        if okx is not None:
            ok = okx & oky
            weight = ok.astype(np.float32) if weight is None else weight * ok
        texel = flat[cy * w + cx]
        out += texel if weight is None else texel * weight[:, None]
    return srgb_to_linear(out) if texture.srgb else out.astype(np.float64)


@dataclass
class AlbedoShader:
    """Every material of a scene's :class:`~blendtruth.raycast.scene.TriangleScene`.

    ``materials``: material id -> :class:`MaterialAlbedo` (id 0, no material, is
    :data:`DEFAULT` unless given). ``colors``: attribute name -> T×3×3 float32 linear RGB
    of that colour attribute at each triangle's corners (0 where a mesh lacks it)."""

    materials: dict[int, MaterialAlbedo]
    colors: dict[str, np.ndarray] = field(default_factory=dict)

    def shade(
        self, material: np.ndarray, triangle: np.ndarray, bary: np.ndarray, uv: np.ndarray
    ) -> np.ndarray:
        """N×3 float32 albedo of N hits: their material ids, triangle indices, N×3
        barycentric weights of the corners and N×2 UVs."""
        out = np.zeros((len(material), 3), np.float64)
        for mid in np.unique(material):
            model = self.materials.get(int(mid), DEFAULT if mid == 0 else None)
            if model is None:
                raise KeyError(f"no albedo model for material id {int(mid)}")
            sel = np.flatnonzero(material == mid)
            if model.texture is not None:
                rgb = sample(model.texture, uv[sel])
            elif model.attribute is not None:
                corners = self.colors[model.attribute][triangle[sel]].astype(np.float64)
                rgb = np.einsum("nk,nkc->nc", bary[sel], corners)
            else:
                rgb = np.asarray(model.color, np.float64)[None]
            out[sel] = rgb * np.asarray(model.tint, np.float64) * model.factor
        return out.astype(np.float32)

    def image(
        self, material: np.ndarray, triangle: np.ndarray, bary: np.ndarray, uv: np.ndarray
    ) -> np.ndarray:
        """H×W×3 float32 albedo from H×W material ids, H×W triangles (-1 = miss), H×W×3
        barycentrics and H×W×2 UVs; 0 where there is no hit."""
        h, w = triangle.shape
        hit = triangle.reshape(-1) >= 0
        out = np.zeros((h * w, 3), np.float32)
        out[hit] = self.shade(
            material.reshape(-1)[hit],
            triangle.reshape(-1)[hit],
            bary.reshape(-1, 3)[hit],
            uv.reshape(-1, 2)[hit],
        )
        return out.reshape(h, w, 3)

    def describe(self, names: dict[int, str]) -> dict[str, str]:
        """Material name -> how its albedo is evaluated (for ``meta``)."""
        return {names.get(mid, str(mid)): m.describe() for mid, m in sorted(self.materials.items())}
