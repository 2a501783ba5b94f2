"""The trial table's columns: searched params in space order, metric directions."""

import pytest

from tracking.summary import TrialRow, format_failures, format_table, metric_mode, varying_params


def row(trial_id, **params):
    return TrialRow(
        trial_id=trial_id,
        run_id=f"run-{trial_id}",
        status="FINISHED",
        pruned=False,
        epochs=3,
        metrics={"val_accuracy": 0.5, "test_accuracy": 0.25, "params": 1234.0, "fit_seconds": 1.25},
        params={k: str(v) for k, v in params.items()},
    )


def test_varying_params_follow_the_space_order_and_skip_pinned_ones():
    rows = [row("a", lr=0.1, blocks=2, pinned=1, zeta=1), row("b", lr=0.2, blocks=3, pinned=1, zeta=2)]
    assert varying_params(rows, order=["blocks", "lr"]) == ["blocks", "lr", "zeta"]
    assert varying_params(rows) == ["blocks", "lr", "zeta"]
    assert varying_params(rows, order=["lr"], limit=1) == ["lr"]


def test_the_table_shows_run_ids_extra_metrics_and_short_floats():
    table = format_table(
        [row("a", lr=0.000123456, blocks=2)],
        metric="val_accuracy",
        also=("cv_accuracy",),
        run_ids=True,
        key_params=["lr", "blocks"],
    )
    header, line = table.splitlines()
    assert header.split() == [
        "trial",
        "run",
        "status",
        "epochs",
        "val_accuracy",
        "cv_accuracy",
        "test_accuracy",
        "params",
        "fit_s",
        "lr",
        "blocks",
    ]
    assert line.split()[:2] == ["a", "run-a"] and line.split()[-2:] == ["0.0001235", "2"] and "1,234" in line


@pytest.mark.parametrize(
    "metric, mode",
    [
        ("val_accuracy", "max"),
        ("cv_accuracy", "max"),
        ("val_loss", "min"),
        ("fit_seconds", "min"),
        ("params", "min"),
        ("cv_accuracy_std", "min"),
    ],
)
def test_losses_durations_and_sizes_rank_low_first(metric, mode):
    assert metric_mode(metric, default="max") == mode


def test_failures_list_each_failed_trial_with_its_reason():
    failed = TrialRow(
        trial_id="f",
        run_id="run-f",
        status="FAILED",
        pruned=False,
        epochs=1,
        metrics={},
        params={},
        error="training diverged: train loss is nan at epoch 1",
    )
    assert format_failures([row("a"), failed]) == "  f  training diverged: train loss is nan at epoch 1"
    assert format_failures([row("a")]) == ""
