"""The family registry: the one place that says what each model family is.

A family is a search-space module (`suggest(trial)`, `PAPER_BEST`), a trainable
module or package (`fit(config, dataset, session) -> SceneClassifier`) and one
`Family` entry here naming its metric, mode, whether it reports per epoch, and
the sweep-wide CLI options it takes with their checks. Nothing else in the
project names a family: the CLI, the sweep assembly and tracking read this.

Adding a family outside this file: `register(Family(...))` with the module paths
of its space and trainable (they must be importable where trials run, since a
trial imports its family's modules by path). Modules are imported on first use,
so listing families costs nothing and a worker imports only its own.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass
from types import ModuleType
from typing import TYPE_CHECKING, Any, Protocol

from trainables.core.options import COMPILE_MODES, PRECISIONS

if TYPE_CHECKING:
    from trainables.core.classifier import SceneClassifier
    from trainables.core.data import Dataset
    from trainables.core.session import TrialSession


class FitFunction(Protocol):
    """What a family's trainable module provides: train on `dataset` with `config`, report through
    `session` (per epoch where the family does), return the fitted classifier."""

    def __call__(self, config: dict, dataset: Dataset, session: TrialSession) -> SceneClassifier: ...


@dataclass(frozen=True)
class FamilyOption:
    """A sweep-wide flag a family takes (not searched): parsed by the CLI, checked before anything
    starts, carried in `SweepSpec.options[dest]` to every trial's `session.options`."""

    flag: str  # "--cv-folds"
    dest: str  # key in the options dict
    help: str
    type: Callable[[str], Any] = str
    default: Any = None  # used when the flag is absent (None: the option is left out)
    choices: tuple | None = None
    metavar: str | None = None
    const: Any = None  # with nargs="?": the value of the bare flag
    check: Callable[[Any], Any] | None = None  # value -> canonical value; ValueError(one line) when unusable

    def resolve(self, value: Any) -> Any:
        return self.check(value) if self.check is not None and value is not None else value


@dataclass(frozen=True)
class Family:
    name: str
    metric: str  # what the search optimises (validation or CV, never test)
    space: str  # module path: suggest(trial) -> constants, PAPER_BEST[, CPU_DEFAULTS, SEARCH_STARTS, ...]
    trainable: str  # module path: fit(config, dataset, session)
    mode: str = "max"  # "max" or "min"
    per_epoch: bool = True  # reports once per epoch (ASHA can prune it) or once per trial
    options: tuple[FamilyOption, ...] = ()

    @property
    def space_module(self) -> ModuleType:
        return importlib.import_module(self.space)

    @property
    def suggest(self) -> Callable:
        return self.space_module.suggest

    def default_config(self, *, gpu: bool = True) -> dict:
        """The paper's best configuration (`--samples 1` runs it, a search starts from it), with the
        space's CPU_DEFAULTS over it when the sweep's trials get no GPU."""
        space = self.space_module
        return {**space.PAPER_BEST, **({} if gpu else getattr(space, "CPU_DEFAULTS", {}))}

    def start_configs(self, *, gpu: bool = True) -> list[dict]:
        """Where a search starts: the paper's configuration, then the space's SEARCH_STARTS (other
        known-good configurations), with CPU_DEFAULTS over each where the trials get no GPU."""
        cpu = {} if gpu else getattr(self.space_module, "CPU_DEFAULTS", {})
        return [
            self.default_config(gpu=gpu),
            *({**start, **cpu} for start in getattr(self.space_module, "SEARCH_STARTS", [])),
        ]

    @property
    def fit(self) -> FitFunction:
        return importlib.import_module(self.trainable).fit


FAMILIES: dict[str, Family] = {}


def register(family: Family) -> Family:
    """Add (or replace) a family; returns it. Its option flags must not clash with another family's."""
    for option in family.options:
        for other in all_options():
            if other.flag == option.flag and other != option:
                raise ValueError(f"family {family.name}: option {option.flag} differs from the one already declared")
    FAMILIES[family.name] = family
    return family


def get_family(name: str) -> Family:
    try:
        return FAMILIES[name]
    except KeyError:
        raise ValueError(f"unknown family {name!r}; choose one of {', '.join(FAMILIES)}") from None


def all_options() -> list[FamilyOption]:
    """Every family's options, each flag once (families share some, e.g. --precision)."""
    seen: dict[str, FamilyOption] = {}
    for family in FAMILIES.values():
        for option in family.options:
            seen.setdefault(option.flag, option)
    return list(seen.values())


# --- option checks (lazy imports: the CLI lists flags without importing torch) -------------------


def _at_least_two_folds(folds: int) -> int:
    if folds < 2:
        raise ValueError(f"--cv-folds {folds} must be at least 2")
    return folds


def _usable_weights(choice: str) -> str:
    """Offline, a missing weights file must stop the sweep before anything starts."""
    from trainables.inception import WeightsError, canonical_weights, read_weights

    canonical = canonical_weights(choice)
    try:
        read_weights(canonical)
    except WeightsError as exc:
        raise ValueError(str(exc)) from None
    return canonical


TORCH_OPTIONS = (
    FamilyOption(
        "--precision",
        "precision",
        choices=PRECISIONS,
        default="auto",
        help="training arithmetic (default auto: bf16 on GPUs that have it, fp16 on older GPUs, fp32 on "
        "CPUs; bf16 on a CPU is faster but can give NaN gradients)",
    ),
    FamilyOption(
        "--compile",
        "compile",
        choices=COMPILE_MODES,
        const="default",
        metavar="MODE",
        help="torch.compile each trial's network (MODE: default, reduce-overhead, max-autotune); pays "
        "only for long trials, see docs/performance.md",
    ),
)
CV_FOLDS = FamilyOption(
    "--cv-folds",
    "cv_folds",
    type=int,
    metavar="K",
    check=_at_least_two_folds,
    help="cross-validation folds (default 8, as in the paper)",
)
WEIGHTS = FamilyOption(
    "--weights",
    "weights",
    default="imagenet",
    metavar="imagenet|none|PATH",
    check=_usable_weights,
    help="starting weights: imagenet (torchvision's IMAGENET1K_V1 from its cache, $TORCH_HOME; "
    "never downloaded), none (random init) or a state-dict file (default imagenet)",
)

register(
    Family(
        "tinynet",
        metric="val_accuracy",
        space="search_spaces.tinynet",
        trainable="trainables.tinynet",
        options=TORCH_OPTIONS,
    )
)
register(
    Family(
        "bovw",
        metric="cv_accuracy",
        space="search_spaces.bovw",
        trainable="trainables.bovw",
        per_epoch=False,
        options=(CV_FOLDS,),
    )
)
register(
    Family(
        "inception",
        metric="val_accuracy",
        space="search_spaces.inception",
        trainable="trainables.inception",
        options=(*TORCH_OPTIONS, WEIGHTS),
    )
)
register(
    Family("mlp", metric="val_accuracy", space="search_spaces.mlp", trainable="trainables.mlp", options=TORCH_OPTIONS)
)
