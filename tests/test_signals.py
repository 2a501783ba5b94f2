"""A sweep's driver stopped from outside, at any moment. The signals it gets (docker stop, Kubernetes,
systemd, Ray's stop_job, a closed terminal) end it as cleanly as Ctrl-C: trials in flight recorded
as stopped, the parent run KILLED with the reason, nothing left RUNNING, a resume hint, and the
conventional exit code. A SIGKILL, even in its first seconds, leaves a sweep that `resume` finishes."""

from __future__ import annotations

import os
import signal
import subprocess
from contextlib import contextmanager

import pytest
from mlflow.exceptions import MlflowException
from mlflow.tracking import MlflowClient

from tests.conftest import run_cli, start_cli, wait_for
from tests.sweep_checks import sweep_runs

pytestmark = pytest.mark.slow

SMALL = ["--fix", "input_size=32", "--fix", "base_width=8", "--fix", "blocks=3", "--fix", "convs_per_block=1"]
EXPERIMENT = "scenesweep-tinynet"
# The store, its experiment or the parent run not there yet (sweep_runs: no experiment, no parent).
NOT_YET = (AssertionError, AttributeError, MlflowException)


def _a_trial_is_training(uri: str, name: str) -> bool:
    client = MlflowClient(uri)
    try:
        _, _, children = sweep_runs(uri, name, EXPERIMENT)
    except NOT_YET:  # the store or the parent run does not exist yet
        return False
    return any(
        c.info.status == "RUNNING" and client.get_metric_history(c.info.run_id, "val_accuracy") for c in children
    )


def test_sigterm_mid_sweep_stops_it_cleanly_and_resume_finishes_it(tmp_path):
    name, uri = "term", f"sqlite:///{tmp_path / 'mlruns.db'}"
    args = ["--data", "demo", "--samples", "2", "--epochs", "8", "--name", name, "--seed", "1", "--no-chance-stop"]
    log = tmp_path / "sweep.log"
    with killed_at_exit(start_cli("sweep", *args, *SMALL, cwd=tmp_path, log=log)) as sweep:
        wait_for(lambda: _a_trial_is_training(uri, name), timeout=600, what="a trial mid-training", process=sweep)
        os.kill(sweep.pid, signal.SIGTERM)  # to the driver alone, as docker stop or stop_job sends it
        code = sweep.wait(timeout=600)
    output = log.read_text()
    assert code == 128 + signal.SIGTERM, output[-3000:]
    assert f"continue with: scenesweep resume {name}" in output and "Traceback" not in output, output[-3000:]
    client, parent, children = sweep_runs(uri, name, EXPERIMENT)
    assert parent.info.status == "KILLED"
    assert children and not [c for c in children if c.info.status == "RUNNING"]
    assert any(c.data.tags.get("scenesweep.error") == "sweep interrupted" for c in children), [
        (c.info.status, c.data.tags) for c in children
    ]
    resumed = run_cli("resume", name, cwd=tmp_path, timeout=900)
    assert resumed.returncode == 0, resumed.stdout[-3000:] + resumed.stderr[-3000:]
    client, parent, children = sweep_runs(uri, name, EXPERIMENT)
    assert parent.info.status == "FINISHED"
    trial_ids = [c.data.tags["scenesweep.trial_id"] for c in children]
    assert len(trial_ids) == len(set(trial_ids))  # one run per trial
    assert sum(c.info.status == "FINISHED" for c in children) == 2
    assert not [c for c in children if c.info.status == "RUNNING"]


def test_sighup_while_the_sweep_starts_leaves_nothing_running(tmp_path):
    name, uri = "hup", f"sqlite:///{tmp_path / 'mlruns.db'}"
    log = tmp_path / "sweep.log"
    with killed_at_exit(
        start_cli("sweep", "--data", "demo", "--samples", "2", "--name", name, *SMALL, cwd=tmp_path, log=log)
    ) as sweep:
        # The parent run exists: the sweep has recorded something, and no trial has started yet.
        wait_for(
            lambda: _parent_exists(uri, name), timeout=300, what="the sweep's parent run", process=sweep, interval=0.1
        )
        os.kill(sweep.pid, signal.SIGHUP)
        code = sweep.wait(timeout=600)
    output = log.read_text()
    assert code == 128 + signal.SIGHUP, output[-3000:]
    assert "Traceback" not in output, output[-3000:]
    client, parent, children = sweep_runs(uri, name, EXPERIMENT)
    assert parent.info.status == "KILLED"
    assert not [c for c in children if c.info.status == "RUNNING"]


@contextmanager
def killed_at_exit(process: subprocess.Popen):
    """The process, SIGKILLed with its group on the way out if it is still running (a failed wait)."""
    try:
        yield process
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()


def _parent_exists(uri: str, name: str) -> bool:
    try:
        sweep_runs(uri, name, EXPERIMENT)
    except NOT_YET:
        return False
    return True


def test_a_sweep_killed_before_tunes_first_snapshot_resumes(tmp_path):
    """SIGKILL in the first seconds: Tune has written tuner.pkl but no snapshot. `resume` starts the
    search over on the same study, and the sweep ends with its trials, one run each."""
    name, uri = "early", f"sqlite:///{tmp_path / 'mlruns.db'}"
    log = tmp_path / "sweep.log"
    sweep = start_cli(
        "sweep", "--data", "demo", "--samples", "3", "--epochs", "2", "--name", name, *SMALL, cwd=tmp_path, log=log
    )
    pickled = tmp_path / "sweeps" / name / "tuner.pkl"
    try:
        wait_for(pickled.exists, timeout=600, what="Tune's tuner.pkl", process=sweep, interval=0.01)
    finally:
        os.killpg(sweep.pid, signal.SIGKILL)
        sweep.wait()
    assert not list(pickled.parent.glob("experiment_state-*.json")), "killed too late: Tune saved a snapshot"
    resumed = run_cli("resume", name, cwd=tmp_path, timeout=900)
    assert resumed.returncode == 0, resumed.stdout[-3000:] + resumed.stderr[-3000:]
    assert "no Tune state was saved yet; starting its search over" in resumed.stdout
    _, parent, children = sweep_runs(uri, name, EXPERIMENT)
    assert parent.info.status == "FINISHED"
    assert not [c for c in children if c.info.status == "RUNNING"]
    trial_ids = [c.data.tags["scenesweep.trial_id"] for c in children]
    assert len(trial_ids) == len(set(trial_ids))
    assert sum(c.info.status == "FINISHED" for c in children) == 3
