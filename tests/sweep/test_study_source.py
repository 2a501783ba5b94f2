"""The sweep's study as the one source of trial state: the end-of-sweep plots, the Pareto front and warm
start read it; a sweep without one is rebuilt from its MLflow runs and says so. On a real store: a sqlite
MLflow store and a journal study, as benchmarks/summary_scale.py builds what a finished sweep leaves."""

from __future__ import annotations

import contextlib
import io
import shutil
from dataclasses import replace

import optuna
import pytest
from mlflow.tracking import MlflowClient
from optuna.trial import TrialState, create_trial

from benchmarks.summary_scale import SWEEP, build_store
from sweep.pareto import pareto_front
from sweep.spec import load_spec
from sweep.study import LOST_ATTR, STUDY_FILE, WARM_START_ATTR
from sweep.study_source import REBUILT_NOTE, drawn_study, existing_study, with_runs
from tracking.runs import find_sweep_run, target_from_run
from tracking.study_plots import SIZE_ATTR, TRIAL_ID_ATTR
from tracking.summary import TrialRow, summarise

TRIALS = 10  # 1 in 5 pruned, so 8 finished and 2 pruned


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    root = tmp_path_factory.mktemp("finished-sweep")
    build_store(root, trials=TRIALS)
    return root


@pytest.fixture
def sweep(built, tmp_path):
    """A fresh copy of the finished sweep: its spec, MLflow client, target and trial rows."""
    root = tmp_path / "store"
    shutil.copytree(built, root)
    spec = load_spec(str(root / "sweeps"), SWEEP, address=None, uri=f"sqlite:///{root / 'mlruns.db'}")
    client = MlflowClient(spec.tracking_uri)
    target = target_from_run(find_sweep_run(client, SWEEP))
    rows = summarise(client, target, metric="val_accuracy", mode="max").rows
    return spec, client, target, rows


def test_a_sweep_without_a_study_has_none_and_none_is_created(sweep):
    spec = sweep[0]
    assert existing_study(spec) is not None
    (spec.sweep_dir / STUDY_FILE).unlink()
    assert existing_study(spec) is None
    assert not (spec.sweep_dir / STUDY_FILE).exists()  # opening a journal would have left an empty one


def test_each_of_the_sweeps_trials_is_matched_to_its_own_run(sweep):
    spec, _, _, rows = sweep
    pairs = with_runs(existing_study(spec), rows)
    assert len(pairs) == TRIALS and all(row is not None for _, row in pairs)
    assert len({row.run_id for _, row in pairs}) == TRIALS
    for trial, row in pairs:
        assert all(row.params[name] == str(value) for name, value in trial.params.items())
        assert row.shown_status == {"COMPLETE": "FINISHED", "PRUNED": "PRUNED", "FAIL": "FAILED"}[trial.state.name]


def test_runs_with_the_same_configuration_are_each_matched_once():
    study = optuna.create_study()
    for value in (0.1, 0.2):
        study.add_trial(create_trial(params={"x": 1}, distributions={"x": _INT}, value=value))
    rows = [_row(f"t{i}", x="1") for i in range(2)]
    assert [row.trial_id for _, row in with_runs(study, rows)] == ["t0", "t1"]
    assert with_runs(study, rows[:1])[1][1] is None  # a trial without a run of its own


def test_the_plots_draw_the_sweeps_own_trials_with_their_ids_sizes_and_curves(sweep):
    spec, _, _, rows = sweep
    study = existing_study(spec)
    copy = create_trial(params={}, distributions={}, value=0.99, user_attrs={WARM_START_ATTR: "earlier"})
    lost = create_trial(params={}, distributions={}, state=TrialState.FAIL, user_attrs={LOST_ATTR: True})
    study.add_trials([copy, lost])
    drawn = drawn_study(study, rows, mode="max")
    assert len(drawn.trials) == TRIALS  # not the warm-start copy, not the lost trial
    by_id = {row.trial_id: row for row in rows}
    for trial in drawn.get_trials(states=(TrialState.COMPLETE,)):
        row = by_id[trial.user_attrs[TRIAL_ID_ATTR]]
        assert trial.value == row.metrics["val_accuracy"] and trial.user_attrs[SIZE_ATTR] == row.metrics["params"]
        assert len(trial.intermediate_values) == row.epochs  # the curves come from the study, not MLflow
    assert drawn.best_trial.value == max(r.metrics["val_accuracy"] for r in rows if r.status == "FINISHED")


@pytest.mark.parametrize("with_study", [True, False], ids=["the sweep's study", "no study: rebuilt from MLflow"])
def test_the_end_of_sweep_plots_read_the_study_and_only_a_sweep_without_one_is_rebuilt(sweep, with_study):
    from sweep.run import finish, record_study_plots

    spec, client, target, _ = sweep
    if not with_study:
        (spec.sweep_dir / STUDY_FILE).unlink()
    with contextlib.redirect_stdout(io.StringIO()):
        code, summary = finish(spec, spec.family_entry, client, target, interrupted=False)
    line = record_study_plots(spec, spec.family_entry, client, target, summary.rows)
    assert code == 0 and line.startswith("Study plots (") and "learning_curves" in line, line
    assert (REBUILT_NOTE in line) is not with_study


def test_the_front_of_a_multi_objective_sweep_is_its_studys_best_trials():
    objectives = [("val_accuracy", "max"), ("params", "min")]
    study = optuna.create_study(directions=["maximize", "minimize"])
    points = {"a": (0.9, 100), "b": (0.8, 50), "c": (0.7, 80), "d": (0.95, 400)}
    rows = []
    for name, (accuracy, size) in points.items():
        study.add_trial(create_trial(params={"x": len(rows)}, distributions={"x": _INT}, values=[accuracy, size]))
        rows.append(_row(name, x=str(len(rows)), val_accuracy=accuracy, params=size))
    assert [r.trial_id for r in pareto_front(rows, objectives, study=study)] == ["d", "a", "b"]
    assert pareto_front(rows, objectives) == pareto_front(rows, objectives, study=study)


def test_warm_start_reads_the_earlier_study_and_says_when_it_rebuilt_from_mlflow(sweep):
    from sweep.warm_start import earlier_trials

    earlier = sweep[0]
    spec = replace(earlier, name="later")
    from_study = earlier_trials(earlier, spec)
    assert from_study and not any(seed.rebuilt for seed in from_study)
    assert all(seed.distributions for seed in from_study)  # as the earlier study asked for them
    (earlier.sweep_dir / STUDY_FILE).unlink()
    rebuilt = earlier_trials(earlier, spec)
    assert rebuilt and all(seed.rebuilt for seed in rebuilt)
    assert sorted(s.value for s in rebuilt if not s.pruned) == sorted(s.value for s in from_study if not s.pruned)


_INT = optuna.distributions.IntDistribution(0, 10)


def _row(trial_id: str, **values) -> TrialRow:
    params = {k: v for k, v in values.items() if isinstance(v, str)}
    metrics = {k: v for k, v in values.items() if not isinstance(v, str)}
    return TrialRow(trial_id, f"run-{trial_id}", "FINISHED", False, 1, metrics, params)
