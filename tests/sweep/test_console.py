"""The sweep's terminal lines, driven with real Tune Trial objects through the Callback hooks Tune calls."""

from __future__ import annotations

import io

import pytest
from ray.tune.experiment import Trial

from sweep.console import TrialConsole, tune_verbosity


class Clock:
    def __init__(self):
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def trial(trial_id: str, result: dict | None = None) -> Trial:
    made = Trial("__fake", trial_id=trial_id, config={}, stub=True)
    made.custom_trial_name = f"tinynet_{trial_id}"
    if result is not None:
        made.run_metadata.last_result = result
    return made


@pytest.fixture
def console():
    stream, clock = io.StringIO(), Clock()
    reasons = {"c": "out of GPU memory; pin a smaller --fix batch_size"}
    shown = TrialConsole(
        metric="val_accuracy",
        mode="max",
        samples=4,
        max_epochs=6,
        error_of=reasons.get,
        stream=stream,
        live=False,
        clock=clock,
    )
    return shown, stream, clock


def test_one_line_per_trial_event_with_scores_reasons_and_progress(console):
    shown, stream, clock = console
    for trial_id in "abc":
        shown.on_trial_start(0, [], trial(trial_id))
    clock.now += 30
    shown.on_trial_complete(0, [], trial("a", {"val_accuracy": 0.25, "epoch": 2}))
    clock.now += 30
    shown.on_trial_complete(0, [], trial("b", {"val_accuracy": 0.7, "test_accuracy": 0.65, "epoch": 6}))
    shown.on_trial_complete(0, [], trial("c", {"val_accuracy": float("-inf"), "trial_failed": 1}))
    lines = stream.getvalue().splitlines()
    assert len(lines) == 6
    assert lines[:3] == ["tinynet_a  started", "tinynet_b  started", "tinynet_c  started"]
    assert lines[3].startswith("tinynet_a  pruned    at epoch 2: val_accuracy 0.2500")
    assert "[1/4 done (1 pruned) · 2 running · 30s, ETA 1m30s]" in lines[3]
    assert lines[4].startswith("tinynet_b  finished  val_accuracy 0.7000  test_accuracy 0.6500")
    assert "best val_accuracy 0.7000 (tinynet_b)" in lines[4]
    assert lines[5].startswith("tinynet_c  failed    out of GPU memory; pin a smaller --fix batch_size")
    assert "3/4 done (1 finished, 1 pruned, 1 failed)" in lines[5]


def test_a_trial_ended_twice_is_reported_once(console):
    shown, stream, _ = console
    done = trial("a", {"val_accuracy": 0.5, "test_accuracy": 0.5})
    shown.on_trial_complete(0, [], done)
    shown.on_trial_error(0, [], done)
    assert len(stream.getvalue().splitlines()) == 1


def test_live_progress_line_is_rewritten_in_place_and_cleared_before_an_event(console):
    shown, stream, clock = console
    shown.live = True
    shown.on_trial_start(0, [], trial("a"))
    clock.now += 5
    shown.on_step_end(0, [])
    shown.on_step_end(0, [])  # within the second: not rewritten
    assert stream.getvalue().count("\r\033[K0/4 done · 1 running · 5s") == 1
    shown.on_trial_complete(0, [], trial("a", {"val_accuracy": 0.5, "test_accuracy": 0.5}))
    assert stream.getvalue().endswith(
        "\r\033[Ktinynet_a  finished  val_accuracy 0.5000  test_accuracy 0.5000   "
        "[1/4 done (1 finished) · best val_accuracy 0.5000 (tinynet_a) · 5s, ETA 15s]\n"
    )


@pytest.mark.parametrize(("level", "verbose"), [("quiet", 0), ("default", 0), ("verbose", 1)])
def test_tunes_own_tables_only_when_verbose(level, verbose):
    assert tune_verbosity(level) == verbose


@pytest.mark.parametrize(
    ("flags", "output"),
    [([], "default"), (["--verbose"], "verbose"), (["--quiet"], "quiet")],
)
def test_sweep_and_resume_take_one_loudness_flag(flags, output):
    from orchestrator import build_parser

    assert build_parser().parse_args(["sweep", *flags]).output == output
    assert build_parser().parse_args(["resume", "s1", *flags]).output == output


def test_verbose_and_quiet_exclude_each_other():
    from orchestrator import build_parser

    with pytest.raises(SystemExit):
        build_parser().parse_args(["sweep", "--verbose", "--quiet"])
