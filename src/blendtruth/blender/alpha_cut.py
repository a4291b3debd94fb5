"""The alpha-threshold transparency policy, made deterministic for the ground-truth renders.

Cycles passes a partly transparent surface stochastically: a camera path goes through
with probability (1 - alpha). It also overwrites depth, object/material index and position
at every surface it reaches until one has alpha >= the view layer's alpha threshold, while
normal and UV are written only there. In the 1-sample ground-truth render (no bounces) a
path that stops at a surface below the threshold therefore keeps that surface's depth and
ids with empty normal/UV passes: an alpha-0.3 plane at threshold 0.5 was hit in about 30%
of its pixels (measured with bpy 4.5).

So for the ground-truth renders every alpha the scene's materials feed Cycles goes through
a step, ``alpha' = 1 if alpha >= threshold else 0``: surfaces at or above the threshold are
opaque, the others fully transparent and always passed, and every pass agrees. Handled:
the Alpha input of each Principled BSDF (constant or linked, e.g. an image's alpha; how
every importer writes alpha) and the factor of each Mix Shader with a Transparent BSDF on
one input, in the materials' own node trees (not inside node groups). The RGB render gets
the materials' own alpha back (``apply(None)``).
"""

from __future__ import annotations

from blendtruth.blender._bpy import bpy

_PREFIX = "blendtruth_alpha_cut"
# Each entry: (material name, node name, input index, True if the input is an alpha,
# False if it is 1 - alpha).
_cuts: list[tuple[str, str, int, bool]] = []


def install() -> None:
    """Add the (inactive) step nodes to the loaded scene's materials; call once per scene."""
    _cuts.clear()
    for mat in bpy.data.materials:
        if mat.users == 0 or mat.node_tree is None:
            continue
        for node in list(mat.node_tree.nodes):
            for index, is_alpha in _alpha_inputs(node):
                _add_step(mat, node, index, is_alpha)
                _cuts.append((mat.name, node.name, index, is_alpha))


def apply(threshold: float | None) -> None:
    """Feed the stepped alpha (``threshold`` in [0, 1]) or, with None, the material's own
    alpha to every handled input."""
    for mat_name, node_name, index, _ in _cuts:
        tree = bpy.data.materials[mat_name].node_tree
        target = tree.nodes[node_name].inputs[index]
        source = tree.nodes[_name(node_name, index, "source")]
        if threshold is None:
            for link in list(target.links):
                tree.links.remove(link)
            if source.inputs[0].is_linked:
                tree.links.new(source.inputs[0].links[0].from_socket, target)
            continue
        tree.nodes[_name(node_name, index, "below")].inputs[1].default_value = threshold
        tree.links.new(tree.nodes[_name(node_name, index, "out")].outputs[0], target)


def _alpha_inputs(node) -> list[tuple[int, bool]]:
    if node.bl_idname == "ShaderNodeBsdfPrincipled":
        alpha = node.inputs["Alpha"]
        if alpha.is_linked or alpha.default_value < 1.0:
            return [(list(node.inputs).index(alpha), True)]
        return []
    if node.bl_idname == "ShaderNodeMixShader":
        # Shader 1 gets weight 1 - Fac, shader 2 gets Fac: with Transparent BSDF as shader 1
        # Fac is the alpha, as shader 2 it is 1 - alpha.
        for slot, is_alpha in ((1, True), (2, False)):
            links = node.inputs[slot].links
            if links and links[0].from_node.bl_idname == "ShaderNodeBsdfTransparent":
                return [(0, is_alpha)]
    return []


def _name(node_name: str, index: int, part: str) -> str:
    return f"{_PREFIX}_{node_name}_{index}_{part}"


def _math(tree, name: str, operation: str):
    node = tree.nodes.new("ShaderNodeMath")
    node.name = name
    node.operation = operation
    node.use_clamp = False
    return node


def _add_step(mat, node, index: int, is_alpha: bool) -> None:
    """source (the input's own value or link) -> alpha -> (alpha < t) -> 1 - that -> out,
    where ``out`` is the stepped alpha, or 1 - it for an input that is 1 - alpha."""
    tree = mat.node_tree
    target = node.inputs[index]
    source = _math(tree, _name(node.name, index, "source"), "ADD")  # identity: x + 0
    source.inputs[1].default_value = 0.0
    if target.is_linked:
        tree.links.new(target.links[0].from_socket, source.inputs[0])
    else:
        source.inputs[0].default_value = target.default_value
    alpha = source
    if not is_alpha:
        alpha = _math(tree, _name(node.name, index, "alpha"), "SUBTRACT")
        alpha.inputs[0].default_value = 1.0
        tree.links.new(source.outputs[0], alpha.inputs[1])
    below = _math(tree, _name(node.name, index, "below"), "LESS_THAN")
    tree.links.new(alpha.outputs[0], below.inputs[0])
    kept = _math(tree, _name(node.name, index, "kept"), "SUBTRACT")
    kept.inputs[0].default_value = 1.0
    tree.links.new(below.outputs[0], kept.inputs[1])
    out = kept
    if not is_alpha:
        out = _math(tree, _name(node.name, index, "out"), "SUBTRACT")
        out.inputs[0].default_value = 1.0
        tree.links.new(kept.outputs[0], out.inputs[1])
    else:
        kept.name = _name(node.name, index, "out")
