"""Closing a run with its reason, finding the open ones, and a run's epochs read without a request, on a real sqlite store."""

from __future__ import annotations

import pytest
from mlflow.tracking import MlflowClient

from tracking.runs import (
    TAG_ERROR,
    TAG_PARENT,
    TAG_PRUNED,
    SweepTarget,
    close_open_trial_runs,
    close_run,
    logged_epochs,
    trial_runs,
)


@pytest.fixture
def store(tmp_path):
    client = MlflowClient(f"sqlite:///{tmp_path / 'mlflow.db'}")
    experiment_id = client.create_experiment("runs")
    parent = client.create_run(experiment_id).info.run_id
    return client, SweepTarget(uri="", experiment_id=experiment_id, parent_run_id=parent, sweep="s", family="f")


def child(client, target, status: str = "RUNNING") -> str:
    run_id = client.create_run(target.experiment_id, tags={TAG_PARENT: target.parent_run_id}).info.run_id
    if status != "RUNNING":
        client.set_terminated(run_id, status=status)
    return run_id


@pytest.mark.parametrize(
    ("status", "reason", "tags", "expected"),
    [
        ("FINISHED", "", None, {}),
        ("FAILED", "RuntimeError: diverged", None, {TAG_ERROR: "RuntimeError: diverged"}),
        ("KILLED", "", {TAG_PRUNED: "true"}, {TAG_PRUNED: "true"}),
        ("KILLED", "lost", {"scenesweep.lost": True}, {TAG_ERROR: "lost", "scenesweep.lost": "True"}),
        ("FAILED", "x" * 6000, None, {TAG_ERROR: "x" * 5000}),  # a reason is kept to what MLflow stores
    ],
)
def test_a_closed_run_has_its_status_and_says_why(store, status, reason, tags, expected):
    client, target = store
    run_id = child(client, target)
    close_run(client, run_id, status=status, reason=reason, tags=tags)
    run = client.get_run(run_id)
    assert run.info.status == status and run.info.end_time
    assert {k: v for k, v in run.data.tags.items() if k.startswith("scenesweep.")} == expected


def test_only_open_runs_are_closed_and_counted(store):
    client, target = store
    open_ids = {child(client, target), child(client, target, "SCHEDULED")}
    done = {child(client, target, status) for status in ("FINISHED", "FAILED", "KILLED")}
    assert {r.info.run_id for r in trial_runs(client, target, open_only=True)} == open_ids
    assert close_open_trial_runs(client, target, status="KILLED", reason="sweep ended") == 2
    assert {r.info.run_id for r in trial_runs(client, target)} == open_ids | done
    assert all(client.get_run(r).data.tags[TAG_ERROR] == "sweep ended" for r in open_ids)
    assert not any(TAG_ERROR in client.get_run(r).data.tags for r in done)


@pytest.mark.parametrize(("steps", "epochs"), [([], 0), ([1], 1), ([1, 2, 3], 3), ([3, 1, 2], 3)])
def test_a_runs_epochs_are_the_highest_step_of_its_train_loss(store, steps, epochs):
    client, target = store
    run_id = child(client, target)
    for step in steps:
        client.log_metric(run_id, "train_loss", 1.0 / step, step=step)
    client.log_metric(run_id, "val_accuracy", 0.5, step=epochs + 1)  # a second stage's result: not an epoch
    (run,) = trial_runs(client, target)
    assert logged_epochs(run) == epochs
