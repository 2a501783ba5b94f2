"""The parent run kept current while a sweep runs, on a real sqlite store, driven through Tune's Callback hooks."""

from __future__ import annotations

import time

import pytest
from mlflow.tracking import MlflowClient
from ray.tune.experiment import Trial

from tracking.live import START_LAG_SECONDS, TAG_HEARTBEAT, TAG_PROGRESS, SweepAbout, SweepProgress, driver_gone
from tracking.provenance import NOTE_TAG
from tracking.runs import get_or_create_experiment, start_sweep_run
from tracking.summary import TrialRow


def trial(trial_id: str, result: dict | None = None) -> Trial:
    made = Trial("__fake", trial_id=trial_id, config={}, stub=True)
    made.custom_trial_name = f"tinynet_{trial_id}"
    if result is not None:
        made.run_metadata.last_result = result
    return made


ABOUT = SweepAbout(command="scenesweep sweep --samples 6", data="`demo`", space="tinynet", budget="6 trials")


@pytest.fixture
def parent(tmp_path):
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    client = MlflowClient(uri)
    experiment_id = get_or_create_experiment(client, "live", uri, family="tinynet")
    target = start_sweep_run(
        client, uri=uri, experiment_id=experiment_id, sweep="s1", family="tinynet", search="tpe", params={}
    )
    return client, target


def test_best_so_far_progress_and_description_follow_the_trials(parent):
    client, target = parent
    progress = SweepProgress(target, metric="val_accuracy", mode="max", about=ABOUT)
    began = int(time.time())  # the heartbeat is written in whole Unix seconds
    progress.setup()
    assert "_No trial has finished yet._" in client.get_run(target.parent_run_id).data.tags[NOTE_TAG]
    for trial_id in "abcd":
        progress.on_trial_start(0, [], trial(trial_id))
    ends = [
        ("a", {"val_accuracy": 0.5, "test_accuracy": 0.45, "params": 1000, "epoch": 6}),
        ("b", {"val_accuracy": 0.9, "epoch": 2}),  # pruned: its value is not a finished trial's
        ("c", {"val_accuracy": 0.7, "test_accuracy": 0.6, "params": 2000, "epoch": 6}),
        ("d", {"val_accuracy": float("-inf"), "trial_failed": 1}),
    ]
    for trial_id, result in ends:
        progress.on_trial_complete(0, [], trial(trial_id, result))
    run = client.get_run(target.parent_run_id)
    history = [(m.step, m.value) for m in client.get_metric_history(run.info.run_id, "best_val_accuracy")]
    assert sorted(history) == [(1, 0.5), (2, 0.5), (3, 0.7), (4, 0.7)]
    assert run.data.tags[TAG_PROGRESS].startswith("2 finished, 1 pruned, 1 failed, 0 running; ")
    assert began <= float(run.data.tags[TAG_HEARTBEAT]) <= time.time()  # written during the sweep, as a Unix time
    note = run.data.tags[NOTE_TAG]
    assert "`scenesweep sweep --samples 6`" in note and "- budget: 6 trials" in note
    table = [line for line in note.splitlines() if line.startswith("| ")]
    assert table[1].startswith("| 1 | tinynet_c | 0.7000 | 0.6000 | 2,000 | 6 |")
    assert table[2].startswith("| 2 | tinynet_a | 0.5000 |") and len(table) == 3


def test_a_resumed_sweep_counts_on_from_the_runs_recorded(parent):
    client, target = parent
    progress = SweepProgress(target, metric="val_accuracy", mode="max", about=ABOUT)
    rows = [
        TrialRow("a", "r1", "FINISHED", False, 6, {"val_accuracy": 0.8, "test_accuracy": 0.7}, {}),
        TrialRow("b", "r2", "KILLED", True, 2, {"val_accuracy": 0.3}, {}),
        TrialRow("c", "r3", "RUNNING", False, 1, {}, {}),
    ]
    progress.seed(rows)
    progress.on_trial_complete(0, [], trial("c", {"val_accuracy": 0.6, "test_accuracy": 0.5, "epoch": 6}))
    history = client.get_metric_history(target.parent_run_id, "best_val_accuracy")
    assert [(m.step, m.value) for m in history] == [(3, 0.8)]
    assert progress.progress().startswith("2 finished, 1 pruned, 0 failed")


@pytest.mark.parametrize(
    ("tags", "gone"),
    [
        ({}, False),  # a sweep from before heartbeats: no claim either way
        ({TAG_HEARTBEAT: "1000"}, True),
        ({TAG_HEARTBEAT: "1990"}, False),
        ({TAG_HEARTBEAT: "garbled"}, False),
    ],
)
def test_a_driver_is_gone_when_its_heartbeat_stops(tags, gone):
    assert (driver_gone(tags, now=2000.0) is not None) is gone


def test_a_trial_start_right_after_a_write_shows_within_the_lag_not_at_once(parent):
    client, target = parent
    now = [1000.0]
    progress = SweepProgress(target, metric="val_accuracy", mode="max", about=ABOUT, clock=lambda: now[0])
    progress.setup()  # writes: the lag runs from here
    shown = lambda: client.get_run(target.parent_run_id).data.tags[TAG_PROGRESS]  # noqa: E731
    progress.on_trial_start(0, [], trial("a"))
    assert shown().endswith("0 running; 0s")  # no request between two short trials
    now[0] += START_LAG_SECONDS / 2
    progress.on_step_end(0, [])
    assert shown().endswith("0 running; 0s")
    now[0] += START_LAG_SECONDS
    progress.on_step_end(0, [])  # within the lag of the start, the progress says it
    assert "1 running" in shown()
    now[0] += START_LAG_SECONDS
    progress.on_trial_start(0, [], trial("b"))  # long after the last write: at once
    assert "2 running" in shown()
