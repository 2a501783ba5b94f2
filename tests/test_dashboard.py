"""`scenesweep dashboard`: a real optuna-dashboard process on 127.0.0.1, asked over HTTP for the sweep's study."""

from __future__ import annotations

import os
import signal
import time

import optuna
import pytest
import requests
from mlflow.tracking import MlflowClient
from optuna.storages.journal import JournalFileBackend, JournalStorage

from tests.conftest import free_port, start_cli, wait_for, wait_for_http
from tests.test_housekeeping import record_sweep
from tracking.runs import TAG_PARENT, TAG_ROLE, TAG_TRIAL_ID, log_params


@pytest.fixture
def serve(tmp_path):
    started = []

    def start(*args, cwd):
        port = free_port()
        process = start_cli("dashboard", *args, "--port", str(port), cwd=cwd, log=tmp_path / f"dashboard-{port}.log")
        started.append(process)
        base = f"http://127.0.0.1:{port}"
        wait_for_http(f"{base}/api/studies", timeout=120, process=process)
        return base

    yield start
    for process in started:
        os.killpg(process.pid, signal.SIGTERM)
        process.wait(timeout=30)


def studies(base: str) -> dict:
    return {s["study_name"]: s for s in requests.get(f"{base}/api/studies", timeout=10).json()["study_summaries"]}


def trial_count(base: str, study_id: int) -> int:
    return len(requests.get(f"{base}/api/studies/{study_id}", timeout=10).json()["trials"])


def test_dashboard_mirrors_a_sweeps_mlflow_runs_and_takes_in_trials_as_they_end(serve, tmp_path):
    uri = f"sqlite:///{tmp_path / 'mlruns.db'}"
    target = record_sweep(uri, "s1", values=[0.5, 0.75], status="RUNNING", heartbeat=time.time())
    base = serve("s1", "--tracking-uri", uri, cwd=tmp_path)
    listed = studies(base)
    assert list(listed) == ["s1"]
    study_id = listed["s1"]["study_id"]
    assert trial_count(base, study_id) == 2
    # The sweep goes on: a third trial ends while the dashboard runs.
    client = MlflowClient(uri)
    tags = {TAG_PARENT: target.parent_run_id, TAG_TRIAL_ID: "t9", TAG_ROLE: "trial"}
    run = client.create_run(target.experiment_id, run_name="tinynet_t9", tags=tags)
    log_params(client, run.info.run_id, {"lr": 0.02, "blocks": 4})
    client.log_metric(run.info.run_id, "val_accuracy", 0.8)
    client.set_terminated(run.info.run_id)
    wait_for(lambda: trial_count(base, study_id) == 3, timeout=60, what="the new trial on the dashboard")


def test_dashboard_serves_the_sweeps_own_journal_study_when_it_has_one(serve, tmp_path):
    folder = tmp_path / "sweeps" / "j1"
    folder.mkdir(parents=True)
    storage = JournalStorage(JournalFileBackend(str(folder / "optuna.journal")))
    study = optuna.create_study(study_name="j1", storage=storage, direction="maximize")
    study.optimize(lambda trial: trial.suggest_float("x", 0, 1), n_trials=3)
    base = serve("j1", cwd=tmp_path)
    listed = studies(base)
    assert list(listed) == ["j1"] and trial_count(base, listed["j1"]["study_id"]) == 3
    assert not (tmp_path / "mlruns.db").exists()  # the study alone: no tracking store touched


def test_dashboard_refuses_an_unknown_sweep_in_one_line(tmp_path):
    from tests.conftest import run_cli

    result = run_cli("dashboard", "nope", cwd=tmp_path, timeout=120)
    assert result.returncode == 2 and "no sweep named 'nope'" in result.stderr and "Traceback" not in result.stderr


@pytest.mark.parametrize(
    ("journal", "saved", "expected"),
    [
        (True, {}, "journal"),
        (True, {"study_storage": "sqlite:///elsewhere.db"}, "journal"),
        (False, {"study_storage": "postgresql://optuna@db/optuna"}, "postgresql://optuna@db/optuna"),
        (False, {"study_storage": ""}, None),  # a sweep older than persistent studies: mirrored from MLflow
        (False, None, None),  # no sweep folder here at all
    ],
)
def test_the_dashboard_finds_the_sweeps_study_in_its_folder_or_spec(tmp_path, journal, saved, expected):
    import json

    from sweep.dashboard import study_location

    folder = tmp_path / "sweeps" / "s1"
    folder.mkdir(parents=True)
    if journal:
        (folder / "optuna.journal").write_text("")
    if saved is not None:
        (folder / "scenesweep.json").write_text(json.dumps(saved))
    found = study_location("s1", storage=str(tmp_path / "sweeps"))
    assert found == (str((folder / "optuna.journal").resolve()) if expected == "journal" else expected)
