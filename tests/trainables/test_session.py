"""TrialSession's bookkeeping: checkpoints only where Tune can use them, and its own time accounted."""

import time
from pathlib import Path

from trainables.session import Stopwatch, TrialSession


def test_stopwatch_sums_each_phase():
    stopwatch = Stopwatch()
    for _ in range(2):
        with stopwatch("tune"):
            time.sleep(0.01)
    with stopwatch("epoch_log"):
        pass
    metrics = stopwatch.metrics()
    assert set(metrics) == {"tune_seconds", "epoch_log_seconds"}
    assert 0.02 <= metrics["tune_seconds"] < 1 and metrics["epoch_log_seconds"] < metrics["tune_seconds"]


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
        session.report_epoch(epoch, {"val_accuracy": 0.5}, save=lambda folder, e=epoch: (folder / "state").write_text(str(e)))
    assert sent == [(1, "1")]  # the last epoch is held back for the final report
    session.send_final({"test_accuracy": 0.4})
    assert sent == [(1, "1"), (2, "2")]
    assert session.stopwatch.metrics()["tune_seconds"] > 0
