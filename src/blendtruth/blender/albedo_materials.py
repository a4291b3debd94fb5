"""Which materials the ray caster can shade for ``albedo``, read from Blender's node trees.

A material is expressible when its active output's Surface is fed (through reroutes only)
by a Principled BSDF or a Diffuse BSDF whose Base Color / Color is

- unlinked: a constant;
- an Image Texture node's Color: flat projection, ``Linear`` or ``Closest`` interpolation,
  any extension, its Vector unlinked or from the active UV map (a UV Map node with no map
  named, or Texture Coordinate's UV), a loaded single image (no UDIM tiles, movies or
  sequences) without transparent texels, in sRGB, Non-Color or a linear colour space;
- a Color Attribute node's Color,

each possibly multiplied by a constant colour in a Mix (Color, Multiply, factor 1, no
clamp) or MixRGB node (glTF's base colour factor),

and, for a Principled BSDF, Metallic, Transmission Weight and Subsurface Weight unlinked
and subsurface 0. Anything else (mix shaders, node groups, procedural textures, colour
ramps, mapping nodes, ...) is a reason for Cycles to make the scene's ground truth.
"""

from __future__ import annotations

import numpy as np

from blendtruth.blender import compat
from blendtruth.blender._bpy import bpy
from blendtruth.raycast.albedo import (
    DEFAULT,
    EXTENSIONS,
    INTERPOLATIONS,
    AlbedoShader,
    MaterialAlbedo,
    Texture,
)

_SRGB = ("sRGB",)
_LINEAR = ("Non-Color", "Linear Rec.709", "Linear", "Raw", "Linear CIE-XYZ E")


def classify(mat, read_pixels: bool = True) -> MaterialAlbedo | str:
    """The :class:`MaterialAlbedo` of ``mat``, or why the ray caster cannot express it.
    Without ``read_pixels`` an image's texels are checked (alpha) but not kept."""
    name = f"material {mat.name!r}"
    if not compat.uses_nodes(mat) or mat.node_tree is None:
        return f"{name} does not use nodes (albedo)"
    output = compat.active_output(mat.node_tree)
    if output is None:
        return DEFAULT  # no output: Cycles' default surface
    shader = _source(output.inputs["Surface"])
    if shader is None:
        return DEFAULT if not output.inputs["Surface"].is_linked else f"{name} has no shader"
    node, _ = shader
    if node.type == "BSDF_DIFFUSE":
        color_input, factor = node.inputs["Color"], 1.0
    elif node.type == "BSDF_PRINCIPLED":
        color_input = node.inputs["Base Color"]
        factor = 1.0
        for label in ("Metallic", "Transmission Weight", "Subsurface Weight"):
            socket = node.inputs.get(label)
            if socket is None:
                continue
            if socket.is_linked:
                return f"{name}'s {label} is linked (albedo)"
            if label == "Subsurface Weight" and socket.default_value > 0:
                return f"{name} has subsurface scattering (albedo)"
            if label != "Subsurface Weight":
                factor *= 1.0 - float(socket.default_value)
    else:
        return f"{name}'s surface is a {node.type.lower()} node (albedo)"
    tint = (1.0, 1.0, 1.0)
    source = _source(color_input)
    if source is not None and source[0].type in ("MIX", "MIX_RGB"):
        found = _multiply(source[0], name)
        if isinstance(found, str):
            return found
        tint, color_input = found
        source = _source(color_input)
    if source is None:
        rgb = tuple(float(c) * t for c, t in zip(color_input.default_value[:3], tint, strict=True))
        return MaterialAlbedo(factor=factor, color=rgb)
    src, socket = source
    if src.type == "VERTEX_COLOR" and socket == "Color":
        return MaterialAlbedo(factor=factor, attribute=src.layer_name, tint=tint)
    if src.type == "TEX_IMAGE" and socket == "Color":
        texture = _texture(src, name, read_pixels)
        if isinstance(texture, str):
            return texture
        return MaterialAlbedo(factor=factor, texture=texture, tint=tint)
    return f"{name}'s base colour comes from a {src.type.lower()} node (albedo)"


