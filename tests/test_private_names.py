"""Private names of Ray, Optuna and MLflow: only those docs/architecture.md lists, and each of those
still there, as we use it, in the installed library.

The scan (`ast`) finds, in the project's own code:
- imports of a private module or name of ray, optuna or mlflow (`from ray._raylet import ...`,
  `from mlflow.tracking._tracking_service import utils`, `from optuna.x import _y`);
- `obj._name` on anything but `self`/`cls`/`super()` (whose owner the scan cannot tell: an object of one
  of these libraries unless allow-listed below as someone else's, with the reason);
- `getattr`/`setattr`/`hasattr`/`delattr(obj, "_name")`;
- `self._name` in a class of ours that subclasses a class of these libraries, where `_name` is one of
  that class's own private names (a subclass reaching into its base).
"""

from __future__ import annotations

import ast
import importlib
import inspect
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SCANNED = ("orchestrator.py", "sweep", "tracking", "serving", "trainables", "search_spaces", "benchmarks")
LIBRARIES = ("ray", "optuna", "mlflow")
OUR_PACKAGES = ("orchestrator", "sweep", "tracking", "serving", "trainables", "search_spaces", "benchmarks", "tests")
DOC = ROOT / "docs" / "architecture.md"

# Private attributes the scan finds on objects that are not Ray's, Optuna's or MLflow's: (file, name) ->
# whose they are and why we read them.
NOT_RAY_OPTUNA_MLFLOW = {
    ("trainables/bovw/classifiers.py", "_dual_coef_"): "scikit-learn's fitted SVC: its dual coefficients, the "
    "one-vs-one weights of a linear kernel (sklearn's own coef_ computes them the same way)",
    ("trainables/bovw/classifiers.py", "_n_support"): "scikit-learn's fitted SVC: support vectors per class, "
    "for the same one-vs-one weights",
    ("trainables/bovw/classifiers.py", "_intercept_"): "scikit-learn's fitted SVC: its intercepts in libsvm's "
    "sign convention, which the weights above use",
}


def _private(name: str) -> bool:
    return name.startswith("_") and not name.startswith("__")


def _library(module: str | None) -> bool:
    return bool(module) and str(module).split(".")[0] in LIBRARIES


def scanned_files() -> list[Path]:
    files: list[Path] = []
    for entry in SCANNED:
        path = ROOT / entry
        files.extend([path] if path.is_file() else sorted(path.rglob("*.py")))
    return files


def _imported_names(tree: ast.AST) -> dict[str, str]:
    """Local name -> the module or `module.attr` it was imported as, for every import in the file."""
    names: dict[str, str] = {}
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                names[alias.asname or alias.name.split(".")[0]] = (
                    alias.name if alias.asname else alias.name.split(".")[0]
                )
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            for alias in node.names:
                names[alias.asname or alias.name] = f"{node.module}.{alias.name}"
    return names


def _resolve(dotted: str):
    """The object `dotted` names (a module, or an attribute of one)."""
    parts = dotted.split(".")
    for split in range(len(parts), 0, -1):
        try:
            target = importlib.import_module(".".join(parts[:split]))
        except ImportError:
            continue
        for part in parts[split:]:
            target = getattr(target, part)
        return target
    raise ImportError(dotted)


def _library_private_names(base) -> set[str]:
    """Private attribute and method names in the sources of `base` and its library ancestors."""
    names: set[str] = set()
    for cls in inspect.getmro(base):
        if not _library(cls.__module__):
            continue
        try:
            source = inspect.getsource(cls)
        except (OSError, TypeError):  # compiled: its private names are out of a subclass's reach anyway
            continue
        for node in ast.walk(ast.parse(inspect.cleandoc(source) if source[:1].isspace() else source)):
            if isinstance(node, ast.Attribute) and _private(node.attr):
                names.add(node.attr)
            elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and _private(node.name):
                names.add(node.name)
    return names


def _is_self(node: ast.expr) -> bool:
    if isinstance(node, ast.Name):
        return node.id in ("self", "cls")
    return isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == "super"


def private_uses(path: Path) -> list[tuple[int, str, str]]:
    """(line, private name, what was found) for each private use in `path` the scan flags."""
    tree = ast.parse(path.read_text())
    imported = _imported_names(tree)
    found: list[tuple[int, str, str]] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                if _library(alias.name) and (private := [p for p in alias.name.split(".") if _private(p)]):
                    found.append((node.lineno, private[-1], f"import {alias.name}"))
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and _library(node.module):
            module_private = [p for p in str(node.module).split(".") if _private(p)]
            for alias in node.names:
                if _private(alias.name) or module_private:
                    name = alias.name if _private(alias.name) else module_private[-1]
                    found.append((node.lineno, name, f"from {node.module} import {alias.name}"))
        elif isinstance(node, ast.Attribute) and _private(node.attr) and not _is_self(node.value):
            owner = node.value
            while isinstance(owner, ast.Attribute):  # a.b.c._x: whose is `a`
                owner = owner.value
            if isinstance(owner, ast.Name) and imported.get(owner.id, "").split(".")[0] in OUR_PACKAGES:
                continue  # a private name of our own module
            found.append((node.lineno, node.attr, ast.unparse(node)))
        elif (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Name)
            and node.func.id in ("getattr", "setattr", "hasattr", "delattr")
            and len(node.args) >= 2
            and isinstance(node.args[1], ast.Constant)
            and isinstance(node.args[1].value, str)
            and _private(node.args[1].value)
        ):
            found.append((node.lineno, node.args[1].value, ast.unparse(node)))
        elif isinstance(node, ast.ClassDef):
            found.extend(_subclass_reaches(node, imported))
    return found


