"""TrialSession: epoch history, the held-back last epoch, the per-trial time limit, checkpoints only
where Tune can use them, and its own time accounted."""

import time
from pathlib import Path

import pytest

from search_spaces.tinynet import PAPER_BEST
from trainables.core.session import AtChanceLevel, Stopwatch, TrialSession
from trainables.training import fit_and_evaluate

TINY = {**PAPER_BEST, "blocks": 2, "base_width": 8, "input_size": 32, "lr_finder": False, "lr": 3e-3}


def test_stopwatch_sums_each_phase():
    stopwatch = Stopwatch()
    for _ in range(2):
        with stopwatch("tune"):
            time.sleep(0.01)
    with stopwatch("epoch_log"):
        pass
    metrics = stopwatch.metrics()
    assert set(metrics) == {"tune_seconds", "epoch_log_seconds"}
    # sleep() waits at least what it was asked: the sum of both laps, never less; nothing bounds it above
    assert metrics["tune_seconds"] >= 0.02 and metrics["epoch_log_seconds"] < metrics["tune_seconds"]


def test_no_checkpoint_is_written_outside_tune():
    saved = []
    session = TrialSession(max_epochs=2)
    session.report_epoch(1, {"val_accuracy": 0.5}, save=saved.append)
    assert saved == [] and session.history["val_accuracy"] == [(1, 0.5)]


def test_under_tune_each_epoch_sends_a_checkpoint_and_its_time_is_counted():
    sent = []

    def report(result, checkpoint=None):
        with checkpoint.as_directory() as folder:
            sent.append((result["epoch"], (Path(folder) / "state").read_text()))

    session = TrialSession(max_epochs=2, report=report)
    for epoch in (1, 2):
        session.report_epoch(
            epoch, {"val_accuracy": 0.5}, save=lambda folder, e=epoch: (folder / "state").write_text(str(e))
        )
    assert sent == [(1, "1")]  # the last epoch is held back for the final report
    session.send_final({"test_accuracy": 0.4})
    assert sent == [(1, "1"), (2, "2")]
    assert session.stopwatch.metrics()["tune_seconds"] > 0


def test_last_epoch_is_held_back_for_the_final_report():
    sent = []
    session = TrialSession(max_epochs=2, report=lambda result, checkpoint=None: sent.append(result))
    session.report_epoch(1, {"val_accuracy": 0.5})
    session.report_epoch(2, {"val_accuracy": 0.6})
    assert [r["epoch"] for r in sent] == [1]
    session.send_final({"test_accuracy": 0.7})
    assert sent[-1] == {"val_accuracy": 0.6, "epoch": 2, "test_accuracy": 0.7}


def test_time_limit_stops_training_at_an_epoch_end_and_the_trial_still_finishes(demo_dataset):
    session = TrialSession(max_epochs=50, time_limit=1e-6)
    outcome = fit_and_evaluate(TINY, demo_dataset, "tinynet", session)
    assert session.timed_out
    assert [epoch for epoch, _ in session.history["val_accuracy"]] == [1]
    assert 0 <= outcome.metrics["test_accuracy"] <= 1


def test_no_time_limit_trains_every_epoch(demo_dataset):
    session = TrialSession(max_epochs=2)
    fit_and_evaluate(TINY, demo_dataset, "tinynet", session)
    assert not session.timed_out and len(session.history["val_accuracy"]) == 2


CHANCE_CASES = [
    # (chance level, max epochs, val accuracy per epoch, epoch the trial stops at or None)
    (0.125, 10, [0.125, 0.125, 0.9], 2),  # at chance after 2 epochs: stopped there
    (0.125, 10, [0.125, 0.14], 2),  # within the margin still counts as chance
    (0.125, 10, [0.125, 0.30, 0.125], None),  # learning at epoch 2: never checked again
    (0.125, 2, [0.125, 0.125], None),  # the last epoch: that trial is done anyway
    (None, 10, [0.125, 0.125, 0.125], None),  # --no-chance-stop
]


@pytest.mark.parametrize("chance, max_epochs, accuracies, stops_at", CHANCE_CASES)
def test_a_trial_still_at_chance_level_after_two_epochs_stops(chance, max_epochs, accuracies, stops_at):
    session = TrialSession(max_epochs=max_epochs, chance_level=chance)
    stopped = None
    for epoch, accuracy in enumerate(accuracies, start=1):
        try:
            session.report_epoch(epoch, {"val_accuracy": accuracy})
        except AtChanceLevel as exc:
            stopped = epoch
            assert f"after {epoch} epochs" in str(exc)
            break
    assert stopped == stops_at
    assert len(session.history["val_accuracy"]) == (stops_at or len(accuracies))  # the epoch itself is recorded
