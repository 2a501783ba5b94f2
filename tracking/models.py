"""Log a fitted classifier as the trial's MLflow pyfunc model named `model`.

The model is self-contained: the `trainables` package travels as code, the
classifier's saved folder as an artifact, and the requirements are pinned to
the versions that trained it (listed, not inferred: inference would load the
model in a subprocess for every trial).
"""

from __future__ import annotations

import logging
import tempfile
from importlib import metadata
from pathlib import Path

import numpy as np
import pandas as pd

import trainables
from trainables.classifier import SceneClassifier
from trainables.images import encode_png
from trainables.pyfunc_model import IMAGE_COLUMN

MODEL_NAME = "model"
_REQUIREMENTS = ("mlflow", "numpy", "pandas", "opencv-contrib-python-headless", "scikit-learn", "torch", "torchvision")


def log_classifier(run_id: str, classifier: SceneClassifier, example_images: np.ndarray, *, experiment_id: str,
                   model_id: str | None = None):
    """Log `classifier` under run `run_id` (of experiment `experiment_id`); returns MLflow's ModelInfo
    (model_uri, model_id)."""
    import mlflow
    from mlflow.models import Model, ModelSignature
    from mlflow.types import ColSpec, Schema

    package_dir = Path(trainables.__file__).parent
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
                name=MODEL_NAME,
                flavor=mlflow.pyfunc,
                run_id=run_id,
                python_model=str(package_dir / "pyfunc_entry.py"),
                artifacts={"classifier": str(saved)},
                code_paths=[str(package_dir)],
                signature=signature,
                input_example=example,
                pip_requirements=pinned_requirements(),
                model_id=model_id,
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
