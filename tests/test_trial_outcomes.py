"""End to end through the real CLI: what a sweep's flags and a trial's failures leave on the runs."""

from __future__ import annotations

import pytest

from tests.conftest import run_cli
from tests.sweep_checks import sweep_runs

pytestmark = pytest.mark.slow

SMALL = ["--fix", "input_size=32", "--fix", "base_width=8", "--fix", "blocks=3", "--fix", "convs_per_block=1"]


def test_precision_reaches_every_trial_and_is_recorded_on_its_run(tmp_path):
    result = run_cli(
        "sweep", "--name", "bf16", "--samples", "2", "--epochs", "1", "--precision", "bf16", *SMALL, cwd=tmp_path
    )
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
    _, parent, children = sweep_runs(f"sqlite:///{tmp_path / 'mlruns.db'}", "bf16", "scenesweep-tinynet")
    assert len(children) == 2
    assert [c.data.tags.get("scenesweep.option.precision") for c in children] == ["bf16", "bf16"]
    assert parent.data.params["options.precision"] == "bf16"


def test_a_trial_that_raises_is_retried_then_ends_failed_with_its_reason(tmp_path):
    # The artifact store cannot be written (a file where its folder goes): every attempt of the trial
    # trains, then raises NotADirectoryError/FileExistsError logging its artifacts. That is not a
    # TrialFailed (the config is not to blame), so Tune retries it, twice (FailureConfig max_failures=2).
    (tmp_path / "mlartifacts").write_text("not a folder")
    result = run_cli("sweep", "--name", "retried", "--samples", "1", "--epochs", "1", *SMALL, cwd=tmp_path)
    assert result.returncode != 0
    _, parent, children = sweep_runs(f"sqlite:///{tmp_path / 'mlruns.db'}", "retried", "scenesweep-tinynet")
    assert len(children) == 1, "a retried trial keeps its one run"
    run = children[0]
    assert run.info.status == "FAILED", run.info.status
    assert run.data.tags["scenesweep.attempt"] == "3"
    reason = run.data.tags["scenesweep.error"]
    assert "Error" in reason and "mlartifacts" in reason, reason
    assert parent.info.status == "FAILED"

    status = run_cli("status", "retried", cwd=tmp_path, timeout=120)
    assert status.returncode == 0, status.stderr
    trial_id = run.data.tags["scenesweep.trial_id"]
    assert "1 failed" in status.stdout and f"{trial_id}  {reason[:60]}" in status.stdout, status.stdout
