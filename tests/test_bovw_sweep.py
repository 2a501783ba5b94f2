"""A BoVW sweep end to end through the real CLI: embedded Ray, Optuna, a real MLflow server,
the descriptor cache shared by concurrent trials, and the served pyfunc model."""

import pytest
from mlflow.tracking import MlflowClient

from tests.conftest import run_cli
from tests.sweep_checks import assert_model_matches_logged_predictions, assert_sweep_recorded
from tracking.provenance import perf_key

pytestmark = pytest.mark.slow

# Descriptors pinned so every trial shares one cache entry; everything after them is searched.
PINS = [
    "descriptor=dense_sift",
    "upscale=1",
    "dense_step=12",
    "patch_sizes=8",
    "color=grey",
    "rootsift=false",
    "pyramid_levels=1",
]


def test_bovw_sweep_records_cv_trials_and_shares_descriptors(mlflow_server, tmp_path, demo_dataset):
    fixes = [arg for pin in PINS for arg in ("--fix", pin)]
    result = run_cli(
        "sweep",
        "--space",
        "bovw",
        "--data",
        "demo",
        "--samples",
        "3",
        "--cv-folds",
        "3",
        "--max-concurrent",
        "2",
        "--name",
        "bovw-demo",
        "--tracking-uri",
        mlflow_server.uri,
        "--experiment",
        "bovw-test",
        "--seed",
        "1",
        *fixes,
        cwd=tmp_path,
        timeout=600,
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert "cv_accuracy" in result.stdout and "Best trial" in result.stdout
    client, parent, finished = assert_sweep_recorded(
        mlflow_server.uri, "bovw-demo", experiment="bovw-test", trials=3, epochs=1, per_epoch=False
    )
    runs = [MlflowClient(mlflow_server.uri).get_run(r.info.run_id) for r in finished]
    for run in runs:
        metrics = run.data.metrics
        assert 0 <= metrics["cv_accuracy"] <= 1 and "cv_accuracy_std" in metrics
        assert metrics["cv_folds"] == 3 and run.data.params["descriptor"] == "dense_sift"
        assert not run.data.tags.get("scenesweep.pruned")  # FIFO: BoVW reports once, nothing is cut short
    # Two descriptor entries in all (train+val, test), computed once however many trials ran at once.
    assert sum(r.data.metrics[perf_key("descriptor_cache_misses")] for r in runs) <= 2
    assert sum(r.data.metrics[perf_key("descriptor_cache_hits")] for r in runs) >= 2 * len(runs) - 2
    assert len(list((tmp_path / "sweeps" / "cache" / "descriptors").glob("*.npz"))) == 2
    best = max(runs, key=lambda r: r.data.metrics["cv_accuracy"])
    assert_model_matches_logged_predictions(mlflow_server.uri, client, best, demo_dataset)
