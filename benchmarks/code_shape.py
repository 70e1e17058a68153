"""The codebase's shape in numbers (issue 13's before/after): a benchmark of structure, not speed.

    .venv/bin/python benchmarks/code_shape.py [REPO_ROOT]

Prints, for the first-party packages: lines and modules per package, the longest functions,
the class with the most methods, first-party import cycles between modules, imports deferred
into function bodies, and the API's per-route `except …: raise _errors(exc)` copies
(`as_coded_error` since the API is a package).
"""

from __future__ import annotations

import ast
import sys
from collections import defaultdict
from pathlib import Path

PACKAGES = ("app", "ingest", "retrieval", "rerank", "ui")


def modules(root: Path) -> dict[str, Path]:
    found = {}
    for package in PACKAGES:
        for path in sorted((root / package).rglob("*.py")):
            if "migrations" in path.parts:
                continue
            name = ".".join(path.relative_to(root).with_suffix("").parts)
            found[name.removesuffix(".__init__")] = path
    return found


def first_party(name: str | None) -> bool:
    return bool(name) and name.split(".")[0] in PACKAGES  # type: ignore[union-attr]


def resolve(target: str, known: dict[str, Path]) -> str | None:
    """The module an import names (a `from pkg import module` may name a module)."""
    while target and target not in known:
        target = target.rpartition(".")[0]
    return target or None


def main(argv: list[str]) -> int:
    root = Path(argv[0]) if argv else Path(__file__).resolve().parents[1]
    known = modules(root)
    lines_per_package: dict[str, int] = defaultdict(int)
    modules_per_package: dict[str, int] = defaultdict(int)
    functions: list[tuple[int, str]] = []
    classes: list[tuple[int, str]] = []
    edges: dict[str, set[str]] = defaultdict(set)
    deferred = 0
    for name, path in known.items():
        source = path.read_text(encoding="utf-8")
        tree = ast.parse(source)
        package = name.split(".")[0]
        lines_per_package[package] += len(source.splitlines())
        modules_per_package[package] += 1
        top_level = {id(node) for node in tree.body}
        for node in ast.walk(tree):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                functions.append((node.end_lineno - node.lineno + 1, f"{name}:{node.name}"))  # type: ignore[operator]
            elif isinstance(node, ast.ClassDef):
                methods = sum(isinstance(item, (ast.FunctionDef, ast.AsyncFunctionDef)) for item in node.body)
                classes.append((methods, f"{name}.{node.name}"))
            elif isinstance(node, (ast.Import, ast.ImportFrom)):
                targets = []
                if isinstance(node, ast.ImportFrom) and node.level == 0 and first_party(node.module):
                    assert node.module is not None
                    targets = [f"{node.module}.{alias.name}" for alias in node.names]
                elif isinstance(node, ast.Import):
                    targets = [alias.name for alias in node.names if first_party(alias.name)]
                if not targets:
                    continue
                if id(node) not in top_level and not _under_type_checking(tree, node):
                    deferred += 1
                for target in targets:
                    module = resolve(target, known)
                    if module and module != name:
                        edges[name].add(module)
    cycles = _cycles(edges)
    # The API is app/api.py, or the app/api/ package (one module per resource) since the split;
    # its translation of a refusal was `_errors`, then `as_coded_error`: count both, any revision.
    api_files = [root / "app" / "api.py"] + sorted((root / "app" / "api").glob("*.py"))
    per_route = sum(
        source.count("raise _errors(exc)") + source.count("raise as_coded_error(exc)")
        for source in (path.read_text() for path in api_files if path.exists())
    )

    print(f"repository: {root}\n")
    print("| package | modules | lines |")
    print("| --- | --- | --- |")
    for package in PACKAGES:
        print(f"| {package} | {modules_per_package[package]} | {lines_per_package[package]} |")
    print("\n| longest functions | lines |")
    print("| --- | --- |")
    for length, name in sorted(functions, reverse=True)[:6]:
        print(f"| {name} | {length} |")
    print("\n| classes with the most methods | methods |")
    print("| --- | --- |")
    for count, name in sorted(classes, reverse=True)[:3]:
        print(f"| {name} | {count} |")
    print(f"\nfirst-party import cycles (strongly connected modules): {len(cycles)}")
    for cycle in cycles:
        print(f"- {' <-> '.join(sorted(cycle))}")
    print(f"first-party imports inside function bodies: {deferred}")
    print(f"API routes' `raise _errors(exc)` (as_coded_error) copies: {per_route}")
    return 0


def _under_type_checking(tree: ast.Module, target: ast.AST) -> bool:
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            if any(child is target for child in ast.walk(node)):
                return True
    return False


def _cycles(edges: dict[str, set[str]]) -> list[set[str]]:
    """Tarjan's strongly connected components of more than one module."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[set[str]] = []
    counter = [0]

    def visit(node: str) -> None:
        index[node] = low[node] = counter[0]
        counter[0] += 1
        stack.append(node)
        on_stack.add(node)
        for neighbour in edges.get(node, ()):
            if neighbour not in index:
                visit(neighbour)
                low[node] = min(low[node], low[neighbour])
            elif neighbour in on_stack:
                low[node] = min(low[node], index[neighbour])
        if low[node] == index[node]:
            component = set()
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.add(member)
                if member == node:
                    break
            if len(component) > 1:
                found.append(component)

    sys.setrecursionlimit(10_000)
    for node in list(edges):
        if node not in index:
            visit(node)
    return found


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
