"""Assertions about what a finished sweep left in MLflow, shared by the end-to-end tests."""

from __future__ import annotations

import json
from pathlib import Path

import mlflow
import numpy as np
import pandas as pd
from mlflow.tracking import MlflowClient

from tracking.uris import fluent_store
from trainables.core.images import encode_png

TRIAL_ARTIFACTS = {"confusion_matrix.svg", "classification_report.json", "test_predictions.json"}
SWEEP_ARTIFACTS = {"trials.csv", "best_trial.json", "study"}


def logged_predictions(client: MlflowClient, run_id: str) -> pd.DataFrame:
    """The trial's test predictions, logged as an MLflow table (image, true, predicted, probability)."""
    path = client.download_artifacts(run_id, "test_predictions.json")
    return pd.read_json(path, orient="split")


STAGED_MLP_MODES = {"deep_features_svm", "patches", "patch_bovw"}


def sweep_runs(uri: str, sweep: str, experiment: str):
    client = MlflowClient(uri)
    experiment_id = client.get_experiment_by_name(experiment).experiment_id
    runs = client.search_runs([experiment_id], filter_string=f"tags.`scenesweep.sweep` = '{sweep}'")
    parents = [r for r in runs if r.data.tags.get("scenesweep.role") == "sweep"]
    children = [r for r in runs if r.data.tags.get("scenesweep.role") == "trial"]
    assert len(parents) == 1, f"expected one parent run, found {len(parents)}"
    return client, parents[0], children


def artifact_names(client, run_id: str) -> set[str]:
    return {a.path for a in client.list_artifacts(run_id)}


def assert_sweep_recorded(uri: str, sweep: str, *, experiment: str, trials: int, epochs: int, per_epoch=True):
    client, parent, children = sweep_runs(uri, sweep, experiment)
    assert parent.info.status == "FINISHED"
    assert SWEEP_ARTIFACTS <= artifact_names(client, parent.info.run_id)
    assert len(children) == trials
    assert len({c.data.tags["scenesweep.trial_id"] for c in children}) == trials
    finished = []
    for child in children:
        tags, status = child.data.tags, child.info.status
        assert tags["mlflow.parentRunId"] == parent.info.run_id
        assert status in ("FINISHED", "KILLED", "FAILED"), status
        if status == "KILLED":
            assert tags.get("scenesweep.pruned") == "true"
        if status == "FAILED":
            assert tags.get("scenesweep.error")
        if status != "FINISHED":
            continue
        finished.append(child)
        metrics = child.data.metrics
        for key in ("test_accuracy", "test_loss", "params", "accuracy_per_param", "fit_seconds"):
            assert key in metrics, key
        assert metrics["accuracy_per_param"] == metrics["test_accuracy"] * 1e5 / metrics["params"]
        expected = TRIAL_ARTIFACTS | ({"learning_curves.svg"} if per_epoch else set())
        assert expected <= artifact_names(client, child.info.run_id)
        if per_epoch:
            for key in ("train_loss", "train_accuracy", "val_loss", "val_accuracy", "epoch_seconds"):
                steps = [m.step for m in client.get_metric_history(child.info.run_id, key)]
                # A second stage after the net (an MLP's SVM or patch aggregation) adds the whole
                # pipeline's val_accuracy as the step after the last epoch.
                staged = key == "val_accuracy" and child.data.params.get("mode") in STAGED_MLP_MODES
                assert sorted(steps) == list(range(1, epochs + 1 + staged)), (key, steps)
        assert tags["scenesweep.model_uri"].startswith("models:/")
        model = client.get_logged_model(tags["scenesweep.model_uri"].removeprefix("models:/"))
        assert model.experiment_id == child.info.experiment_id and model.source_run_id == child.info.run_id
    assert finished, "no trial finished"
    best = json.loads(Path(client.download_artifacts(parent.info.run_id, "best_trial.json")).read_text())
    metric = "val_accuracy" if per_epoch else "cv_accuracy"
    top = max(r.data.metrics[metric] for r in finished)  # trials may tie: any of them is the best
    chosen = [r for r in finished if r.info.run_id == best["run_id"]]
    assert chosen and chosen[0].data.metrics[metric] == top, (best, top)
    return client, parent, finished


def assert_model_matches_logged_predictions(uri: str, client, run, dataset) -> None:
    """The logged pyfunc model, fed PNG bytes of the test images, predicts what the trial logged."""
    with fluent_store(uri):
        model = mlflow.pyfunc.load_model(run.data.tags["scenesweep.model_uri"])
    frame = pd.DataFrame({"image": [encode_png(image) for image in dataset.x_test]})
    probabilities = model.predict(frame)
    assert list(probabilities.columns) == list(dataset.class_names)
    assert np.allclose(probabilities.to_numpy().sum(axis=1), 1.0, atol=1e-4)
    expected = list(logged_predictions(client, run.info.run_id)["predicted"])
    predicted = [dataset.class_names[i] for i in probabilities.to_numpy().argmax(axis=1)]
    agreement = np.mean([a == b for a, b in zip(predicted, expected)])
    assert agreement == 1.0, agreement
