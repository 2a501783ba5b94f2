"""TrialSession outside Tune: epoch history, the held-back last epoch, the per-trial time limit."""

from search_spaces.tinynet import PAPER_BEST
from trainables.session import TrialSession
from trainables.trial import fit_and_evaluate

TINY = {**PAPER_BEST, "blocks": 2, "base_width": 8, "input_size": 32, "lr_finder": False, "lr": 3e-3}


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
