"""The samplers `--search` names: one table, from which come the CLI's choices and help, the checks
in `sweep.spec.validate` and the sampler `build_tuner` gives the study.

Adding a sampler is one `Sampler(...)` line in SAMPLERS (plus its row in tests/sweep/test_samplers.py):
a name, a one-line help, a factory `build(seed=, samples=, concurrent=)`, and what it supports.
`auto` is not a sampler but a rule over the table (`pick_sampler`): it picks one by the space and
the budget, and the sweep says which on its terminal and its parent run.

Importing this module imports neither Optuna nor Ray: the CLI builds its flags from it.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from optuna.samplers import BaseSampler

AUTO = "auto"
DEFAULT_SEARCH = "tpe"  # measured against gp with benchmarks/search_quality.py (README, Performance)
# `auto` picks GP up to this many trials; past it the GP's cubic fit costs more than TPE's
# (OptunaHub's AutoSampler switches near here too) and TPE has data enough of its own.
GP_MOST_TRIALS = 100


@dataclass(frozen=True)
class Sampler:
    name: str
    help: str
    build: Callable[..., BaseSampler]  # keyword-only: seed, samples (0: no limit), concurrent
    multi_objective: bool = True  # searches an --objective Pareto front
    categorical: bool = True  # models categorical parameters (else: refused on a space with one)
    conditional: bool = True  # copes with parameters that only some trials ask for (define-by-run `if`s)
    parallel: bool = True  # spreads the suggestions for trials in flight at once (else: --max-concurrent 1)


def startup_trials(samples: int) -> int:
    """Random trials before a model-based sampler models: a third of a small budget, 3 to 10."""
    return max(3, min(10, samples // 3)) if samples else 10


def _tpe(*, seed: int, samples: int, concurrent: bool):
    import optuna

    # With trials in flight at once, TPE's constant liar counts the running ones as bad results, so
    # concurrent suggestions spread out instead of piling onto one region (Optuna's advice for
    # parallel TPE). multivariate + group: conditional parameters are modelled in their own groups.
    return optuna.samplers.TPESampler(
        seed=seed, multivariate=True, group=True, n_startup_trials=startup_trials(samples), constant_liar=concurrent
    )


def _gp(*, seed: int, samples: int, concurrent: bool):
    import optuna

    # Trials in flight are handled by the GP itself (q-batch expected improvement over the running
    # ones). Parameters only some trials ask for fall back to random sampling: said once in the
    # table's help, not once per parameter per trial on the terminal.
    return optuna.samplers.GPSampler(
        seed=seed, n_startup_trials=startup_trials(samples), warn_independent_sampling=False
    )


def _cmaes(*, seed: int, samples: int, concurrent: bool):
    import optuna

    # Pruned trials (ASHA, median, the chance stop) carry their last value: without them CMA-ES would
    # see only the few trials that ran their course.
    return optuna.samplers.CmaEsSampler(seed=seed, consider_pruned_trials=True, warn_independent_sampling=False)


def _random(*, seed: int, samples: int, concurrent: bool):
    import optuna

    return optuna.samplers.RandomSampler(seed=seed)


def _qmc(*, seed: int, samples: int, concurrent: bool):
    import optuna

    # Scrambled Sobol points cover the space more evenly than random ones; conditional parameters
    # (not in every trial) are drawn at random.
    return optuna.samplers.QMCSampler(seed=seed, scramble=True, warn_independent_sampling=False)


def _nsga2(*, seed: int, samples: int, concurrent: bool):
    from sweep.nsga2 import RebuiltNSGAII

    # A population of about a third of the trials gives a small budget three generations to evolve;
    # Optuna's default of 50 would leave a 20-trial sweep at random search.
    population = max(4, min(50, samples // 3)) if samples else 50
    return RebuiltNSGAII(seed=seed, population_size=population)


SAMPLERS: dict[str, Sampler] = {
    s.name: s
    for s in (
        Sampler("tpe", "TPE, multivariate and grouped; constant liar with trials in flight", _tpe),
        Sampler("gp", "Gaussian-process Bayesian optimisation; conditional parameters at random", _gp),
        Sampler(
            "cmaes",
            "CMA-ES: numeric, unconditional spaces (--fix the categorical ones)",
            _cmaes,
            multi_objective=False,
            categorical=False,
            conditional=False,
        ),
        Sampler("random", "uniform random search", _random),
        Sampler("qmc", "quasi-random (scrambled Sobol) points that cover the space evenly", _qmc),
        Sampler("nsga2", "NSGA-II, the genetic Pareto search, for --objective", _nsga2),
    )
}


def search_choices() -> list[str]:
    return [*SAMPLERS, AUTO]


def search_help(default: str) -> str:
    """--search's help: every sampler of the table with its line, and what auto does."""
    lines = "; ".join(f"{s.name}: {s.help}" for s in SAMPLERS.values())
    return (
        f"Optuna sampler (default {default}): {lines}; {AUTO}: GP for up to {GP_MOST_TRIALS} trials "
        "on an unconditional space, else TPE (said on the terminal and the parent run's scenesweep.search tag)"
    )


