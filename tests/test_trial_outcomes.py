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


def test_a_trial_whose_records_cannot_be_written_ends_failed_with_the_reason(tmp_path):
    # The artifact store cannot be written (a file where its folder goes): the trial trains and hands
    # its record to its node's recorder, which fails logging the artifacts. The run ends FAILED with
    # the reason, once: the trial is not trained again for a store that cannot take its records
    # (Tune's retries, FailureConfig max_failures=2, are for a trial that raises while it trains:
    # tests/cluster/test_faults.py kills a node under one).
    (tmp_path / "mlartifacts").write_text("not a folder")
    result = run_cli("sweep", "--name", "retried", "--samples", "1", "--epochs", "1", *SMALL, cwd=tmp_path)
    assert result.returncode != 0
    _, parent, children = sweep_runs(f"sqlite:///{tmp_path / 'mlruns.db'}", "retried", "scenesweep-tinynet")
    assert len(children) == 1
    run = children[0]
    assert run.info.status == "FAILED", run.info.status
    assert run.data.tags["scenesweep.attempt"] == "1"
    reason = run.data.tags["scenesweep.error"]
    assert reason.startswith("recording the finished trial failed") and "mlartifacts" in reason, reason
    assert "could not be recorded" in result.stderr, result.stderr[-2000:]
    assert parent.info.status == "FAILED"

    status = run_cli("status", "retried", cwd=tmp_path, timeout=120)
    assert status.returncode == 0, status.stderr
    trial_id = run.data.tags["scenesweep.trial_id"]
    assert "1 failed" in status.stdout and f"{trial_id}  {reason[:60]}" in status.stdout, status.stdout
