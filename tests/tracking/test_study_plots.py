"""The study rebuilt from MLflow rows and its plots on a real sqlite store's run."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from mlflow.tracking import MlflowClient
from optuna.distributions import CategoricalDistribution, FloatDistribution, IntDistribution
from optuna.trial import TrialState

from sweep.study_source import study_from_rows
from tracking.study_plots import importance_order, log_study_plots
from tracking.summary import TrialRow

SPACE = {
    "lr": FloatDistribution(1e-4, 1e-1, log=True),
    "blocks": IntDistribution(2, 5),
    "optimizer": CategoricalDistribution(["adam", "sgd"]),
}


def row(trial_id, status="FINISHED", *, value=None, pruned=False, **params):
    metrics = {} if value is None else {"val_accuracy": value, "params": 1000.0 * int(params.get("blocks", 1))}
    return TrialRow(trial_id, f"run-{trial_id}", status, pruned, 3, metrics, {k: str(v) for k, v in params.items()})


def sweep_rows(finished: int):
    rows = [
        row(f"t{i}", value=0.4 + 0.1 * (i % 4) + 0.01 * i, lr=10 ** -(1 + i % 3), blocks=2 + i % 4, optimizer="adam")
        for i in range(finished)
    ]
    rows.append(row("p", "KILLED", value=0.2, pruned=True, lr=0.05, blocks=3, optimizer="sgd"))
    rows.append(row("f", "FAILED", lr=0.01, blocks=2, optimizer="sgd"))
    rows.append(row("r", "RUNNING", lr=0.01, blocks=2, optimizer="sgd"))
    return rows


@pytest.fixture
def parent_run(tmp_path):
    client = MlflowClient(f"sqlite:///{tmp_path / 'mlflow.db'}")
    return client, client.create_run(client.create_experiment("plots")).info.run_id


def test_study_from_rows_keeps_states_values_curves_and_trial_ids():
    rows = sweep_rows(3) + [row("odd", value=0.5, lr=7.0, blocks=3, optimizer="adam")]  # lr outside the space
    study = study_from_rows(
        rows, metric="val_accuracy", mode="max", distributions=SPACE, curves={"t0": {1: 0.3, 2: 0.4}}
    )
    states = {t.user_attrs["trial_id"]: t.state for t in study.trials}
    assert states == {
        "t0": TrialState.COMPLETE,
        "t1": TrialState.COMPLETE,
        "t2": TrialState.COMPLETE,
        "p": TrialState.PRUNED,
        "f": TrialState.FAIL,
        "odd": TrialState.COMPLETE,
    }  # the running trial is not a result yet
    first = study.trials[0]
    assert first.params == {"lr": 0.1, "blocks": 2, "optimizer": "adam"} and first.intermediate_values == {
        1: 0.3,
        2: 0.4,
    }
    assert "lr" not in study.trials[-1].params  # a value its distribution cannot hold is left out, not an error
    assert study.best_trial.user_attrs["trial_id"] == "t2"


def test_a_sweep_with_enough_trials_gets_every_plot_as_png_and_html(parent_run, tmp_path):
    client, run_id = parent_run
    study = study_from_rows(
        sweep_rows(8),
        metric="val_accuracy",
        mode="max",
        distributions=SPACE,
        curves={f"t{i}": {1: 0.2, 2: 0.3 + 0.01 * i} for i in range(8)},
    )
    plots = log_study_plots(client, run_id, study, metric="val_accuracy")
    expected = [
        "optimisation_history",
        "param_importances",
        "parallel_coordinate",
        "contour",
        "slice",
        "learning_curves",
        "accuracy_vs_params",
    ]
    assert plots.drawn == expected and not plots.skipped
    logged = {Path(a.path).name for a in client.list_artifacts(run_id, "study")}
    assert {f"{name}.png" for name in expected} | {"study.html", "param_importances.json"} <= logged
    html = Path(client.download_artifacts(run_id, "study/study.html", str(tmp_path))).read_text()
    assert all(f"id='{name}'" in html for name in expected) and "plotly" in html
    assert set(plots.importances) == {"lr", "blocks"}  # optimizer never varied among finished trials
    assert importance_order(client, run_id) == list(plots.importances)
    saved = json.loads(
        Path(client.download_artifacts(run_id, "study/param_importances.json", str(tmp_path))).read_text()
    )
    assert saved == plots.importances


def test_a_one_trial_sweep_gets_what_one_trial_supports_and_says_why_not_the_rest(parent_run):
    client, run_id = parent_run
    study = study_from_rows(sweep_rows(1), metric="val_accuracy", mode="max", distributions=SPACE)
    plots = log_study_plots(client, run_id, study, metric="val_accuracy")
    assert "optimisation_history" in plots.drawn and "accuracy_vs_params" in plots.drawn
    assert {"param_importances", "contour", "parallel_coordinate", "learning_curves"} <= set(plots.skipped)
    assert "skipped" in plots.line() and "1 finished trial(s)" in plots.skipped["contour"]
    assert importance_order(client, run_id) == []