def _subclass_reaches(node: ast.ClassDef, imported: dict[str, str]) -> list[tuple[int, str, str]]:
    bases = [imported[b.id] for b in node.bases if isinstance(b, ast.Name) and _library(imported.get(b.id))]
    if not bases:
        return []
    theirs = set().union(*(_library_private_names(_resolve(base)) for base in bases))
    return [
        (inner.lineno, inner.attr, f"{node.name}: {ast.unparse(inner)} (private to {', '.join(bases)})")
        for inner in ast.walk(node)
        if isinstance(inner, ast.Attribute) and _is_self(inner.value) and inner.attr in theirs
    ]


def documented_names() -> dict[str, set[str]]:
    """docs/architecture.md's table of private names: the full dotted name -> the files that use it."""
    text = DOC.read_text()
    section = text.split("## Private names we use", 1)[1].split("\n## ", 1)[0]
    listed: dict[str, set[str]] = {}
    for line in section.splitlines():
        cells = [cell.strip() for cell in line.strip().strip("|").split("|")]
        if not line.startswith("|") or len(cells) < 4 or not cells[0].startswith("`"):
            continue
        listed[cells[0].strip("`")] = set(re.findall(r"`([^`]+\.py)`", cells[1]))
    return listed


def scan_findings() -> dict[tuple[str, str], list[str]]:
    """(file, private name) -> where and what, for the whole scanned code."""
    findings: dict[tuple[str, str], list[str]] = {}
    for path in scanned_files():
        where = path.relative_to(ROOT).as_posix()
        for line, name, what in private_uses(path):
            findings.setdefault((where, name), []).append(f"{where}:{line}: {what}")
    return findings


def test_the_scan_finds_what_it_is_for(tmp_path):
    """Each kind of private use the scan exists for, and none of the lookalikes it must let pass."""
    flagged = tmp_path / "flagged.py"
    flagged.write_text(
        "from ray._raylet import Config\n"
        "import mlflow.tracking._tracking_service.utils\n"
        "from optuna.samplers import _tpe\n"
        "from ray.tune.search.optuna import OptunaSearch\n"
        "def f(tuner, module):\n"
        "    tuner._local_tuner\n"
        "    setattr(module, '_MODULES_TO_PACKAGES', {})\n"
        "class Search(OptunaSearch):\n"
        "    def g(self):\n"
        "        return self._ot_study\n"
    )
    assert {name for _, name, _ in private_uses(flagged)} == {
        "_raylet",
        "_tracking_service",
        "_tpe",
        "_local_tuner",
        "_MODULES_TO_PACKAGES",
        "_ot_study",
    }
    passed = tmp_path / "passed.py"
    passed.write_text(
        "from sklearn.svm._base import _one_vs_one_coef\n"
        "import tracking.uris\n"
        "from ray.tune import Callback\n"
        "class Watch(Callback):\n"
        "    def __init__(self):\n"
        "        self._running = []\n"
        "    def f(self):\n"
        "        return self._running, super()._x, tracking.uris._USERINFO, self.__dict__\n"
    )
    assert private_uses(passed) == []


def test_no_private_name_of_ray_optuna_or_mlflow_outside_the_documented_list():
    documented = {(where, dotted.rsplit(".", 1)[1]) for dotted, files in documented_names().items() for where in files}
    unlisted = {
        key: sites
        for key, sites in scan_findings().items()
        if key not in documented and key not in NOT_RAY_OPTUNA_MLFLOW
    }
    assert not unlisted, (
        "private names of ray/optuna/mlflow that docs/architecture.md does not list (use a public interface, "
        "or add a row there saying why none works):\n" + "\n".join(s for sites in unlisted.values() for s in sites)
    )


def test_the_documented_list_and_the_allow_lists_are_current():
    """A row, or an allow-list entry, whose name the scan no longer finds is stale: delete it."""
    findings = scan_findings()
    listed = documented_names()
    assert listed, "docs/architecture.md lists no private names: did its table's format change?"
    stale = [f"{where}: {dotted}" for dotted, files in listed.items() for where in files]
    stale = [entry for entry in stale if (entry.split(": ")[0], entry.rsplit(".", 1)[1]) not in findings]
    stale += [f"{where}: {name}" for where, name in NOT_RAY_OPTUNA_MLFLOW if (where, name) not in findings]
    assert not stale, "listed, but no longer used there:\n" + "\n".join(stale)


def _modules_to_packages():
    """MLflow builds this map once, lazily: None until then, a dict after; we put an empty dict there
    first (tracking.models.skip_installed_module_scan)."""
    from mlflow.utils import requirements_utils

    value = getattr(requirements_utils, "_MODULES_TO_PACKAGES")  # noqa: B009 - the private name under test
    assert value is None or isinstance(value, dict), type(value)
    assert re.search(r"if _MODULES_TO_PACKAGES is None:", inspect.getsource(requirements_utils)), (
        "MLflow no longer builds _MODULES_TO_PACKAGES lazily behind `is None`: a map put there first may "
        "no longer spare the scan"
    )


# How each documented name is used, checked against the installed library: full dotted name -> check.
SHAPE_CHECKS = {
    "mlflow.utils.requirements_utils._MODULES_TO_PACKAGES": _modules_to_packages,
}


@pytest.mark.parametrize("dotted", sorted(documented_names()))
def test_each_listed_name_still_exists_as_we_use_it(dotted):
    module, _, name = dotted.rpartition(".")
    assert hasattr(_resolve(module), name), f"{dotted} is gone from the installed library"
    assert dotted in SHAPE_CHECKS, f"{dotted} is listed in docs/architecture.md but has no check here"
    SHAPE_CHECKS[dotted]()
