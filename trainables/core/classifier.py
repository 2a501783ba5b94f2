"""The fitted-model contract every family returns, and its evaluation.

A `SceneClassifier` maps RGB uint8 images at the dataset's resolution to class
probabilities, and saves itself to a folder that `SceneClassifier.load` can
rebuild without the training code's state. The served model (pyfunc) is a thin
wrapper around exactly this, so what was evaluated is what gets served.
"""

from __future__ import annotations

import importlib
import json
from abc import ABC, abstractmethod
from dataclasses import dataclass
from pathlib import Path

import numpy as np

META_FILE = "classifier.json"


class SceneClassifier(ABC):
    def __init__(self, *, class_names, image_size: int):
        self.class_names = list(class_names)
        self.image_size = int(image_size)

    @abstractmethod
    def predict_proba(self, images: np.ndarray) -> np.ndarray:
        """(N, image_size, image_size, 3) uint8 RGB -> (N, classes) probabilities."""

    @abstractmethod
    def save_state(self, directory: Path) -> dict:
        """Write the fitted state into `directory`; return what `load_state` needs (JSON-able)."""

    @classmethod
    @abstractmethod
    def load_state(cls, directory: Path, state: dict, *, class_names, image_size: int) -> SceneClassifier:
        """Rebuild the classifier from `save_state`'s folder and dict."""

    @property
    def num_params(self) -> int:
        """Trainable parameters (the denominator of accuracy_per_param)."""
        return 0

    @property
    def extra_metrics(self) -> dict:
        """Final metrics the family adds beyond test_* (e.g. BoVW's cv_accuracy)."""
        return {}

    def save(self, directory: Path) -> Path:
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        state = self.save_state(directory)
        meta = {
            "classifier": f"{type(self).__module__}:{type(self).__qualname__}",
            "class_names": self.class_names,
            "image_size": self.image_size,
            "state": state,
        }
        (directory / META_FILE).write_text(json.dumps(meta, indent=2))
        return directory

    @staticmethod
    def load(directory: Path) -> SceneClassifier:
        directory = Path(directory)
        meta = json.loads((directory / META_FILE).read_text())
        module_name, _, class_name = meta["classifier"].partition(":")
        cls = getattr(importlib.import_module(module_name), class_name)
        return cls.load_state(directory, meta["state"], class_names=meta["class_names"], image_size=meta["image_size"])


@dataclass(frozen=True)
class Evaluation:
    probabilities: np.ndarray
    predictions: np.ndarray
    accuracy: float
    loss: float
    confusion: np.ndarray
    report: dict

    @classmethod
    def of(cls, classifier: SceneClassifier, images: np.ndarray, labels: np.ndarray) -> Evaluation:
        from sklearn.metrics import classification_report, confusion_matrix

        probabilities = classifier.predict_proba(images)
        predictions = probabilities.argmax(axis=1)
        classes = range(len(classifier.class_names))
        picked = np.clip(probabilities[np.arange(len(labels)), labels], 1e-12, 1.0)
        report = classification_report(
            labels,
            predictions,
            labels=list(classes),
            target_names=classifier.class_names,
            output_dict=True,
            zero_division=0,
        )
        return cls(
            probabilities=probabilities,
            predictions=predictions,
            accuracy=float(np.mean(predictions == labels)),
            loss=float(-np.mean(np.log(picked))),
            confusion=confusion_matrix(labels, predictions, labels=list(classes)),
            report=report,
        )