def get_sampler(name: str) -> Sampler:
    try:
        return SAMPLERS[name]
    except KeyError:
        raise ValueError(f"unknown sampler {name!r}; choose one of {', '.join(search_choices())}") from None


def make_sampler(search: str, *, seed: int, samples: int, concurrent: bool = False) -> BaseSampler:
    """The Optuna sampler named `search` (a table name; `auto` is resolved by pick_sampler first)."""
    import warnings

    import optuna

    warnings.filterwarnings("ignore", category=optuna.exceptions.ExperimentalWarning)
    return get_sampler(search).build(seed=seed, samples=samples, concurrent=concurrent)


@dataclass(frozen=True)
class SpaceShape:
    """What a sampler needs to know about a (pinned) space."""

    categorical: tuple[str, ...]  # searched categorical parameters (more than one choice)
    conditional: tuple[str, ...]  # parameters not every trial asks for, or with a range that moves


def space_shape(space: str, pins: dict) -> SpaceShape:
    """The shape of family space `space` with `pins` fixed, found by asking it through Optuna."""
    return _space_shape(space, tuple(sorted(pins.items())))


@functools.cache  # 200 asks of a space take ~0.5 s; validation and build_tuner both ask
def _space_shape(space: str, pins: tuple, *, samples: int = 200) -> SpaceShape:
    import optuna

    from search_spaces import PinnedSpace

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0))
    suggest = PinnedSpace(space, dict(pins))
    seen: dict[str, set] = {}
    asked: list[set[str]] = []
    for _ in range(samples):
        trial = study.ask()
        suggest(trial)
        asked.append(set(trial.distributions))
        for name, distribution in trial.distributions.items():
            seen.setdefault(name, set()).add(distribution)
        study.tell(trial, 0.0)
    always = set.intersection(*asked) if asked else set()
    categorical = sorted(
        name
        for name, kinds in seen.items()
        if any(isinstance(d, optuna.distributions.CategoricalDistribution) and len(d.choices) > 1 for d in kinds)
    )
    conditional = sorted(name for name, kinds in seen.items() if name not in always or len(kinds) > 1)
    return SpaceShape(categorical=tuple(categorical), conditional=tuple(conditional))


def pick_sampler(*, shape: SpaceShape, samples: int, multi_objective: bool) -> tuple[str, str]:
    """What `--search auto` runs, and why (one clause).

    GP models few trials best on a space it can model whole: every parameter in every trial (it
    samples the others at random). A conditional space (TinyNet's lr only without the LR finder, say),
    a large or open-ended budget, or a Pareto search goes to TPE, which models conditional parameters
    in groups and, unlike NSGA-II, needs no generations of trials to learn from."""
    if multi_objective:
        return "tpe", "a Pareto search: TPE needs no generations of trials, unlike NSGA-II"
    if shape.conditional:
        return (
            "tpe",
            f"a conditional space ({', '.join(shape.conditional[:3])}{', ...' * (len(shape.conditional) > 3)})",
        )
    if not samples or samples > GP_MOST_TRIALS:
        return "tpe", f"more than {GP_MOST_TRIALS} trials (or no --samples limit)"
    return "gp", f"{samples} trials on an unconditional space"


def unsupported(name: str, *, shape: SpaceShape | None, multi_objective: bool, concurrent: bool) -> str | None:
    """Why sampler `name` cannot search this sweep (one line, with the way out), or None.
    `shape` is None when the caller has not explored the space (the sampler takes any)."""
    sampler = get_sampler(name)
    if multi_objective and not sampler.multi_objective:
        able = ", ".join(s.name for s in SAMPLERS.values() if s.multi_objective)
        return f"--search {name} optimises one objective; for --objective use one of {able}"
    if concurrent and not sampler.parallel:
        return f"--search {name} suggests one trial at a time; add --max-concurrent 1"
    if shape is not None and not sampler.categorical and shape.categorical:
        return (
            f"--search {name} cannot search categorical parameters ({', '.join(shape.categorical)}); "
            f"pin them with --fix KEY=VALUE or use --search tpe"
        )
    if shape is not None and not sampler.conditional and shape.conditional:
        return (
            f"--search {name} cannot search conditional parameters ({', '.join(shape.conditional)}); "
            f"pin what they depend on with --fix or use --search tpe"
        )
    return None


def needs_shape(name: str) -> bool:
    """Whether checking sampler `name` against a sweep needs its space explored (~0.3 s)."""
    sampler = get_sampler(name)
    return not (sampler.categorical and sampler.conditional)
