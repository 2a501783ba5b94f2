"""The layering DESIGN.md promises, checked from the source with `ast`: no import cycles between
the project's modules, and every dependency points down the picture

    orchestrator -> sweep -> serving -> (tracking, trainables.core)
    sweep -> (search_spaces, trainables, tracking);  families -> trainables.core
    tracking: MLflow only (nothing of ours);  search_spaces: pure Optuna;  benchmarks -> no test module

Imports inside functions count (they run when called); imports under `if TYPE_CHECKING:` are
type-only and count for the layering rules but not for cycles.
"""

from __future__ import annotations

import ast
import importlib.util
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("search_spaces", "trainables", "tracking", "serving", "sweep")


def project_modules() -> dict[str, Path]:
    modules = {"orchestrator": ROOT / "orchestrator.py"}
    for package in PACKAGES:
        for path in (ROOT / package).rglob("*.py"):
            parts = path.relative_to(ROOT).with_suffix("").parts
            modules[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    return modules


MODULES = project_modules()


def _is_type_checking(node: ast.If) -> bool:
    test = node.test
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def imports_of(module: str) -> list[tuple[str, bool]]:
    """(imported module name, type-only?) for every import statement in `module`."""
    tree = ast.parse(MODULES[module].read_text())
    found: list[tuple[str, bool]] = []

    def visit(node: ast.AST, type_only: bool) -> None:
        if isinstance(node, ast.If) and _is_type_checking(node):
            for child in node.body:
                visit(child, True)
            for child in node.orelse:
                visit(child, type_only)
            return
        if isinstance(node, ast.Import):
            found.extend((alias.name, type_only) for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            for alias in node.names:  # `from a.b import c` names module a.b.c when c is one
                sub = f"{node.module}.{alias.name}"
                found.append((sub if sub in MODULES else node.module, type_only))
        for child in ast.iter_child_nodes(node):
            visit(child, type_only)

    visit(tree, False)
    return found


def project_edges(*, runtime_only: bool) -> dict[str, set[str]]:
    edges: dict[str, set[str]] = {module: set() for module in MODULES}
    for module in MODULES:
        for name, type_only in imports_of(module):
            if name in MODULES and name != module and not (runtime_only and type_only):
                edges[module].add(name)
    return edges


def cycles(edges: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def connect(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for target in sorted(edges[node]):
            if target not in index:
                connect(target)
                low[node] = min(low[node], low[target])
            elif target in on_stack:
                low[node] = min(low[node], index[target])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in sorted(edges):
        if node not in index:
            connect(node)
    return found


def test_the_checker_finds_a_cycle():
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert cycles({"a": {"b"}, "b": set()}) == []


def test_the_checker_sees_every_kind_of_import():
    edges = project_edges(runtime_only=False)
    assert "sweep.trial" in edges["sweep.tuner"]  # an import inside a function
    assert "trainables.families" in edges["sweep.trial"]  # a module-level from-import
    assert "tracking.runs" in edges["sweep.trial"]


def test_no_import_cycles_between_modules():
    assert cycles(project_edges(runtime_only=True)) == []


def _top(name: str) -> str:
    return name.split(".")[0]


FAMILY_PACKAGES = ("trainables.bovw", "trainables.mlp", "trainables.tinynet", "trainables.inception")
# (modules under this prefix, must not import anything under these prefixes)
RULES = [
    (
        "search_spaces",
        ("torch", "torchvision", "trainables", "tracking", "serving", "sweep", "orchestrator", "ray", "mlflow"),
    ),
    ("tracking", ("trainables", "serving", "sweep", "orchestrator", "search_spaces", "torch")),
    # serving loads, predicts, serves and explains: it trains nothing and writes no trial's model
    ("serving", ("sweep", "orchestrator", "trainables.training", "trainables.families", "ray")),
    # the model library: no trial runtime, no tracking, no serving
    ("trainables", ("sweep", "orchestrator", "serving", "tracking", "mlflow")),
    (
        "trainables.core",
        (
            "trainables.bovw",
            "trainables.mlp",
            "trainables.tinynet",
            "trainables.inception",
            "trainables.training",
            "trainables.families",
            "serving",
        ),
    ),
    ("sweep", ("orchestrator",)),
]


@pytest.mark.parametrize(("layer", "forbidden"), RULES, ids=[rule[0] for rule in RULES])
def test_dependencies_point_down(layer, forbidden):
    offending = [
        f"{module} imports {name}"
        for module in MODULES
        if module == layer or module.startswith(layer + ".")
        for name, _ in imports_of(module)
        if any(name == f or name.startswith(f + ".") for f in forbidden)
    ]
    assert offending == []


def test_no_family_module_imports_another_family():
    families = FAMILY_PACKAGES
    offending = []
    for module in MODULES:
        own = next((f for f in families if module == f or module.startswith(f + ".")), None)
        if own is None:
            continue
        for name, _ in imports_of(module):
            other = next((f for f in families if name == f or name.startswith(f + ".")), None)
            # The MLP family's second stages reuse BoVW's encoding and SVM steps: a declared reuse.
            if other and other != own and not (own == "trainables.mlp" and other == "trainables.bovw"):
                offending.append(f"{module} imports {name}")
    assert offending == []


def _imports_in_file(path: Path, *, top_level_only: bool = False) -> set[str]:
    tree = ast.parse(path.read_text())
    names: set[str] = set()
    for node in tree.body if top_level_only else ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
    return names


def test_benchmarks_import_no_test_module():
    offending = [
        f"{path.relative_to(ROOT)} imports {name}"
        for path in sorted((ROOT / "benchmarks").glob("*.py"))
        for name in _imports_in_file(path)
        if name == "tests" or name.startswith("tests.")
    ]
    assert offending == []


# A family's space and trainable modules, wherever they live: the built-in ones, and the one
# tests/test_adding_a_family.py registers at run time (README's "Adding a model family").
FAMILY_FORBIDDEN = ("sweep", "orchestrator", "tracking", "serving", "mlflow", "ray.tune")


def _family_module_files() -> dict[str, Path]:
    import tests.test_adding_a_family  # noqa: F401 - registers its family, as a user's package would
    from trainables.families import FAMILIES

    files: dict[str, Path] = {}
    for family in FAMILIES.values():
        for module in {family.space, family.trainable}:
            spec = importlib.util.find_spec(module)
            assert spec is not None and spec.origin, f"family {family.name}: module {module} not found"
            files[f"{family.name}:{module}"] = Path(spec.origin)
    return files


FAMILY_FILES = _family_module_files()


def test_the_runtime_registered_family_is_checked_too():
    assert any(name.startswith("pixel_logreg:") for name in FAMILY_FILES)


@pytest.mark.parametrize("name", sorted(FAMILY_FILES))
def test_family_modules_import_no_runtime_or_tracking(name):
    path = FAMILY_FILES[name]
    offending = sorted(
        f"{name} imports {imported}"
        # what importing it pulls into a Ray worker (the registered test file's tests import more)
        for imported in _imports_in_file(path, top_level_only=True)
        if any(imported == f or imported.startswith(f + ".") for f in FAMILY_FORBIDDEN)
    )
    assert offending == []
