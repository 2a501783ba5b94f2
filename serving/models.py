"""Log a fitted classifier as the trial's MLflow pyfunc model (named after the trial), and load one back by URI.

The model is self-contained: the `serving`, `trainables` and `search_spaces` packages (which the
classifiers import their constants from) travel as code, the
classifier's saved folder as an artifact, and the requirements are pinned to
the versions that trained it (listed, not inferred: inference would load the
model in a subprocess for every trial).
"""

from __future__ import annotations

import logging
import os
import tempfile
from importlib import metadata
from pathlib import Path

import numpy as np
import pandas as pd
from mlflow.exceptions import MlflowException

import search_spaces
import serving
import trainables
from serving.pyfunc_model import IMAGE_COLUMN
from tracking.registry import RegistryError, first_line
from tracking.runs import require_existing_store
from tracking.uris import masked
from trainables.core.classifier import SceneClassifier
from trainables.core.images import encode_png

MODEL_NAME = "model"  # the logged model's name when the caller gives none
_REQUIREMENTS = ("mlflow", "numpy", "pandas", "opencv-contrib-python-headless", "scikit-learn", "torch", "torchvision")


def log_classifier(
    run_id: str,
    classifier: SceneClassifier,
    example_images: np.ndarray,
    *,
    experiment_id: str,
    name: str = MODEL_NAME,
    tags: dict | None = None,
):
    """Log `classifier` under run `run_id` (of experiment `experiment_id`) as model `name`; returns
    MLflow's ModelInfo (model_uri, model_id). `tags` override the worker's own context (MLflow would
    say the model was logged from Ray's default_worker.py)."""
    import mlflow
    from mlflow.models import Model, ModelSignature
    from mlflow.types import ColSpec, Schema

    packages = [str(Path(str(package.__file__)).parent) for package in (serving, trainables, search_spaces)]
    signature = ModelSignature(
        inputs=Schema([ColSpec("binary", IMAGE_COLUMN)]),
        outputs=Schema([ColSpec("double", name) for name in classifier.class_names]),
    )
    example = pd.DataFrame({IMAGE_COLUMN: [encode_png(image) for image in example_images[:2]]})
    # MLflow files a new logged model under the fluent API's experiment (Default unless set), not
    # under its source run's: point it at the run's experiment, where the UI shows the run.
    mlflow.set_experiment(experiment_id=experiment_id)
    with tempfile.TemporaryDirectory() as tmp:
        saved = classifier.save(Path(tmp) / "classifier")
        quiet = logging.getLogger("mlflow")
        level = quiet.level
        quiet.setLevel(logging.WARNING)  # MLflow narrates every step at INFO
        try:
            return Model.log(
                artifact_path=None,
                name=name,
                tags=tags,
                flavor=mlflow.pyfunc,
                run_id=run_id,
                python_model=str(Path(serving.__file__).parent / "pyfunc_entry.py"),
                artifacts={"classifier": str(saved)},
                code_paths=packages,
                signature=signature,
                input_example=example,
                pip_requirements=pinned_requirements(),
            )
        finally:
            quiet.setLevel(level)


def pinned_requirements() -> list[str]:
    pins = []
    for name in _REQUIREMENTS:
        try:
            pins.append(f"{name}=={metadata.version(name)}")
        except metadata.PackageNotFoundError:
            continue
    return pins


def load_model(uri: str, *, tracking_uri: str):
    """Load a pyfunc model (`models:/NAME@ALIAS`, `models:/NAME/VERSION`, `runs:/RUN/TRIAL_NAME`, a folder).

    Torch weights load onto the CPU when no GPU is present (see TorchClassifier.load_state).
    """
    import mlflow

    if uri.startswith(("models:/", "runs:/")):
        require_existing_store(tracking_uri)  # never an empty store created by looking
    mlflow.set_tracking_uri(tracking_uri)
    mlflow.set_registry_uri(tracking_uri)
    if "://" not in uri and ":/" not in uri and not os.path.exists(uri):
        raise RegistryError(
            f"--model {uri!r} is neither a model URI nor a folder; "
            "use models:/NAME@champion, models:/NAME/VERSION, runs:/RUN_ID/TRIAL_NAME or a model folder"
        )
    try:
        return mlflow.pyfunc.load_model(uri)
    except MlflowException as exc:
        raise RegistryError(
            f"cannot load model {uri} from {masked(tracking_uri)}: {first_line(exc)}; "
            "promote a sweep first (`scenesweep promote SWEEP`) or check --tracking-uri"
        ) from None
    except OSError as exc:
        raise RegistryError(f"cannot load model {uri}: {exc}") from None


def scene_classifier(model):
    """The SceneClassifier inside a scenesweep pyfunc model (for Grad-CAM), or a RegistryError."""
    try:
        return model.unwrap_python_model().classifier
    except (AttributeError, MlflowException):
        raise RegistryError("this model was not logged by scenesweep (no scene classifier inside)") from None


def open_model(uri: str, *, tracking_uri: str):
    """load_model, after checking the tracking store where the URI lives in it."""
    from tracking.runs import check_tracking, require_existing_store

    if uri.startswith(("models:/", "runs:/")):
        require_existing_store(tracking_uri)
        check_tracking(tracking_uri)
    return load_model(uri, tracking_uri=tracking_uri)
