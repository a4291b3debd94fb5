"""Material changes for the ground-truth renders only (the RGB render sees the originals).

Alpha. Cycles passes a partly transparent surface stochastically: a camera path goes
through with probability (1 - alpha). It also overwrites depth, object/material index and
position at every surface it reaches until one has alpha >= the view layer's alpha
threshold, while normal and UV are written only there. In the 1-sample ground-truth render
(no bounces) a path that stops at a surface below the threshold therefore keeps that
surface's depth and ids with empty normal/UV passes: an alpha-0.3 plane at threshold 0.5
was hit in about 30% of its pixels (bpy 4.5). So every alpha the materials feed Cycles goes
through a step, ``alpha' = 1 if alpha >= threshold else 0``: surfaces at or above the
threshold are opaque, the others fully transparent and always passed, and all passes agree.

Albedo. Cycles' Diffuse Color pass (``albedo``) is the diffuse closure's weight, which the
Principled BSDF lowers by the energy its specular, coat and sheen layers reflect, a
view-dependent factor (measured 0.957-0.963 across a 60° view of the default material). Those
layers' weights (Specular IOR Level, Coat Weight, Sheen Weight) are set to 0, so the pass
is Base Color x (1 - metallic) x (1 - transmission). Data passes do not depend on them.

Handled: the Principled BSDFs and the Mix Shaders with a Transparent BSDF on one input
(whose factor is then an alpha) in the materials' own node trees, not inside node groups.
"""

from __future__ import annotations

from dataclasses import dataclass

from blendtruth.blender._bpy import bpy

_PREFIX = "blendtruth_truth"
_LAYERS = ("Specular IOR Level", "Coat Weight", "Sheen Weight")


@dataclass(frozen=True)
class _Change:
    """One changed input: ``kind`` "alpha" (the input is an alpha), "transparency" (it is
    1 - alpha) or "layer" (set to 0); the names of the nodes added for it ("" if none)."""

    material: str
    node: str
    index: int
    kind: str
    held: str
    below: str = ""
    out: str = ""


_changes: list[_Change] = []
# What the materials are set up for now: a threshold, "rgb" (their own), or None (unknown).
_state: list[float | str | None] = [None]


def install() -> None:
    """Add the (inactive) nodes to the loaded scene's materials; call once per scene."""
    _changes.clear()
    _state[0] = "rgb"
    for mat in bpy.data.materials:
        if mat.users == 0 or mat.node_tree is None:
            continue
        for node in list(mat.node_tree.nodes):
            for index, kind in _inputs(node):
                _changes.append(_add(mat, node, index, kind))


def for_ground_truth(threshold: float) -> None:
    """Stepped alphas (``threshold`` in [0, 1]) and no specular/coat/sheen layers."""
    if _state[0] == threshold:
        return  # node trees unchanged: Cycles keeps its compiled shaders
    _state[0] = None
    for change in _changes:
        tree = bpy.data.materials[change.material].node_tree
        target = tree.nodes[change.node].inputs[change.index]
        for link in list(target.links):
            tree.links.remove(link)
        if change.kind == "layer":
            target.default_value = 0.0
            continue
        tree.nodes[change.below].inputs[1].default_value = threshold
        tree.links.new(tree.nodes[change.out].outputs[0], target)
    _state[0] = threshold


def for_rgb() -> None:
    """Every changed input back to the material's own value or link."""
    if _state[0] == "rgb":
        return
    _state[0] = None
    for change in _changes:
        tree = bpy.data.materials[change.material].node_tree
        target = tree.nodes[change.node].inputs[change.index]
        held = tree.nodes[change.held].inputs[0]
        for link in list(target.links):
            tree.links.remove(link)
        target.default_value = held.default_value
        if held.is_linked:
            tree.links.new(held.links[0].from_socket, target)
    _state[0] = "rgb"


def _inputs(node) -> list[tuple[int, str]]:
    if node.bl_idname == "ShaderNodeBsdfPrincipled":
        found = []
        for index, socket in enumerate(node.inputs):
            if socket.name == "Alpha" and (socket.is_linked or socket.default_value < 1.0):
                found.append((index, "alpha"))
            elif socket.name in _LAYERS and (socket.is_linked or socket.default_value != 0.0):
                found.append((index, "layer"))
        return found
    if node.bl_idname == "ShaderNodeMixShader":
        # Shader 1 gets weight 1 - Fac, shader 2 gets Fac: with Transparent BSDF as shader 1
        # Fac is the alpha, as shader 2 it is 1 - alpha.
        for slot, kind in ((1, "alpha"), (2, "transparency")):
            links = node.inputs[slot].links
            if links and links[0].from_node.bl_idname == "ShaderNodeBsdfTransparent":
                return [(0, kind)]
    return []


def _math(tree, operation: str, first: float | None = None):
    node = tree.nodes.new("ShaderNodeMath")
    node.name = _PREFIX  # Blender makes it unique (.001, ...); the real name is kept
    node.label = _PREFIX
    node.operation = operation
    node.use_clamp = False
    if first is not None:
        node.inputs[0].default_value = first
    return node


def _add(mat, node, index: int, kind: str) -> _Change:
    """A holder (x + 0) keeps the input's own link or value; for an alpha input also
    holder -> alpha -> (alpha < t) -> 1 - that = alpha' -> out (alpha', or 1 - alpha')."""
    tree = mat.node_tree
    target = node.inputs[index]
    held = _math(tree, "ADD")
    held.inputs[1].default_value = 0.0
    held.inputs[0].default_value = target.default_value
    if target.is_linked:
        tree.links.new(target.links[0].from_socket, held.inputs[0])
    if kind == "layer":
        return _Change(mat.name, node.name, index, kind, held.name)
    alpha = held
    if kind == "transparency":
        alpha = _math(tree, "SUBTRACT", 1.0)
        tree.links.new(held.outputs[0], alpha.inputs[1])
    below = _math(tree, "LESS_THAN")
    tree.links.new(alpha.outputs[0], below.inputs[0])
    out = _math(tree, "SUBTRACT", 1.0)
    tree.links.new(below.outputs[0], out.inputs[1])
    if kind == "transparency":
        flipped = _math(tree, "SUBTRACT", 1.0)
        tree.links.new(out.outputs[0], flipped.inputs[1])
        out = flipped
    return _Change(mat.name, node.name, index, kind, held.name, below.name, out.name)
