"""`resume` closes the runs of trials the restored Tune state never knew (lost with a killed driver)."""

from __future__ import annotations

import re

import pytest

from tests.conftest import run_cli
from tests.sweep_checks import sweep_runs

pytestmark = pytest.mark.slow

SMALL = ["--fix", "input_size=32", "--fix", "base_width=8", "--fix", "blocks=3", "--fix", "convs_per_block=1"]


def test_resume_closes_a_run_lost_with_the_driver_and_counts_it_as_lost(tmp_path):
    args = ["--samples", "2", "--epochs", "1", "--max-concurrent", "1", "--name", "rec", *SMALL]
    first = run_cli("sweep", *args, cwd=tmp_path, timeout=900)
    assert first.returncode == 0, first.stdout[-2000:] + first.stderr[-2000:]
    uri = f"sqlite:///{tmp_path / 'mlruns.db'}"
    client, parent, children = sweep_runs(uri, "rec", "scenesweep-tinynet")
    # What a driver SIGKILLed between MLflow opening a trial's run and Tune's next snapshot leaves:
    # a RUNNING child run whose trial id the saved Tune state does not know.
    orphan = client.create_run(
        parent.info.experiment_id,
        run_name="tinynet_orphan",
        tags={
            "mlflow.parentRunId": parent.info.run_id,
            "scenesweep.trial_id": "orphan_00099",
            "scenesweep.sweep": "rec",
            "scenesweep.family": "tinynet",
            "scenesweep.role": "trial",
        },
    ).info.run_id
    # What a driver SIGKILLed while its node's recorder wrote a finished trial leaves: the saved state
    # has the trial completed, its run is still RUNNING.
    unrecorded = next(c for c in children if c.info.status == "FINISHED")
    client.update_run(unrecorded.info.run_id, status="RUNNING")

    resumed = run_cli("resume", "rec", cwd=tmp_path, timeout=900)
    assert resumed.returncode == 0, resumed.stdout[-2000:] + resumed.stderr[-2000:]
    run = client.get_run(orphan)
    assert run.info.status == "KILLED" and run.data.tags["scenesweep.lost"] == "true"
    assert run.data.tags["scenesweep.error"].startswith("lost with the driver")

    run = client.get_run(unrecorded.info.run_id)
    assert run.info.status == "FAILED" and "its node's recorder" in run.data.tags["scenesweep.error"]
    assert run.data.metrics["test_accuracy"] == unrecorded.data.metrics["test_accuracy"]  # from Tune's state
    assert "time_total_s" not in run.data.metrics and "trial_completed" not in run.data.metrics

    _, parent, children = sweep_runs(uri, "rec", "scenesweep-tinynet")
    assert not [c for c in children if c.info.status == "RUNNING"]
    counts = dict((name, int(n)) for name, n in re.findall(r"(\w+) (\d+)", parent.data.tags["scenesweep.trials"]))
    assert counts.get("lost") == 1 and counts.get("failed") == 1 and "running" not in counts, counts
    assert sum(counts.values()) == len(children) == 3

    status = run_cli("status", "rec", cwd=tmp_path, timeout=120)
    assert status.returncode == 0 and "1 lost" in status.stdout and "running" not in status.stdout.lower()
    assert re.search(r"orphan_00099\s+LOST", status.stdout), status.stdout
