"""Starting a search from what is already known: the finished and pruned trials of earlier sweeps of
the same family (`--warm-start`; the user's own configurations, `--enqueue`, are sweep/enqueue.py).

Earlier trials are read from their sweep's Optuna study, else (a sweep from before studies were
persistent, or whose study is gone) from its MLflow runs, and the warm-start line says so. A trial
whose parameters fall outside the current space (a value out of range, a choice that is gone, a
parameter pinned to another value with --fix) is skipped: TPE must only learn from points it could
itself propose.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from sweep.spec import SweepSpec, UsageError, saved_spec
from sweep.study import WARM_START_ATTR
from sweep.study_source import REBUILT_NOTE

if TYPE_CHECKING:
    import optuna

TAG_WARM_START = "scenesweep.warm_start"  # on the parent run: how many trials were seeded, how many skipped


@dataclass(frozen=True)
class Seed:
    params: dict
    value: float | None  # None for a pruned trial without a value
    pruned: bool
    intermediate: dict[int, float]
    source: str  # the sweep it came from
    distributions: dict  # as its own study asked for them ({} when read from MLflow)
    rebuilt: bool = False  # read from MLflow: its sweep has no Optuna study


def check_warm_start(names: list[str], *, storage: str, family: str) -> None:
    """Each earlier sweep exists in `storage` and searched the same family (before anything starts)."""
    for name in names:
        earlier = _earlier_spec(name, storage)
        if earlier.family != family:
            raise UsageError(
                f"--warm-start {name}: that sweep searched {earlier.family}, not {family}; "
                "warm-start from sweeps of the same --space"
            )


def seed_study(spec: SweepSpec, study: optuna.Study) -> str | None:
    """Add the earlier sweeps' trials to a new, empty study; returns the one line that says what was
    seeded and skipped (None without --warm-start, or when the study already has trials: a resume)."""
    if not spec.warm_start or study.trials:
        return None
    import optuna

    seeds = [seed for name in spec.warm_start for seed in earlier_trials(_earlier_spec(name, spec.storage), spec)]
    distributions = _current_distributions(spec)
    added = skipped = 0
    for seed in seeds:
        params = {k: v for k, v in seed.params.items() if k not in spec.fixed}
        if not _inside(seed.params, distributions, spec.fixed):
            skipped += 1
            continue
        trial = optuna.trial.create_trial(
            state=optuna.trial.TrialState.PRUNED if seed.pruned else optuna.trial.TrialState.COMPLETE,
            value=seed.value,
            params=params,
            distributions={k: seed.distributions.get(k, distributions[k]) for k in params},
            intermediate_values=seed.intermediate,
            user_attrs={WARM_START_ATTR: seed.source},
        )
        study.add_trial(trial)
        added += 1
    rebuilt = sorted({seed.source for seed in seeds if seed.rebuilt})
    return (
        f"warm start: {added} trials from {', '.join(spec.warm_start)}"
        f" ({skipped} skipped: parameters outside the current space)"
        + (f"; those of {', '.join(rebuilt)} {REBUILT_NOTE}" if rebuilt else "")
    )


def earlier_trials(earlier: SweepSpec, spec: SweepSpec) -> list[Seed]:
    """The finished and pruned trials of an earlier sweep, with its pinned parameters filled in."""
    from optuna.trial import TrialState

    from sweep.study_source import existing_study

    study = existing_study(earlier)
    if study is None:
        return _trials_from_mlflow(earlier, spec)
    seeds = []
    for trial in study.get_trials(deepcopy=False, states=(TrialState.COMPLETE, TrialState.PRUNED)):
        if trial.value is not None and trial.value in (float("inf"), float("-inf")):
            continue  # a failed configuration's worst value: it says nothing about the space's scale
        seeds.append(
            Seed(
                params={**trial.params, **earlier.fixed},
                value=trial.value,
                pruned=trial.state == TrialState.PRUNED,
                intermediate=dict(trial.intermediate_values),
                source=earlier.name,
                distributions=dict(trial.distributions),
            )
        )
    return seeds


def _trials_from_mlflow(earlier: SweepSpec, spec: SweepSpec) -> list[Seed]:
    """The fallback for a sweep without an Optuna study: its trials from their MLflow runs."""
    from mlflow.tracking import MlflowClient

    from search_spaces import parameter_distributions
    from tracking.runs import find_sweep_run, target_from_run
    from tracking.summary import summarise

    family = earlier.family_entry
    client = MlflowClient(spec.tracking_uri)
    run = find_sweep_run(client, earlier.name)
    if run is None:
        raise UsageError(
            f"--warm-start {earlier.name}: it has neither an Optuna study nor runs in {spec.tracking_uri}; "
            "pass the --tracking-uri it was run with"
        )
    known = parameter_distributions(family.space)
    summary = summarise(client, target_from_run(run), metric=family.metric, mode=family.mode)
    seeds = []
    for row in summary.rows:
        if not (row.status == "FINISHED" or row.pruned) or family.metric not in row.metrics:
            continue
        seeds.append(
            Seed(
                params={k: v for k, v in row.config.items() if k in known},
                value=row.metrics[family.metric],
                pruned=row.pruned,
                intermediate={},
                source=earlier.name,
                distributions={},
                rebuilt=True,
            )
        )
    return seeds


def _current_distributions(spec: SweepSpec) -> dict:
    from search_spaces import parameter_distributions

    return parameter_distributions(spec.family_entry.space)


def _inside(params: dict[str, Any], distributions: dict, fixed: dict) -> bool:
    from search_spaces import contains

    for name, value in params.items():
        if name in fixed:
            if value != fixed[name]:
                return False
            continue
        if name not in distributions or not contains(distributions[name], value):
            return False
    return True


def _earlier_spec(name: str, storage: str) -> SweepSpec:
    saved = saved_spec(storage, name)
    if saved is None:
        raise UsageError(f"--warm-start {name}: no sweep of that name in {storage}; pass the --storage it was run in")
    return SweepSpec.from_dict(saved)
