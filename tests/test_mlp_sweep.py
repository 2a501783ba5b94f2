"""An MLP sweep end to end through the real CLI: the four modes of the paper's MLP section in
one search (embedded Ray, Optuna, a real MLflow server), and the best trial's model serving raw
images whatever its mode."""

import pytest

from tests.conftest import run_cli
from tests.sweep_checks import assert_model_matches_logged_predictions, assert_sweep_recorded

pytestmark = pytest.mark.slow

MODES = {"end_to_end", "deep_features_svm", "patches", "patch_bovw"}
# Small nets so four trials fit in a test; the mode and everything else stays searched.
PINS = ["layers=1", "width_0=64", "batch_size=128", "lr_finder=false", "codebook_size=32"]


def test_mlp_sweep_runs_every_mode(mlflow_server, tmp_path, demo_dataset):
    fixes = [arg for pin in PINS for arg in ("--fix", pin)]
    # Random search, seed 10: after the paper's configuration (patches) the three other modes follow.
    result = run_cli(
        "sweep",
        "--space",
        "mlp",
        "--data",
        "demo",
        "--samples",
        "4",
        "--epochs",
        "2",
        "--search",
        "random",
        "--seed",
        "10",
        "--scheduler",
        "fifo",
        "--max-concurrent",
        "2",
        "--name",
        "mlp-demo",
        "--tracking-uri",
        mlflow_server.uri,
        "--experiment",
        "mlp-test",
        *fixes,
        cwd=tmp_path,
        timeout=600,
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    client, parent, finished = assert_sweep_recorded(
        mlflow_server.uri, "mlp-demo", experiment="mlp-test", trials=4, epochs=2
    )
    assert {run.data.params["mode"] for run in finished} == MODES
    for run in finished:
        mode, params = run.data.params["mode"], run.data.params
        assert ("patch_size" in params) == (mode in ("patches", "patch_bovw"))
        assert ("svm_kernel" in params) == (mode in ("deep_features_svm", "patch_bovw"))
        assert 0 <= run.data.metrics["val_accuracy"] <= 1
    best = max(finished, key=lambda r: r.data.metrics["val_accuracy"])
    assert_model_matches_logged_predictions(mlflow_server.uri, client, best, demo_dataset)
    staged = next(r for r in finished if r.data.params["mode"] == "patch_bovw")
    assert_model_matches_logged_predictions(mlflow_server.uri, client, staged, demo_dataset)
