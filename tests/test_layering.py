"""The package's dependencies point one way: every import (module-level or inside a function) goes down the layers.

Layers, bottom to top (docs/architecture-layers.md draws them):

    base          errors, version, memory, schema, artifacts, results_log
    core          model < data < quant < tune < device   (ordered inside too, so no folder loop)
    stages        compute only: typed results, no figures
    store         run_config < pipeline, output_folder
    presentation  ui
    entry         cli, __main__, the package's own __init__ (a facade of re-exports)

The test parses every module with ``ast`` (nothing is imported) and prints each offending edge.
"""

from __future__ import annotations

import ast
from pathlib import Path

import bertnpu

PACKAGE = Path(bertnpu.__file__).parent
# bottom to top; a unit may import its own unit and any unit listed before it
LAYERS = ("errors", "version", "memory", "schema", "artifacts", "results_log", "model", "data", "quant", "tune", "device", "stages", "run_config", "pipeline", "output_folder",
          "ui", "cli", "__main__", "__init__")
KIND = {"errors": "base", "version": "base", "memory": "base", "schema": "base", "artifacts": "base", "results_log": "base", "model": "core", "data": "core", "quant": "core", "tune": "core",
        "device": "core", "stages": "stages", "run_config": "store", "pipeline": "store", "output_folder": "store", "ui": "presentation", "cli": "entry",
        "__main__": "entry", "__init__": "entry"}
# units of one layer kind that may not import each other in either direction when they are peers (the store's two modules)
RANK = {unit: i for i, unit in enumerate(LAYERS)}
RANK["output_folder"] = RANK["pipeline"]  # the store: pipeline uses output_folder, never the reverse (checked as a loop below)


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _unit(module: str) -> str:
    """The layer unit of a module name: its first component below ``bertnpu`` (``__init__`` for the package itself)."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else "__init__"


def _is_package_path(module: str) -> bool:
    rel = Path(*module.split("."))
    return (PACKAGE.parent / rel).with_suffix(".py").is_file() or (PACKAGE.parent / rel / "__init__.py").is_file()


def import_edges() -> list[tuple[str, str, int]]:
    """``(importing module, imported bertnpu module, line)`` for every import statement in the package."""
    edges = []
    for path in sorted(PACKAGE.rglob("*.py")):
        module = _module_name(path)
        package = module if path.name == "__init__.py" else module.rpartition(".")[0]
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                targets = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom):
                if node.level:
                    base = package.split(".")[: len(package.split(".")) - node.level + 1]
                    source = ".".join(base + ([node.module] if node.module else []))
                else:
                    source = node.module or ""
                # `from . import stages` imports the submodule: the edge goes to it, not to the package
                subs = [f"{source}.{alias.name}" for alias in node.names if _is_package_path(f"{source}.{alias.name}")]
                targets = subs or [source]
            else:
                continue
            edges.extend((module, t, node.lineno) for t in targets if t == "bertnpu" or t.startswith("bertnpu."))
    return edges


def test_every_import_points_down_the_layers():
    up = [f"{a}:{line} imports {b}  ({_unit(a)} [{KIND[_unit(a)]}] -> {_unit(b)} [{KIND[_unit(b)]}])"
          for a, b, line in import_edges() if RANK[_unit(b)] > RANK[_unit(a)]]
    assert not up, "imports against the layer order:\n" + "\n".join(up)


def test_no_folder_imports_another_in_a_loop():
    graph: dict[str, set[str]] = {}
    where: dict[tuple[str, str], str] = {}
    for a, b, line in import_edges():
        ua, ub = _unit(a), _unit(b)
        if ua != ub:
            graph.setdefault(ua, set()).add(ub)
            where.setdefault((ua, ub), f"{a}:{line} imports {b}")
    loops = [f"{u} <-> {v}: {where[(u, v)]}; {where[(v, u)]}" for u in graph for v in graph[u] if u < v and u in graph.get(v, ())]
    # longer loops: a unit reachable from itself
    def reaches(start: str) -> bool:
        seen, todo = set(), list(graph.get(start, ()))
        while todo:
            u = todo.pop()
            if u == start:
                return True
            if u not in seen:
                seen.add(u)
                todo.extend(graph.get(u, ()))
        return False
    cyclic = sorted(u for u in graph if reaches(u))
    assert not loops and not cyclic, "folders importing each other:\n" + "\n".join(loops) + f"\non a loop: {cyclic}"


def test_every_unit_is_placed_and_the_scan_sees_function_level_imports():
    units = {_unit(_module_name(p)) for p in PACKAGE.rglob("*.py")}
    assert units <= set(LAYERS), f"place these in LAYERS: {sorted(units - set(LAYERS))}"
    # the scan must see imports inside functions (most of the package imports lazily)
    lazy = [(a, b) for a, b, _ in import_edges() if a == "bertnpu.pipeline" and b == "bertnpu.output_folder"]
    assert lazy, "Pipeline.run imports output_folder inside a method; the scan missed it"