def _multiply(node, name: str) -> tuple[tuple[float, float, float], object] | str:
    """A Mix (Color) or MixRGB node multiplying at factor 1 without clamping, one colour
    input unlinked (as glTF's importer writes a base colour factor times a texture):
    (the unlinked input's RGB, the other input socket); else why not."""
    if node.type == "MIX":
        by_id = {socket.identifier: socket for socket in node.inputs}
        fac = by_id["Factor_Float"]
        colours = [by_id["A_Color"], by_id["B_Color"]]
        ok = node.data_type == "RGBA" and not node.clamp_result
    else:
        fac = node.inputs["Fac"]
        colours = [node.inputs["Color1"], node.inputs["Color2"]]
        ok = not node.use_clamp
    ok = ok and node.blend_type == "MULTIPLY" and not fac.is_linked and fac.default_value == 1
    linked = [s for s in colours if s.is_linked]
    if not ok or len(linked) > 1:
        return f"{name}'s base colour is mixed by a {node.type.lower()} node (albedo)"
    other = colours[1] if linked and linked[0] is colours[0] else colours[0]
    inner = linked[0] if linked else colours[1]
    return tuple(float(c) for c in other.default_value[:3]), inner


def _source(socket) -> tuple[object, str] | None:
    """(node, output socket name) feeding ``socket`` through reroutes; None if unlinked."""
    while socket.is_linked:
        link = socket.links[0]
        if link.is_muted:
            return None
        node = link.from_node
        if node.type != "REROUTE":
            if node.mute:
                return (node, "muted")
            return node, link.from_socket.name
        socket = node.inputs[0]
    return None


def _texture(node, name: str, read_pixels: bool) -> Texture | str:
    image = node.image
    if image is None:
        return f"{name}'s image texture has no image (albedo)"
    what = f"{name}'s image {image.name!r}"
    if image.source not in ("FILE", "GENERATED"):
        return f"{what} is a {image.source.lower()} (albedo)"
    if node.projection != "FLAT":
        return f"{what} uses {node.projection.lower()} projection (albedo)"
    if node.interpolation not in INTERPOLATIONS:
        return f"{what} uses {node.interpolation} interpolation (albedo)"
    if node.extension not in EXTENSIONS:
        return f"{what} uses {node.extension.lower()} extension (albedo)"
    vector = _source(node.inputs["Vector"])
    if vector is not None:
        src, socket = vector
        active_uv = (src.type == "UVMAP" and not src.uv_map and not src.from_instancer) or (
            src.type == "TEX_COORD" and socket == "UV" and not src.from_instancer
        )
        if not active_uv:
            return f"{what} is not looked up at the active UV map (albedo)"
    space = image.colorspace_settings.name
    if space not in _SRGB + _LINEAR:
        return f"{what} is in colour space {space!r} (albedo)"
    w, h = image.size
    channels = image.channels
    if w == 0 or h == 0 or channels not in (1, 3, 4):
        return f"{what} could not be loaded (albedo)"
    pixels = np.empty(w * h * channels, np.float32)
    image.pixels.foreach_get(pixels)
    pixels = pixels.reshape(h, w, channels)
    if channels == 4 and pixels[..., 3].min() < 1.0:
        return f"{what} has transparent texels (albedo)"
    rgb = np.repeat(pixels[..., :1], 3, axis=2) if channels == 1 else pixels[..., :3]
    return Texture(
        name=image.name,
        texels=np.ascontiguousarray(rgb) if read_pixels else rgb[:1, :1],
        interpolation=node.interpolation,
        extension=node.extension,
        # Blender keeps float images scene-linear; Cycles decodes an 8-bit sRGB image after
        # interpolating it.
        srgb=space in _SRGB and not image.is_float,
    )


def blockers(materials) -> list[str]:
    """Why the ray caster cannot make ``albedo`` for these materials (empty: it can)."""
    reasons = []
    for mat in materials:
        model = classify(mat, read_pixels=False)
        if isinstance(model, str):
            reasons.append(model)
    return reasons


def shader() -> tuple[AlbedoShader, dict[int, str]]:
    """The scene's :class:`AlbedoShader` (by material id, ``pass_index``) for the
    triangles :func:`blendtruth.blender.triangles.extract_triangles` returns, and the
    material names by id. Call after :func:`blockers` found none."""
    from blendtruth.blender.triangles import extract_corner_colors

    models: dict[int, MaterialAlbedo] = {}
    names: dict[int, str] = {0: "(no material)"}
    for mat in bpy.data.materials:
        if mat.users == 0 or mat.pass_index <= 0:
            continue
        model = classify(mat)
        if isinstance(model, MaterialAlbedo):
            models[mat.pass_index] = model
            names[mat.pass_index] = mat.name
    models.setdefault(0, DEFAULT)
    attributes = sorted({m.attribute for m in models.values() if m.attribute is not None})
    colors = extract_corner_colors(attributes) if attributes else {}
    return AlbedoShader(models, colors), names
