"""The package's import structure: one way through the pipeline, no cycles, no private names across modules.

Every module of `synthtext_industrial` is read with `ast` (nothing is imported), each import (module level or
inside a function) resolved to the package module it names, and the graph checked against the layout that
docs/architecture.md describes.
"""
from __future__ import annotations

import ast
import sys
from pathlib import Path

import pytest

from .conftest import REPO

PACKAGE = "synthtext_industrial"
ROOT = REPO / PACKAGE

# Layers in pipeline order: a module imports only from its own layer or earlier ones.
LAYERS = [
    ["core"],
    ["stages"],
    ["recipe", "fit"],
    ["render"],
    ["crops", "exactness", "preview", "audit", "measure", "domain"],
    ["store"],
    ["generate"],
    ["train"],
    ["export"],
    ["data", "cli"],
]
# The stages, in the order a page is rendered: a stage imports only `core` and the stages before it.
STAGES = ["backgrounds", "text", "fonts", "dotmatrix", "typeset", "surface", "layout", "display", "context",
          "legibility", "marking", "effects", "framing"]
# The root package may be imported only for its version (set before any of its own imports).
ROOT_NAMES = {"__version__"}


def module_name(path: Path) -> str:
    parts = list(path.relative_to(REPO).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


MODULES = {module_name(p): p for p in sorted(ROOT.rglob("*.py"))}


def _resolve(module: str, is_package: bool, node: ast.ImportFrom) -> str:
    if not node.level:
        return node.module or ""
    base = module.split(".") if is_package else module.split(".")[:-1]
    base = base[:len(base) - node.level + 1]
    return ".".join(base + ([node.module] if node.module else []))


def imports(module: str) -> list[tuple[str, str | None, int]]:
    """(imported package module, name imported from it or None, line) for every import in `module`."""
    path = MODULES[module]
    found = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found += [(alias.name, None, node.lineno) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            target = _resolve(module, path.name == "__init__.py", node)
            for alias in node.names:
                sub = f"{target}.{alias.name}"
                found.append((sub, None, node.lineno) if sub in MODULES else (target, alias.name, node.lineno))
    return found


def internal_edges() -> dict[str, set[str]]:
    graph = {m: set() for m in MODULES}
    for m in MODULES:
        for target, name, _line in imports(m):
            if target == PACKAGE and name in ROOT_NAMES:
                continue
            if target in MODULES and target != m:
                graph[m].add(target)
    return graph


def area(module: str) -> str:
    """The top-level part of the package a module belongs to: core, stages, store, render, ..."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else PACKAGE


def layer(module: str) -> int:
    name = area(module)
    if name == PACKAGE:
        return len(LAYERS)
    for k, names in enumerate(LAYERS):
        if name in names:
            return k
    raise AssertionError(f"{module}: its place in LAYERS is not known; add it (and to docs/architecture.md)")


def test_every_module_has_a_place_in_the_layers():
    for m in MODULES:
        layer(m)
        if area(m) == "stages" and m != f"{PACKAGE}.stages":
            assert m.split(".")[2] in STAGES, f"{m}: add it to STAGES in pipeline order"


def test_no_import_cycles():
    graph = internal_edges()
    index, low, stack, on_stack, cycles = {}, {}, [], set(), []

    def visit(v: str) -> None:  # Tarjan's strongly connected components
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(graph[v]):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                cycles.append(sorted(component))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    assert not cycles, f"import cycles: {cycles}"


def test_imports_point_one_way_through_the_pipeline():
    wrong = []
    for m in MODULES:
        for target, name, line in imports(m):
            if not target.startswith(PACKAGE) or (target == PACKAGE and name in ROOT_NAMES):
                continue
            if layer(target) > layer(m):
                wrong.append(f"{m}:{line} imports {target} (a later layer)")
            if area(m) == area(target) == "stages":
                here, there = m.split(".")[2:3], target.split(".")[2:3]
                if here and there and STAGES.index(there[0]) > STAGES.index(here[0]):
                    wrong.append(f"{m}:{line} imports {target} (a later stage)")
    assert not wrong, "\n".join(wrong)


def test_no_private_names_across_modules():
    wrong = []
    for m in MODULES:
        path = MODULES[m]
        tree = ast.parse(path.read_text(encoding="utf-8"))
        module_aliases = {}
        for target, name, line in imports(m):
            if target.startswith(PACKAGE) and name and name.startswith("_") and not name.startswith("__"):
                wrong.append(f"{m}:{line} imports {name} from {target}")
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom):
                base = _resolve(m, path.name == "__init__.py", node)
                for alias in node.names:
                    if f"{base}.{alias.name}" in MODULES:
                        module_aliases[alias.asname or alias.name] = f"{base}.{alias.name}"
            elif isinstance(node, ast.Import):
                for alias in node.names:
                    if alias.name in MODULES and alias.asname:
                        module_aliases[alias.asname] = alias.name
        for node in ast.walk(tree):
            if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) \
                    and node.value.id in module_aliases and node.attr.startswith("_") \
                    and not node.attr.startswith("__"):
                wrong.append(f"{m}:{node.lineno} uses {module_aliases[node.value.id]}.{node.attr}")
    assert not wrong, "\n".join(wrong)


@pytest.mark.parametrize("part, allowed", [
    ("core", {"core"}),
    ("store", {"core", "store"}),  # the dataset format and readers: no generator, no stage, no renderer
    ("stages", {"core", "stages"}),
])
def test_a_part_imports_only_what_it_may(part, allowed):
    wrong = [f"{m}:{line} imports {target}" for m in MODULES if area(m) == part
             for target, name, line in imports(m)
             if target.startswith(PACKAGE) and area(target) not in allowed
             and not (target == PACKAGE and name in ROOT_NAMES)]
    assert not wrong, "\n".join(wrong)


def test_store_imports_neither_generate_nor_any_stage():
    for m in MODULES:
        if area(m) != "store":
            continue
        for target, _name, line in imports(m):
            assert not target.startswith((f"{PACKAGE}.generate", f"{PACKAGE}.stages", f"{PACKAGE}.render")), \
                f"{m}:{line} imports {target}"


def test_the_jetson_kit_is_standalone():
    """The kit runs on a device without the package: it imports nothing of it."""
    for m in MODULES:
        if ".export.jetson_kit." in m + ".":
            for target, _name, line in imports(m):
                assert not target.startswith(PACKAGE), f"{m}:{line} imports {target}"


def test_one_top_level_package_and_no_trainers():
    tops = sorted(p.parent.name for p in REPO.glob("*/__init__.py"))
    assert tops == [PACKAGE, "tests"], tops
    pyproject = (REPO / "pyproject.toml").read_text(encoding="utf-8")
    assert f'packages = ["{PACKAGE}"]' in pyproject
    # the development venv may still see an old checkout's `trainers`: nothing here may import it
    for folder in (PACKAGE, "tests", "tools", "benchmarks", "examples"):
        for path in (REPO / folder).rglob("*.py"):
            if ".peers" in path.parts:
                continue
            for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
                names = [a.name for a in node.names] if isinstance(node, ast.Import) else \
                    [node.module or ""] if isinstance(node, ast.ImportFrom) and not node.level else []
                assert not any(n == "trainers" or n.startswith("trainers.") for n in names), \
                    f"{path.relative_to(REPO)}:{node.lineno} imports trainers"


def test_the_kit_carries_the_generated_copy_of_portable_byte_for_byte():
    """infer.py cannot import the package on a device: its preprocessing and box decoding are a generated copy
    of core/portable.py (tools/vendor_kit.py), the code training, evaluation and parity run."""
    sys.path.insert(0, str(REPO / "tools"))
    try:
        import vendor_kit
    finally:
        sys.path.remove(str(REPO / "tools"))
    text = vendor_kit.KIT.read_text(encoding="utf-8")
    start, end = vendor_kit.kit_copy(text)
    assert text[start:end].encode() == vendor_kit.vendored_source().encode(), \
        "jetson_kit/infer.py's copy of core/portable.py is stale: run python tools/vendor_kit.py"
