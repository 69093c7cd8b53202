"""The app modules import one another without a cycle.

Every import counts, the module-level ones and the ones deferred into a function
body: an import moved into a function to dodge a cycle leaves the cycle in the
design, and only hides it from Python's loader until the first call.

Left out: migrations; `functions/compat`, the plugin-facing package that plugin
code imports (it reaches back into the apps by design, at call time); and the
example and template plugins, which are plugin code.
"""

import ast
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
APPS = ("functions", "chat", "valves", "fnplatform")
SKIPPED = (
    "functions/compat",
    "functions/examples",
    "functions/plugin_templates",
)


def _module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _app_modules() -> dict[str, Path]:
    modules = {}
    for app in APPS:
        for path in sorted((ROOT / app).rglob("*.py")):
            relative = path.relative_to(ROOT).as_posix()
            if "migrations" in path.parts or relative.startswith(SKIPPED):
                continue
            modules[_module_name(path)] = path
    return modules


def _imported_names(module: str, path: Path) -> Iterator[str]:
    """Yield every dotted name `module` imports, anywhere in its body."""
    is_package = path.name == "__init__.py"
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield alias.name
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                package = module.split(".")
                drop = node.level - 1 if is_package else node.level
                base = ".".join(package[: len(package) - drop] if drop else package)
                source = f"{base}.{node.module}" if node.module else base
            else:
                source = node.module
            yield source
            # `from package import submodule` imports the submodule.
            for alias in node.names:
                yield f"{source}.{alias.name}"


def _import_graph() -> dict[str, set[str]]:
    modules = _app_modules()
    graph: dict[str, set[str]] = {name: set() for name in modules}
    for name, path in modules.items():
        for imported in _imported_names(name, path):
            # Importing a.b.c runs a, a.b and a.b.c: each is an edge.
            parts = imported.split(".")
            for depth in range(1, len(parts) + 1):
                target = ".".join(parts[:depth])
                if target in modules and target != name:
                    graph[name].add(target)
    return graph


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components of more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    components: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for successor in sorted(graph[node]):
            if successor not in index:
                visit(successor)
                low[node] = min(low[node], low[successor])
            elif successor in on_stack:
                low[node] = min(low[node], index[successor])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                components.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return components


def _describe(component: list[str], graph: dict[str, set[str]]) -> str:
    members = set(component)
    edges = [
        f"    {source} -> {target}"
        for source in component
        for target in sorted(graph[source] & members)
    ]
    return "cycle among " + ", ".join(component) + ":\n" + "\n".join(edges)


def test_the_walk_sees_the_app_modules():
    graph = _import_graph()

    assert "functions.services.runtime" in graph
    assert "chat.services.completion" in graph
    assert "valves.services" in graph
    assert "fnplatform.settings" in graph
    assert not any(name.startswith("functions.compat") for name in graph)
    assert not any(".migrations" in name for name in graph)
    # Deferred imports count: the walk reads function bodies too.
    assert graph["functions.services.runtime"]


def test_the_app_modules_import_one_another_without_a_cycle():
    graph = _import_graph()

    cycles = _cycles(graph)

    assert not cycles, "\n\n".join(_describe(c, graph) for c in cycles)


def test_a_deferred_import_back_is_reported_as_a_cycle():
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}

    assert _cycles(graph) == [["a", "b", "c"]]
