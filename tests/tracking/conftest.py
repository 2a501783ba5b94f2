"""A real local MLflow store (sqlite + artifacts folder) holding runs with real logged classifiers."""

from __future__ import annotations

from dataclasses import dataclass

import pytest
import torch
from mlflow.tracking import MlflowClient

from sweep.models import log_classifier
from tracking.uris import fluent_store
from trainables.core.torch_loop import TorchClassifier
from trainables.tinynet import BUILDER, build_model


@dataclass(frozen=True)
class LoggedTrial:
    run_id: str
    model_uri: str


@dataclass(frozen=True)
class LocalStore:
    uri: str
    client: MlflowClient
    trials: list[LoggedTrial]
    class_names: list[str]


def tiny_classifier(class_names, *, seed: int) -> TorchClassifier:
    torch.manual_seed(seed)
    model = build_model({"blocks": 2, "base_width": 4}, len(class_names))
    return TorchClassifier(
        model,
        builder=BUILDER,
        config={"blocks": 2, "base_width": 4},
        class_names=class_names,
        image_size=32,
        input_size=32,
        mean=[0.5] * 3,
        std=[0.25] * 3,
    )


@pytest.fixture(scope="module")
def local_store(tmp_path_factory, demo_dataset) -> LocalStore:
    root = tmp_path_factory.mktemp("local-store")
    uri = f"sqlite:///{root / 'mlflow.db'}"
    with fluent_store(uri):  # Model.log writes through the fluent API's store
        yield _logged_store(root, uri, demo_dataset)


def _logged_store(root, uri: str, demo_dataset) -> LocalStore:
    client = MlflowClient(uri)
    experiment_id = client.create_experiment("registry-tests", artifact_location=(root / "artifacts").as_uri())
    names = list(demo_dataset.class_names)
    trials = []
    for seed in range(2):
        run_id = client.create_run(experiment_id, run_name=f"trial-{seed}").info.run_id
        info = log_classifier(
            run_id, tiny_classifier(names, seed=seed), demo_dataset.x_test[:2], experiment_id=experiment_id
        )
        client.set_terminated(run_id)
        trials.append(LoggedTrial(run_id=run_id, model_uri=info.model_uri))
    return LocalStore(uri=uri, client=client, trials=trials, class_names=names)
