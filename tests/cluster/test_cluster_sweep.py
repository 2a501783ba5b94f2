"""A sweep on a real multi-node Ray cluster, tracked by an auth-enabled MLflow on PostgreSQL + S3.

The sweep's one searched parameter is whether the LR finder runs: with it the trial trains, without
it the pinned lr (0.3, SGD, momentum 0.99, a deep residual net without batchnorm) diverges at epoch
1. So one sweep shows both: trials on both nodes with everything recorded, and a diverging trial
that fails alone while the sweep goes on and `best` ignores it.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from mlflow.tracking import MlflowClient

from search_spaces.tinynet import PAPER_BEST
from tests.conftest import run_cli
from tests.sweep_checks import assert_sweep_recorded, sweep_runs

pytestmark = pytest.mark.slow

EXPERIMENT = "cluster"
SWEEP = "cluster-main"
DIVERGES_WITHOUT_LR_FINDER = {
    **{k: v for k, v in PAPER_BEST.items() if k != "lr_finder"},
    "input_size": 32,
    "base_width": 8,
    "blocks": 6,
    "convs_per_block": 2,
    "residual": True,
    "batchnorm": False,
    "optimizer": "sgd",
    "lr": 0.3,
    "momentum": 0.99,
    "one_cycle": False,
    # Small batches and wide kernels: NaN within the first epoch on the default split (seed 0; within two on
    # seed 1's), while the LR finder still picks a rate that trains. Since the logits' layer keeps PyTorch's
    # default init, the batch of 32 and 3x3 kernels alone diverged only at epoch 2, or not at all at seed 0.
    "batch_size": 16,
    "kernel_size": 7,
}


def pins(config: dict) -> list[str]:
    return [arg for key, value in config.items() for arg in ("--fix", f"{key}={value}")]


@pytest.fixture(scope="module")
def cluster_sweep(topology, tmp_path_factory):
    workdir = tmp_path_factory.mktemp("cluster-sweep")
    result = run_cli(
        "sweep",
        "--data",
        "demo",
        "--samples",
        "3",
        "--epochs",
        "2",
        "--seed",
        "1",
        "--scheduler",
        "fifo",
        "--name",
        SWEEP,
        "--experiment",
        EXPERIMENT,
        *topology.cluster_args(workdir / "sweeps"),
        *pins(DIVERGES_WITHOUT_LR_FINDER),
        cwd=workdir,
        env=topology.mlflow.client_env,
    )
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-4000:]
    return workdir, result


def test_every_trial_recorded_from_both_nodes(topology, cluster_sweep):
    workdir, result = cluster_sweep
    client, parent, finished = assert_sweep_recorded(topology.uri, SWEEP, experiment=EXPERIMENT, trials=3, epochs=2)
    trials = client.search_runs(
        [parent.info.experiment_id], filter_string=f"tags.`mlflow.parentRunId` = '{parent.info.run_id}'"
    )
    nodes = {run.data.tags.get("scenesweep.node") for run in trials}
    assert "127.0.0.2" in nodes, nodes  # a trial ran on the worker node (its run names the node)
    assert parent.info.artifact_uri.startswith("mlflow-artifacts:")  # proxied: workers need no S3 credentials
    stored = topology.s3.keys("artifacts/")
    for run in [parent, *finished]:
        mine = {key.rsplit("/", 1)[-1] for key in stored if f"/{run.info.run_id}/" in key}
        expected = (
            {"trials.csv", "best_trial.json"} if run is parent else {"confusion_matrix.svg", "learning_curves.svg"}
        )
        assert expected <= mine, (run.info.run_name, mine)
    report_key = next(
        k for k in stored if f"/{finished[0].info.run_id}/" in k and k.endswith("classification_report.json")
    )
    downloaded = Path(client.download_artifacts(finished[0].info.run_id, "classification_report.json")).read_bytes()
    assert topology.s3.read(report_key) == downloaded and "accuracy" in json.loads(downloaded)
    model_files = {key.rsplit("/", 1)[-1] for key in stored if "/models/" in key}
    assert "MLmodel" in model_files, model_files  # the logged models went to S3 as well


def test_a_diverging_trial_fails_alone_and_best_ignores_it(topology, cluster_sweep):
    workdir, result = cluster_sweep
    _, parent, children = sweep_runs(topology.uri, SWEEP, EXPERIMENT)
    by_status = {status: [c for c in children if c.info.status == status] for status in ("FINISHED", "FAILED")}
    assert by_status["FINISHED"] and by_status["FAILED"], [c.info.status for c in children]
    for failed in by_status["FAILED"]:
        assert failed.data.params["lr_finder"] == "False"
        # at epoch 1 or 2 of 2: which one depends on the data split (--seed 1) and is not what is tested here
        assert re.match(
            r"training diverged: train loss is nan at epoch [12] \(lr 0\.3\)", failed.data.tags["scenesweep.error"]
        )
        assert failed.data.tags["scenesweep.attempt"] == "1"  # deterministic: not retried
    best = run_cli("best", SWEEP, "--top", "3", "--tracking-uri", topology.uri, cwd=workdir, timeout=120)
    assert best.returncode == 0, best.stderr
    failed_ids = {c.data.tags["scenesweep.trial_id"] for c in by_status["FAILED"]}
    assert not any(trial_id in best.stdout for trial_id in failed_ids), best.stdout
    assert parent.data.tags["scenesweep.best_trial_id"] not in failed_ids
    assert f"{len(by_status['FAILED'])} failed" in result.stdout


def test_credentials_are_never_recorded(topology, cluster_sweep):
    """The password reached every worker (the runs exist) but no param, tag, artifact or Tune file holds it."""
    workdir, _ = cluster_sweep
    client = MlflowClient(topology.uri)
    secret = topology.password.encode()
    texts = []
    experiment_ids = [e.experiment_id for e in client.search_experiments()]
    for run in client.search_runs(experiment_ids, max_results=1000):
        texts += [*run.data.params.items(), *run.data.tags.items(), run.info.artifact_uri]
    for model in client.search_logged_models(experiment_ids):
        texts += [*model.params.items(), *model.tags.items(), model.artifact_location]
    assert texts and not any(topology.password in str(item) for item in texts)
    objects = topology.s3.keys()
    assert any(key.endswith("MLmodel") for key in objects)
    assert not [key for key in objects if secret in topology.s3.read(key)]
    tune_files = [p for p in (workdir / "sweeps").rglob("*") if p.is_file()]
    assert tune_files and not [p for p in tune_files if secret in p.read_bytes()]


@pytest.mark.parametrize(
    "password, refusal",
    [(None, "are missing"), ("not-the-password", "were refused")],
    ids=["no credentials", "wrong credentials"],
)
def test_auth_server_refuses_before_any_trial(topology, tmp_path, password, refusal):
    env = {"MLFLOW_TRACKING_USERNAME": None if password is None else "admin", "MLFLOW_TRACKING_PASSWORD": password}
    result = run_cli(
        "sweep",
        "--data",
        "demo",
        "--samples",
        "1",
        "--name",
        "refused",
        *topology.cluster_args(tmp_path / "sweeps"),
        cwd=tmp_path,
        env=env,
        timeout=120,
    )
    assert result.returncode == 2 and "Traceback" not in result.stderr, result.stderr
    message = result.stderr.strip()
    assert message.startswith("scenesweep: error: ") and "\n" not in message
    assert refusal in message and "MLFLOW_TRACKING_USERNAME" in message and "MLFLOW_TRACKING_PASSWORD" in message
    assert not (tmp_path / "sweeps").exists()
