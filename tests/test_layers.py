"""Imports run one way, following the data: core -> datasets -> extractors -> model -> evaluation.

A module may import from its own layer and the layers before it, never from one after it, so
training never reaches into evaluation and the core never depends on a model; and inside a
layer no two modules import each other, directly or through others (no import circle). The
test reads every module's imports (also those inside functions) and names the offending line.
"""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
# Dotted module prefixes in data-flow order; the longest matching prefix decides a module's layer.
LAYERS = (
    ("core", ("wmmt.io", "wmmt.timebase", "wmmt.vocab", "wmmt.config", "wmmt.metrics", "wmmt.classification")),
    ("datasets", ("wmmt.manifest", "wmmt.synthetic")),
    ("extractors", ("extractors",)),
    ("model", ("model",)),
    ("evaluation", ("evaluation",)),
)
PACKAGES = ("wmmt", "extractors", "model", "evaluation")


def layer_of(module: str) -> int | None:
    if module == "wmmt":  # the core package itself; its submodules each name their layer
        return 0
    best, rank = -1, None
    for i, (_, prefixes) in enumerate(LAYERS):
        for prefix in prefixes:
            if (module == prefix or module.startswith(prefix + ".")) and len(prefix) > best:
                best, rank = len(prefix), i
    return rank


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def imported(tree: ast.AST, module: str, is_package: bool):
    """(line, imported module) of every import, relative ones resolved against ``module``."""
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield node.lineno, alias.name
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = module.split(".") if is_package else module.split(".")[:-1]
                base = base[: len(base) - (node.level - 1)]
                name = ".".join(base + ([node.module] if node.module else []))
            else:
                name = node.module or ""
            yield node.lineno, name
            for alias in node.names:  # `from wmmt import metrics` imports the module wmmt.metrics
                yield node.lineno, f"{name}.{alias.name}"


def violations() -> list[str]:
    found = []
    for package in PACKAGES:
        for path in sorted((ROOT / package).rglob("*.py")):
            module = module_name(path)
            own = layer_of(module)
            assert own is not None, f"{path.relative_to(ROOT)}: module {module} belongs to no layer; add it to LAYERS"
            tree = ast.parse(path.read_text(), filename=str(path))
            for line, name in imported(tree, module, path.name == "__init__.py"):
                if name.split(".")[0] not in PACKAGES:
                    continue
                other = layer_of(name)
                if other is not None and other > own:
                    found.append(f"{path.relative_to(ROOT)}:{line}: {module} ({LAYERS[own][0]}) imports "
                                 f"{name} ({LAYERS[other][0]}), a later layer")
    return found


def test_every_project_module_has_a_layer_and_imports_only_earlier_layers():
    found = violations()
    assert not found, "imports against the data flow:\n" + "\n".join(found)


def test_the_checker_sees_a_backward_import(tmp_path):
    tree = ast.parse("def f():\n    from evaluation.metrics import ap\nfrom . import cache\n")
    names = list(imported(tree, "model.train", False))
    assert (2, "evaluation.metrics") in names and (3, "model.cache") in names
    assert layer_of("evaluation.metrics") > layer_of("model.train") > layer_of("wmmt.manifest.lavdf")
    assert layer_of("wmmt.vocab") == 0 and layer_of("wmmt.synthetic.voice") == 1


def import_graph() -> dict[str, dict[str, int]]:
    """{module: {imported project module: line}} of every project module; an imported name that is not a
    module (``from model.train import train``) counts as its module."""
    paths = {module_name(path): path for package in PACKAGES for path in sorted((ROOT / package).rglob("*.py"))}
    graph: dict[str, dict[str, int]] = {}
    for module, path in paths.items():
        edges = graph.setdefault(module, {})
        tree = ast.parse(path.read_text(), filename=str(path))
        for line, name in imported(tree, module, path.name == "__init__.py"):
            while name and name not in paths:
                name = name.rpartition(".")[0]
            if name and name != module:
                edges.setdefault(name, line)
    return graph


def circles(graph: dict[str, dict[str, int]]) -> list[list[str]]:
    """The import circles of ``graph``: each strongly connected group of two or more modules (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        for other in graph.get(node, {}):
            if other not in index:
                visit(other)
                low[node] = min(low[node], low[other])
            elif other in stack:
                low[node] = min(low[node], index[other])
        if low[node] == index[node]:
            group = []
            while True:
                member = stack.pop()
                group.append(member)
                if member == node:
                    break
            if len(group) > 1:
                found.append(sorted(group))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return found


# Circles known and not yet undone, each with what undoes it; the test fails on any other, and on
# one of these once it is gone (so the entry is removed with it).
KNOWN_CIRCLES: set[tuple[str, ...]] = set()  # none left; a circle that must stay would be named here, with why


def test_no_import_circle():
    graph = import_graph()
    groups = circles(graph)
    found = [" <-> ".join(group) + ": " + "; ".join(f"{a} imports {b} (line {graph[a][b]})" for a in group
                                                     for b in group if b in graph[a])
             for group in groups if tuple(group) not in KNOWN_CIRCLES]
    assert not found, "import circles:\n" + "\n".join(found)
    gone = KNOWN_CIRCLES - {tuple(group) for group in groups}
    assert not gone, f"no longer circles, remove them from KNOWN_CIRCLES: {sorted(gone)}"


def test_the_checker_sees_a_circle():
    graph = {"a": {"b": 1}, "b": {"c": 2}, "c": {"a": 3}, "d": {"a": 4}}
    assert circles(graph) == [["a", "b", "c"]]
    assert circles({"a": {"b": 1}, "b": {}}) == []


# Sizes a reader takes in at once: every file under 500 lines, every function under 80.
MAX_FILE_LINES, MAX_FUNCTION_LINES = 500, 80
CHECKED_FOLDERS = (*PACKAGES, "benchmarks", "tests")


def oversized() -> list[str]:
    found = []
    for folder in CHECKED_FOLDERS:
        for path in sorted((ROOT / folder).rglob("*.py")):
            source = path.read_text()
            where = path.relative_to(ROOT)
            if len(source.splitlines()) > MAX_FILE_LINES:
                found.append(f"{where}: {len(source.splitlines())} lines (at most {MAX_FILE_LINES})")
            for node in ast.walk(ast.parse(source, filename=str(path))):
                if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                    length = node.end_lineno - node.lineno + 1
                    if length > MAX_FUNCTION_LINES:
                        found.append(f"{where}:{node.lineno}: {node.name} is {length} lines "
                                     f"(at most {MAX_FUNCTION_LINES})")
    return found


def test_every_file_and_function_is_short_enough_to_read_at_once():
    found = oversized()
    assert not found, "too long:\n" + "\n".join(found)
