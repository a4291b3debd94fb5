"""The ray caster's albedo evaluation in numpy (raycast/albedo.py), against hand-computed
values: texel centres, bilinear midpoints, each extension outside [0, 1], sRGB decoding
after interpolation, colour attributes and constants times their factor."""

from __future__ import annotations

import numpy as np
import pytest

from blendtruth.raycast.albedo import DEFAULT, AlbedoShader, MaterialAlbedo, Texture, sample

# 2 columns x 2 rows, row 0 = bottom (V = 0): a = (0, 0), b = (1, 0), c = (0, 1), d = (1, 1).
A, B, C, D = (0.0, 0.0, 0.0), (1.0, 0.0, 0.0), (0.0, 1.0, 0.0), (0.0, 0.0, 1.0)
TEXELS = np.array([[A, B], [C, D]], np.float32)


def _tex(interpolation="Linear", extension="REPEAT", srgb=False, texels=TEXELS) -> Texture:
    return Texture("t", texels, interpolation, extension, srgb)


def test_linear_texel_centres_and_midpoints():
    uv = np.array([[0.25, 0.25], [0.75, 0.25], [0.25, 0.75], [0.5, 0.5], [0.5, 0.25]])
    got = sample(_tex(extension="EXTEND"), uv)
    want = [A, B, C, np.mean([A, B, C, D], axis=0), np.mean([A, B], axis=0)]
    np.testing.assert_allclose(got, want, atol=1e-12)
    # A quarter texel right of a's centre: 3/4 a + 1/4 b.
    got = sample(_tex(extension="EXTEND"), np.array([[0.375, 0.25]]))
    np.testing.assert_allclose(got, [[0.25, 0.0, 0.0]], atol=1e-12)


@pytest.mark.parametrize(
    "extension,want",
    [
        ("REPEAT", (0.5, 0.0, 0.0)),  # between column 1 (wrapped) and column 0: a/b mix
        ("EXTEND", A),  # clamped to column 0
        ("CLIP", (0.0, 0.0, 0.0)),  # half column -1 (black), half a (black)
        ("MIRROR", A),  # column -1 mirrors to column 0
    ],
)
def test_extensions_at_the_left_edge(extension, want):
    got = sample(_tex(extension=extension), np.array([[0.0, 0.25]]))
    np.testing.assert_allclose(got, [want], atol=1e-12)


def test_extensions_outside_the_image():
    uv = np.array([[1.25, 0.25], [-0.25, 0.75]])  # one texel-width past each side
    np.testing.assert_allclose(sample(_tex(extension="REPEAT"), uv), [A, D], atol=1e-12)
    np.testing.assert_allclose(sample(_tex(extension="EXTEND"), uv), [B, C], atol=1e-12)
    np.testing.assert_allclose(sample(_tex(extension="CLIP"), uv), [(0, 0, 0)] * 2, atol=1e-12)
    np.testing.assert_allclose(sample(_tex(extension="MIRROR"), uv), [B, C], atol=1e-12)


def test_closest_takes_the_containing_texel():
    uv = np.array([[0.49, 0.01], [0.51, 0.01], [0.01, 0.51], [0.99, 0.99], [1.01, 0.2]])
    got = sample(_tex("Closest", "REPEAT"), uv)
    np.testing.assert_allclose(got, [A, B, C, D, A], atol=0)


def test_srgb_is_decoded_after_interpolating():
    texels = np.array([[[0.0] * 3, [1.0] * 3]], np.float32)  # one row: black, white
    got = sample(_tex(extension="EXTEND", srgb=True, texels=texels), np.array([[0.5, 0.5]]))
    # sRGB 0.5 -> ((0.5 + 0.055) / 1.055) ** 2.4 = 0.214041; decoding first would give 0.5.
    np.testing.assert_allclose(got, [[0.2140411] * 3], atol=1e-6)
    small = sample(_tex("Closest", srgb=True, texels=np.full((1, 1, 3), 0.02, np.float32)),
                   np.array([[0.5, 0.5]]))  # fmt: skip
    np.testing.assert_allclose(small, [[0.02 / 12.92] * 3], rtol=1e-6)


def test_shader_constants_attributes_and_textures_times_factor():
    colors = np.zeros((2, 3, 3), np.float32)
    colors[1] = [[1, 0, 0], [0, 1, 0], [0, 0, 1]]
    shader = AlbedoShader(
        {
            1: MaterialAlbedo(0.5, color=(0.2, 0.4, 0.6)),
            2: MaterialAlbedo(0.8, attribute=""),
            3: MaterialAlbedo(1.0, texture=_tex("Closest"), tint=(0.5, 1.0, 0.25)),
        },
        {"": colors},
    )
    material = np.array([1, 2, 3, 0])
    triangle = np.array([0, 1, 0, 0])
    bary = np.array([[1, 0, 0], [0.2, 0.3, 0.5], [1, 0, 0], [1, 0, 0]], np.float64)
    uv = np.array([[0, 0], [0, 0], [0.75, 0.75], [0, 0]], np.float64)
    got = shader.shade(material, triangle, bary, uv)
    want = [[0.1, 0.2, 0.3], [0.16, 0.24, 0.4], [0.0, 0.0, 0.25], DEFAULT.color]
    np.testing.assert_allclose(got, want, atol=1e-7)
    assert got.dtype == np.float32
    with pytest.raises(KeyError, match="material id 7"):
        shader.shade(np.array([7]), triangle[:1], bary[:1], uv[:1])


def test_image_leaves_misses_black():
    shader = AlbedoShader({1: MaterialAlbedo(1.0, color=(0.3, 0.3, 0.3))})
    triangle = np.array([[0, -1]])
    out = shader.image(np.array([[1, 0]]), triangle, np.ones((1, 2, 3)) / 3, np.zeros((1, 2, 2)))
    np.testing.assert_allclose(out, [[[0.3] * 3, [0.0] * 3]], atol=1e-7)
