"""The package's shape: imports between packages run one way (no cycle, not even through an
import inside a function), orchestration sits above the pieces, and imports hide inside
functions only where they keep ``deepradiomics --help`` and ``import deepradiomics`` fast.

Every module's imports are read with ``ast`` (module level, inside functions and classes);
only ``if TYPE_CHECKING:`` blocks are skipped, since they never run.
"""

from __future__ import annotations

import ast
from collections import defaultdict
from pathlib import Path

import deepradiomics

SRC = Path(deepradiomics.__file__).parent
# ARCHITECTURE.md: from orchestration down to the pieces
ORCHESTRATION = {"cli", "api", "experiment", "bundle", "inference", "report"}
# modules whose imports of this package may sit inside functions, and why
LAZY_ALLOWED = {
    "cli.py": "--help is instant",
    "__init__.py": "import deepradiomics does not import torch (PEP 562 __getattr__)",
    "losses/factory.py": "the segmentation losses import MONAI",
}


def _is_type_checking(node: ast.If) -> bool:
    test = node.test
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def module_imports(path: Path, module: str) -> list[tuple[str, bool]]:
    """``(imported module, inside a function)`` for every import that runs in ``path``."""
    found: list[tuple[str, bool]] = []

    def visit(node: ast.AST, in_function: bool) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.If) and _is_type_checking(child):
                for sub in child.orelse:
                    visit(sub, in_function)
                continue
            if isinstance(child, ast.Import):
                found.extend((a.name, in_function) for a in child.names)
            elif isinstance(child, ast.ImportFrom):
                base = child.module or ""
                if child.level:
                    parts = module.split(".")
                    keep = len(parts) - child.level + (1 if path.name == "__init__.py" else 0)
                    base = ".".join(parts[:keep] + ([child.module] if child.module else []))
                found.append((base, in_function))
            visit(
                child,
                in_function
                or isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)),
            )

    visit(ast.parse(path.read_text()), False)
    return found


def package_graph(src: Path) -> tuple[dict[str, set[str]], list[tuple[str, str]]]:
    """Edges between the top-level packages / modules of the package at ``src``, and the
    ``(file, imported module)`` imports that sit inside functions."""
    name = src.name
    edges: dict[str, set[str]] = defaultdict(set)
    lazy = []
    for path in sorted(src.rglob("*.py")):
        rel = path.relative_to(src)
        parts = [name, *rel.with_suffix("").parts]
        if parts[-1] == "__init__":
            parts = parts[:-1]
        unit = parts[1] if len(parts) > 1 else "__init__"
        for target, in_function in module_imports(path, ".".join(parts)):
            tparts = target.split(".")
            if tparts[0] != name:
                continue
            if in_function:
                lazy.append((rel.as_posix(), target))
            other = tparts[1] if len(tparts) > 1 else "__init__"
            if other != unit:
                edges[unit].add(other)
    return edges, lazy


def find_cycle(edges: dict[str, set[str]]) -> list[str] | None:
    """One cycle of the graph as a path ``[a, b, ..., a]``, or None."""
    state: dict[str, int] = {}
    stack: list[str] = []

    def dfs(node: str) -> list[str] | None:
        state[node] = 1
        stack.append(node)
        for nxt in sorted(edges.get(node, ())):
            if state.get(nxt) == 1:
                return stack[stack.index(nxt) :] + [nxt]
            if nxt not in state and (cycle := dfs(nxt)):
                return cycle
        stack.pop()
        state[node] = 2
        return None

    for node in sorted(edges):
        if node not in state and (cycle := dfs(node)):
            return cycle
    return None


def test_no_import_cycle_between_packages() -> None:
    edges, _ = package_graph(SRC)
    assert len(edges) > 10  # the walk saw the package
    assert find_cycle(edges) is None, " -> ".join(find_cycle(edges))


def test_pieces_never_import_orchestration() -> None:
    edges, _ = package_graph(SRC)
    wrong = {
        (a, b)
        for a, targets in edges.items()
        for b in targets
        if a not in ORCHESTRATION and a != "__init__" and b in ORCHESTRATION
    }
    assert not wrong, f"pieces importing orchestration: {sorted(wrong)}"


def test_imports_inside_functions_only_where_they_keep_startup_fast() -> None:
    _, lazy = package_graph(SRC)
    hidden = sorted({f for f, _ in lazy if f not in LAZY_ALLOWED and Path(f).name != "__init__.py"})
    assert not hidden, f"imports inside functions (move them to the module top): {hidden}"


def test_a_cycle_through_a_function_import_is_found(tmp_path: Path) -> None:
    pkg = tmp_path / "toy"
    for sub in ("low", "high"):
        (pkg / sub).mkdir(parents=True)
        (pkg / sub / "__init__.py").write_text("")
    (pkg / "__init__.py").write_text("")
    (pkg / "high" / "run.py").write_text("from toy.low.data import load\n")
    (pkg / "low" / "data.py").write_text(
        "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from toy.high import run\n\n"
        "def load():\n    from ..high.run import x\n    return x\n"
    )
    edges, lazy = package_graph(pkg)
    assert edges == {"high": {"low"}, "low": {"high"}}
    assert find_cycle(edges) == ["high", "low", "high"]
    assert lazy == [("low/data.py", "toy.high.run")]
    (pkg / "low" / "data.py").write_text("def load():\n    return 1\n")
    assert find_cycle(package_graph(pkg)[0]) is None


def test_every_package_folder_has_an_init() -> None:
    """``setuptools.packages.find`` ships only folders with an ``__init__.py``."""
    folders = {p.parent for p in SRC.rglob("*.py")}
    assert not sorted(
        f.relative_to(SRC).as_posix() for f in folders if not (f / "__init__.py").is_file()
    )
