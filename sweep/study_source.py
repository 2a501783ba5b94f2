"""Where a sweep's trials are read from after the fact (the end-of-sweep plots, the dashboard, warm
start): the sweep's own persistent Optuna study (sweep/study.py), the one source of trial state.

Only a sweep without one (older than persistent studies, or whose study is gone) is rebuilt from its
MLflow runs, where every trial's run holds its config and metrics; whoever does that says so
(REBUILT_NOTE).
"""

from __future__ import annotations

import math
from collections import defaultdict, deque
from typing import TYPE_CHECKING

from sweep.study import LOST_ATTR, STUDY_FILE, WARM_START_ATTR, load_sweep_study
from tracking.study_plots import SIZE_ATTR, TRIAL_ID_ATTR

if TYPE_CHECKING:
    import optuna
    from mlflow.tracking import MlflowClient

    from sweep.spec import SweepSpec
    from tracking.summary import TrialRow

REBUILT_NOTE = "rebuilt from its MLflow runs: the sweep has no Optuna study (older than persistent studies, or gone)"


def existing_study(spec: SweepSpec) -> optuna.Study | None:
    """The sweep's persistent study, or None when it has none. Never creates one: opening a journal
    that is not there would leave an empty one behind."""
    if not spec.study_storage and not (spec.sweep_dir / STUDY_FILE).is_file():
        return None
    try:
        return load_sweep_study(spec)
    except KeyError:  # the storage holds no study of that name
        return None


def own_trials(study: optuna.Study) -> list[optuna.trial.FrozenTrial]:
    """The trials the sweep's own search ran: not the copies --warm-start seeded, not those lost with
    a killed driver, none still in flight."""
    return [
        trial
        for trial in study.get_trials(deepcopy=False)
        if trial.state.is_finished() and WARM_START_ATTR not in trial.user_attrs and LOST_ATTR not in trial.user_attrs
    ]


def with_runs(study: optuna.Study, rows: list[TrialRow]) -> list[tuple[optuna.trial.FrozenTrial, TrialRow | None]]:
    """The sweep's own trials, each with its run's row (None for a trial without one). A trial is
    matched to its run by configuration: the run's params are the trial's config, as strings; of
    runs with the same configuration, the earliest not yet matched."""
    runs = _RunsByConfig(rows)
    return [(trial, runs.take(trial.params)) for trial in own_trials(study)]


def drawn_study(study: optuna.Study, rows: list[TrialRow], *, mode: str) -> optuna.Study:
    """What the end-of-sweep plots draw (tracking.study_plots): the sweep's own trials in a
    single-objective in-memory study (the first objective, the family's metric, for a multi-objective
    sweep), each with its Tune trial id and trainable parameters from its run."""
    import optuna
    from optuna.trial import TrialState, create_trial

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    drawn = optuna.create_study(direction="maximize" if mode == "max" else "minimize")
    for trial, row in with_runs(study, rows):
        value = trial.values[0] if trial.state == TrialState.COMPLETE and trial.values else None
        if trial.state == TrialState.COMPLETE and (value is None or not math.isfinite(value)):
            continue  # a failed configuration's worst value would flatten every axis
        attrs = {}
        if row is not None:
            attrs[TRIAL_ID_ATTR] = row.trial_id
            if SIZE_ATTR in row.metrics:
                attrs[SIZE_ATTR] = row.metrics[SIZE_ATTR]
        drawn.add_trial(
            create_trial(
                params=trial.params,
                distributions=trial.distributions,
                value=value,
                intermediate_values=trial.intermediate_values,
                state=trial.state,
                user_attrs=attrs,
            )
        )
    return drawn


class _RunsByConfig:
    """Trial rows looked up by a study trial's params (names and values as MLflow keeps them), each
    row given out once."""

    def __init__(self, rows: list[TrialRow]):
        self.rows = rows
        self.index: dict[frozenset, dict[tuple, deque]] = {}  # per set of parameter names (conditional spaces)
        self.taken: set[str] = set()

    def take(self, params: dict) -> TrialRow | None:
        names = sorted(params)
        if frozenset(names) not in self.index:
            found: dict[tuple, deque] = defaultdict(deque)
            for row in self.rows:
                if all(name in row.params for name in names):
                    found[tuple(row.params[name] for name in names)].append(row)
            self.index[frozenset(names)] = found
        candidates = self.index[frozenset(names)].get(tuple(str(params[name]) for name in names), deque())
        while candidates:
            row = candidates.popleft()
            if row.run_id not in self.taken:
                self.taken.add(row.run_id)
                return row
        return None


# --- the fallback: a sweep without a persistent study ----------------------------------------


def study_from_rows(
    rows: list[TrialRow], *, metric: str, mode: str, distributions: dict, curves: dict | None = None
) -> optuna.Study:
    """An in-memory Optuna study of the sweep's trials rebuilt from their runs (REBUILT_NOTE): finished
    trials COMPLETE, pruned PRUNED, failed FAIL; each trial's id and size kept as user attributes, a
    parameter its distribution cannot hold left out. `curves`: trial id -> {epoch: metric value}, the
    trials' intermediate values (run_histories)."""
    import optuna
    from optuna.trial import TrialState, create_trial

    from search_spaces import contains
    from tracking.summary import typed

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(direction="maximize" if mode == "max" else "minimize")
    for row in rows:
        state = _state(row)
        if state is None:
            continue
        value = row.metrics.get(metric) if state == TrialState.COMPLETE else None
        if state == TrialState.COMPLETE and value is None:
            continue
        params, used = {}, {}
        for name, raw in row.params.items():
            distribution = distributions.get(name)
            if distribution is not None and contains(distribution, typed(raw)):
                params[name], used[name] = typed(raw), distribution
        attrs = {TRIAL_ID_ATTR: row.trial_id}
        if SIZE_ATTR in row.metrics:
            attrs[SIZE_ATTR] = row.metrics[SIZE_ATTR]
        study.add_trial(
            create_trial(
                params=params,
                distributions=used,
                value=value,
                intermediate_values=(curves or {}).get(row.trial_id, {}),
                state=state,
                user_attrs=attrs,
            )
        )
    return study


def run_histories(client: MlflowClient, rows: list[TrialRow], *, metric: str) -> dict:
    """Each trial's per-epoch history of `metric` from its run (empty for families that report once):
    one request per trial, so only for the fallback; a sweep's study holds these as intermediate values."""
    curves = {}
    for row in rows:
        if metric in row.metrics and row.epochs:
            curves[row.trial_id] = {m.step: m.value for m in client.get_metric_history(row.run_id, metric)}
    return curves


def _state(row: TrialRow):
    from optuna.trial import TrialState

    if row.status == "FINISHED":
        return TrialState.COMPLETE
    if row.pruned:
        return TrialState.PRUNED
    if row.status == "FAILED":
        return TrialState.FAIL
    return None  # running, or interrupted: not a result
