"""End to end through the real CLI: embedded Ray, Optuna, and MLflow (a sqlite store and a real server)."""

import pytest

from tests.conftest import run_cli
from tests.sweep_checks import assert_model_matches_logged_predictions, assert_sweep_recorded, sweep_runs

pytestmark = pytest.mark.slow

SMALL = [
    "--fix",
    "input_size=32",
    "--fix",
    "base_width=8",
    "--fix",
    "kernel_size=3",
    "--fix",
    "convs_per_block=1",
    "--fix",
    "blocks=3",
]


@pytest.fixture(scope="module")
def local_sweep(tmp_path_factory):
    workdir = tmp_path_factory.mktemp("local-sweep")
    result = run_cli(
        "sweep",
        "--space",
        "tinynet",
        "--data",
        "demo",
        "--samples",
        "4",
        "--epochs",
        "3",
        "--search",
        "tpe",
        "--seed",
        "3",
        "--name",
        "demo-sqlite",
        *SMALL,
        cwd=workdir,
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    return workdir, result


def test_sweep_on_a_local_store_records_every_trial(local_sweep, demo_dataset):
    workdir, result = local_sweep
    uri = f"sqlite:///{workdir / 'mlruns.db'}"
    client, parent, finished = assert_sweep_recorded(
        uri, "demo-sqlite", experiment="scenesweep-tinynet", trials=4, epochs=3
    )
    assert (workdir / "mlartifacts").is_dir() and (workdir / "sweeps" / "demo-sqlite" / "scenesweep.json").exists()
    assert "Best trial" in result.stdout and "scenesweep ui" in result.stdout
    link = f"#/experiments/{parent.info.experiment_id}/runs/{parent.info.run_id}"
    assert link in result.stdout  # straight to the parent run, not the GenAI overview
    assert client.get_experiment(parent.info.experiment_id).tags["mlflow.experimentKind"] == "custom_model_development"
    assert_model_matches_logged_predictions(uri, client, finished[0], demo_dataset)
    for run in finished:
        assert run.data.tags["mlflow.source.name"] == "scenesweep" and "mlflow.source.git.commit" in run.data.tags
        (data,) = run.inputs.dataset_inputs
        assert data.dataset.digest == parent.data.params["data_fingerprint"] and data.dataset.name == "demo"
        model = client.get_logged_model(run.data.tags["scenesweep.model_uri"].removeprefix("models:/"))
        assert model.name == run.info.run_name  # named after its trial, e.g. tinynet_ab12cd34
        assert model.tags["mlflow.source.name"] == "scenesweep"
        assert "system/cpu_utilization_percentage" in run.data.metrics


def test_default_terminal_output_is_one_line_per_trial_event_and_ends_with_the_best_and_a_link(local_sweep):
    workdir, result = local_sweep
    lines = result.stdout.splitlines()
    # 4 trials: a start and an end line each, the table of the finished ones, the closing lines and
    # the refit's two (its start and its result).
    assert len(lines) <= 4 * 2 + 4 + 12 + 2, result.stdout
    assert "Configuration for experiment" not in result.stdout and "Trial name" not in result.stdout
    for noise in ("tensorboard", "A new study created", "NumPy array is not writable", "SearchGenerator"):
        assert noise not in result.stdout + result.stderr, noise
    events = [line for line in lines if line.startswith("tinynet_")]
    assert sum(" started" in line for line in events) == 4
    assert sum(any(f"  {how} " in line for how in ("finished", "pruned", "failed")) for line in events) == 4
    assert "[4/4 done" in events[-1]
    assert "Best trial" in result.stdout and "#/experiments/" in lines[-2] + lines[-1]
    sweep_dir = workdir / "sweeps" / "demo-sqlite"
    for leftover in ("events.out.tfevents*", "progress.csv", "result.json"):
        assert not list(sweep_dir.rglob(leftover)), leftover


def test_parent_run_carries_progress_best_so_far_and_a_description(local_sweep):
    workdir, _ = local_sweep
    client, parent, children = sweep_runs(f"sqlite:///{workdir / 'mlruns.db'}", "demo-sqlite", "scenesweep-tinynet")
    history = client.get_metric_history(parent.info.run_id, "best_val_accuracy")
    steps = {m.step for m in history}
    assert steps <= set(range(1, 5)) and max(steps) == 4  # step = trials ended
    best = max(c.data.metrics["val_accuracy"] for c in children if c.info.status == "FINISHED")
    assert max(m.value for m in history) == pytest.approx(best)
    tags = parent.data.tags
    assert ", 0 running; " in tags["scenesweep.progress"] and "scenesweep.heartbeat" in tags
    note = tags["mlflow.note.content"]
    assert "--name demo-sqlite" in note and "`demo`" in note and "| 1 | tinynet_" in note


def test_status_and_best_read_the_sweep_back(local_sweep):
    workdir, _ = local_sweep
    status = run_cli("status", "demo-sqlite", cwd=workdir, timeout=120)
    assert status.returncode == 0, status.stderr
    assert "4 trials" in status.stdout and "val_accuracy" in status.stdout
    best = run_cli("best", "demo-sqlite", "--top", "2", cwd=workdir, timeout=120)
    assert best.returncode == 0, best.stderr
    best_id = best.stdout.split("best trial ")[1].split()[0]
    assert f"best: {best_id}" in status.stdout
    assert '"input_size": 32' in best.stdout  # config printed with its real types


def test_trials_keep_to_their_cpus_and_record_their_own_overhead(local_sweep):
    workdir, _ = local_sweep
    _, _, children = sweep_runs(f"sqlite:///{workdir / 'mlruns.db'}", "demo-sqlite", "scenesweep-tinynet")
    finished = [c.data.metrics for c in children if c.info.status == "FINISHED"]
    assert finished
    for logged in finished:
        # Timings and resource use sit under perf/, apart from accuracy and loss; fit_seconds does not.
        assert "fit_seconds" in logged and "tune_seconds" not in logged
        metrics = {k.removeprefix("perf/"): v for k, v in logged.items()}
        # 1 CPU per trial (the default), two trials at once on this 2-core box: each trains on one
        # thread inside its Ray worker and keeps about one core busy, never both.
        assert metrics["threads"] == 1
        assert 0 < metrics["cpu_utilisation"] < 1.5
        # Disjoint parts of the trial's time: training (with its per-epoch MLflow logs and Tune
        # reports inside it), then MLflow before and after it (the run, the record handed off).
        assert 0 < metrics["epoch_log_seconds"] + metrics["tune_seconds"] < metrics["fit_seconds"]
        assert 0 < metrics["fit_seconds"] + metrics["tracking_seconds"] < metrics["trial_seconds"]
        # Off the trial's path, its node's recorder wrote the artifacts and the model.
        assert 0 < metrics["artifacts_seconds"] + metrics["model_log_seconds"] < metrics["record_seconds"]
    recorded_by = {c.data.tags.get("scenesweep.recorded_by") for c in children if c.info.status == "FINISHED"}
    assert recorded_by == {"recorder"}


def test_sweep_against_a_real_tracking_server(mlflow_server, tmp_path, demo_dataset):
    result = run_cli(
        "sweep",
        "--data",
        "demo",
        "--samples",
        "2",
        "--epochs",
        "2",
        "--name",
        "demo-http",
        "--tracking-uri",
        mlflow_server.uri,
        "--experiment",
        "http-test",
        *SMALL,
        cwd=tmp_path,
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    client, parent, finished = assert_sweep_recorded(
        mlflow_server.uri, "demo-http", experiment="http-test", trials=2, epochs=2
    )
    assert parent.info.artifact_uri.startswith("mlflow-artifacts:")
    stored = {p.name for p in (mlflow_server.root / "artifacts").rglob("*") if p.is_file()}
    assert {"trials.csv", "confusion_matrix.svg", "MLmodel"} <= stored  # proxied onto the server's disk
    assert not (tmp_path / "mlruns.db").exists() and not (tmp_path / "mlartifacts").exists()
    assert_model_matches_logged_predictions(mlflow_server.uri, client, finished[0], demo_dataset)


def test_ui_serves_the_local_store(local_sweep):
    import os
    import signal
    import subprocess
    import sys

    import requests

    from tests.conftest import ROOT, free_port, wait_for_http

    workdir, _ = local_sweep
    port = free_port()
    env = {k: v for k, v in os.environ.items() if k != "MLFLOW_TRACKING_URI"}
    ui = subprocess.Popen(
        [sys.executable, str(ROOT / "orchestrator.py"), "ui", "--port", str(port)],
        cwd=workdir,
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        base = f"http://127.0.0.1:{port}"
        wait_for_http(f"{base}/health", process=ui)
        found = requests.post(f"{base}/api/2.0/mlflow/experiments/search", json={"max_results": 10}, timeout=10).json()
        assert "scenesweep-tinynet" in [e["name"] for e in found["experiments"]]
        runs = requests.post(
            f"{base}/api/2.0/mlflow/runs/search",
            timeout=10,
            json={
                "experiment_ids": [e["experiment_id"] for e in found["experiments"]],
                "filter": "tags.`scenesweep.role` = 'trial' and attributes.status = 'FINISHED'",
            },
        ).json()["runs"]
        figure = requests.get(
            f"{base}/get-artifact",
            timeout=10,
            params={"path": "confusion_matrix.svg", "run_uuid": runs[0]["info"]["run_id"]},
        )
        # Served as an image, so the UI's artifact view draws it (a text/plain SVG would show as code).
        assert figure.status_code == 200 and figure.headers["Content-Type"].startswith("image/svg+xml")
        assert figure.content.startswith(b"<svg")
    finally:
        os.killpg(ui.pid, signal.SIGTERM)
        ui.wait(timeout=30)
