"""README's "Adding a model family", followed for real: a logistic regression over pixels, defined
in this file and registered at run time, swept end to end through the CLI without editing any
project file.

Everything a family is lives below: a search space (`suggest`, `PAPER_BEST`), a trainable (`fit`
returning a `SceneClassifier`) and one `register(Family(...))`. Trials import this module by its
path in the Ray workers, so it must be importable there: installed, or on PYTHONPATH (as here).
"""

from __future__ import annotations

from pathlib import Path

import joblib
import numpy as np
import pytest

from trainables.core.classifier import SceneClassifier
from trainables.core.images import resize_square
from trainables.families import FAMILIES, Family, register

# --- the search space ----------------------------------------------------------------------------

PAPER_BEST = {"C": 1.0, "pixels": 16}


def suggest(trial) -> dict:
    trial.suggest_float("C", 1e-3, 1e2, log=True)
    trial.suggest_categorical("pixels", [8, 16])
    return {}


# --- the trainable -------------------------------------------------------------------------------


class PixelLogReg(SceneClassifier):
    def __init__(self, model, *, pixels: int, class_names, image_size: int):
        super().__init__(class_names=class_names, image_size=image_size)
        self.model, self.pixels = model, pixels
        self.val_accuracy = 0.0

    def features(self, images: np.ndarray) -> np.ndarray:
        return np.stack([resize_square(image, self.pixels) for image in images]).reshape(len(images), -1) / 255.0

    def predict_proba(self, images: np.ndarray) -> np.ndarray:
        return self.model.predict_proba(self.features(images))

    @property
    def num_params(self) -> int:
        return int(self.model.coef_.size + self.model.intercept_.size)

    @property
    def extra_metrics(self) -> dict:
        return {"val_accuracy": self.val_accuracy}

    def save_state(self, directory: Path) -> dict:
        joblib.dump(self.model, directory / "logreg.joblib")
        return {"pixels": self.pixels}

    @classmethod
    def load_state(cls, directory: Path, state: dict, *, class_names, image_size: int) -> PixelLogReg:
        return cls(
            joblib.load(directory / "logreg.joblib"),
            pixels=state["pixels"],
            class_names=class_names,
            image_size=image_size,
        )


def fit(config: dict, dataset, session) -> PixelLogReg:
    from sklearn.linear_model import LogisticRegression

    classifier = PixelLogReg(
        None, pixels=int(config["pixels"]), class_names=dataset.class_names, image_size=dataset.image_size
    )
    classifier.model = LogisticRegression(C=float(config["C"]), max_iter=300)
    classifier.model.fit(classifier.features(dataset.x_train), dataset.y_train)
    predicted = classifier.predict_proba(dataset.x_val).argmax(axis=1)
    classifier.val_accuracy = float(np.mean(predicted == dataset.y_val))
    return classifier


# --- one registry entry --------------------------------------------------------------------------

PIXEL_LOGREG = Family("pixel_logreg", metric="val_accuracy", space=__name__, trainable=__name__, per_epoch=False)
register(PIXEL_LOGREG)  # also in each Ray worker, when it imports this module to run `fit`


@pytest.fixture
def pixel_logreg():
    register(PIXEL_LOGREG)
    yield PIXEL_LOGREG
    FAMILIES.pop(PIXEL_LOGREG.name, None)  # other tests see only the project's own families


@pytest.mark.slow
def test_a_family_defined_outside_the_project_sweeps_end_to_end(pixel_logreg, tmp_path, monkeypatch):
    import ray
    from mlflow.tracking import MlflowClient

    import orchestrator
    from serving.models import load_model
    from sweep.results import load_sweep
    from trainables.core.data import DataSpec, load_dataset

    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("PYTHONPATH", str(Path(__file__).resolve().parents[1]))  # the workers import `tests...`
    uri = f"sqlite:///{tmp_path / 'mlruns.db'}"
    ray.shutdown()  # a Ray started earlier in this process would not have the workers' PYTHONPATH
    try:
        code = orchestrator.main(
            [
                "sweep",
                "--space",
                "pixel_logreg",
                "--data",
                "demo",
                "--samples",
                "2",
                "--name",
                "logreg",
                "--tracking-uri",
                uri,
                "--storage",
                str(tmp_path / "sweeps"),
            ]
        )
    finally:
        ray.shutdown()
    assert code == 0

    record = load_sweep("logreg", uri)
    assert record.family is pixel_logreg
    assert [row.status for row in record.summary.rows] == ["FINISHED", "FINISHED"]
    best = record.summary.best
    assert best.config["pixels"] in (8, 16) and 0.0 <= best.metrics["val_accuracy"] <= 1.0
    assert best.metrics["params"] == (3 * best.config["pixels"] ** 2 + 1) * 8  # 8 demo classes
    # The search starts from the family's default configuration.
    assert PAPER_BEST in [row.config for row in record.summary.rows]

    model = load_model(best.model_uri, tracking_uri=uri)  # the served model takes raw images
    images = load_dataset(DataSpec()).x_test[:3]
    import pandas as pd

    from trainables.core.images import encode_png

    probabilities = model.predict(pd.DataFrame({"image": [encode_png(image) for image in images]}))
    assert probabilities.shape == (3, 8) and np.allclose(probabilities.sum(axis=1), 1.0, atol=1e-5)
    assert MlflowClient(uri).get_run(best.run_id).data.tags["scenesweep.family"] == "pixel_logreg"
