"""The package's layers, read from its own imports (AST, nothing imported): the pure layers
never import upward, only blender/ touches bpy, the ray caster works without Blender, and
no two modules import each other in a circle. Imports under ``if TYPE_CHECKING:`` are
annotations only and do not count."""

from __future__ import annotations

import ast
from collections import defaultdict
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[1] / "src"
PKG = "blendtruth"

# Layer -> the packages/modules it may import (itself always).
ALLOWED = {
    "blendtruth.geometry": {"blendtruth.errors", "blendtruth.geometry"},
    "blendtruth.sensors": {"blendtruth.errors", "blendtruth.geometry", "blendtruth.sensors"},
    # Scenes and cameras read the config records (settings, scene, view) and nothing above.
    "blendtruth.scenes": {"blendtruth.errors", "blendtruth.conventions", "blendtruth.geometry",
                          "blendtruth.scenes", "blendtruth.view", "blendtruth.settings",
                          "blendtruth.scene"},
}  # fmt: skip
# Never imported by the ray caster (it casts without Blender) nor by the pure layers.
ABOVE_RAYCAST = ("blendtruth.blender", "blendtruth.cli", "blendtruth.api", "blendtruth.dataset",
                 "blendtruth.multiview", "blendtruth.multiscene", "blendtruth.exports")  # fmt: skip


def _modules(src: Path = SRC) -> dict[str, Path]:
    out = {}
    for path in (src / PKG).rglob("*.py"):
        name = ".".join(path.relative_to(src).with_suffix("").parts)
        out[name.removesuffix(".__init__")] = path
    return out


def _imports(path: Path, name: str, modules: dict[str, Path]) -> list[tuple[str, int]]:
    """(imported module, line) of every import in ``path`` outside TYPE_CHECKING blocks;
    third-party modules keep their top-level name."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found: list[tuple[str, int]] = []

    class Visitor(ast.NodeVisitor):
        def visit_If(self, node: ast.If) -> None:
            test = node.test
            if isinstance(test, ast.Name) and test.id == "TYPE_CHECKING":
                for child in node.orelse:
                    self.visit(child)
                return
            self.generic_visit(node)

        def visit_Import(self, node: ast.Import) -> None:
            found.extend((alias.name, node.lineno) for alias in node.names)

        def visit_ImportFrom(self, node: ast.ImportFrom) -> None:
            base = node.module or ""
            if node.level:
                parts = package.split(".")
                base = ".".join(parts[: len(parts) - node.level + 1] + ([base] if base else []))
            for alias in node.names:
                full = f"{base}.{alias.name}"
                found.append((full if full in modules else base, node.lineno))

    Visitor().visit(ast.parse(path.read_text(encoding="utf-8")))
    return found


def _graph(src: Path = SRC) -> tuple[dict[str, set[str]], list[tuple[str, str, int]]]:
    modules = _modules(src)
    edges: dict[str, set[str]] = defaultdict(set)
    every: list[tuple[str, str, int]] = []
    for name, path in modules.items():
        for target, line in _imports(path, name, modules):
            every.append((name, target, line))
            while target and target not in modules and target.startswith(PKG + "."):
                target = target.rpartition(".")[0]
            if target in modules and target != name:
                edges[name].add(target)
    return edges, every


def _within(name: str, prefix: str) -> bool:
    return name == prefix or name.startswith(prefix + ".")


def upward_imports(src: Path = SRC) -> list[str]:
    _, every = _graph(src)
    bad = []
    for name, target, line in every:
        for layer, allowed in ALLOWED.items():
            if _within(name, layer) and target.startswith(PKG) and target != PKG:
                if not any(_within(target, a) for a in allowed):
                    bad.append(f"{name}:{line} imports {target}")
        if _within(name, "blendtruth.raycast") and any(_within(target, a) for a in ABOVE_RAYCAST):
            bad.append(f"{name}:{line} imports {target}")
        if target.split(".")[0] == "bpy" and not _within(name, "blendtruth.blender"):
            bad.append(f"{name}:{line} imports bpy outside blender/")
    return bad


def cycles(src: Path = SRC) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan)."""
    edges, _ = _graph(src)
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on: set[str] = set()
    found: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on.add(v)
        for w in edges[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for v in list(_modules(src)):
        if v not in index:
            visit(v)
    return found


def test_pure_layers_never_import_upward():
    assert upward_imports() == []


def test_no_import_circles():
    assert cycles() == []


@pytest.mark.parametrize(
    ("module", "line", "expect"),
    [
        ("geometry/rays.py", "from blendtruth.multiview import ViewPlan", "imports"),
        ("scenes/rigs.py", "from blendtruth.writers.atomic import write_bytes", "imports"),
        ("raycast/scene.py", "import bpy", "bpy outside blender"),
    ],
)
def test_the_contract_catches_an_added_upward_import(tmp_path, module, line, expect):
    import shutil

    copy = tmp_path / "src"
    shutil.copytree(SRC / PKG, copy / PKG)
    target = copy / PKG / module
    target.write_text(target.read_text() + f"\n{line}\n")
    assert any(expect in b and module.split("/")[0] in b for b in upward_imports(copy))


def test_the_contract_catches_an_added_circle(tmp_path):
    import shutil

    copy = tmp_path / "src"
    shutil.copytree(SRC / PKG, copy / PKG)
    errors = copy / PKG / "errors.py"
    errors.write_text(errors.read_text() + "\nfrom blendtruth import view  # noqa\n")
    assert any("blendtruth.errors" in c for c in cycles(copy))
