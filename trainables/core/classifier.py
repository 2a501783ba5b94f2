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
        probabilities = classifier.predict_proba(images)
        predictions = probabilities.argmax(axis=1)
        labels = np.asarray(labels)
        picked = np.clip(probabilities[np.arange(len(labels)), labels], 1e-12, 1.0)
        confusion = confusion_counts(labels, predictions, len(classifier.class_names))
        return cls(
            probabilities=probabilities,
            predictions=predictions,
            accuracy=float(np.mean(predictions == labels)),
            loss=float(-np.mean(np.log(picked))),
            confusion=confusion,
            report=classification_report(confusion, classifier.class_names),
        )


def confusion_counts(labels: np.ndarray, predictions: np.ndarray, classes: int) -> np.ndarray:
    """matrix[true, predicted] = images; what sklearn.metrics.confusion_matrix gives, without importing
    scikit-learn (about 1.7 s) into every net trial's worker."""
    matrix = np.zeros((classes, classes), dtype=np.int64)
    np.add.at(matrix, (np.asarray(labels, dtype=np.int64), np.asarray(predictions, dtype=np.int64)), 1)
    return matrix


def classification_report(confusion: np.ndarray, class_names) -> dict:
    """sklearn.metrics.classification_report(..., output_dict=True, zero_division=0), from the confusion
    matrix: per class and macro/weighted averages of precision, recall, f1-score, with support."""
    support = confusion.sum(axis=1)
    predicted = confusion.sum(axis=0)
    hits = np.diag(confusion).astype(float)
    precision = np.divide(hits, predicted, out=np.zeros_like(hits), where=predicted > 0)
    recall = np.divide(hits, support, out=np.zeros_like(hits), where=support > 0)
    both = precision + recall
    f1 = np.divide(2 * precision * recall, both, out=np.zeros_like(hits), where=both > 0)
    report: dict = {
        str(name): {"precision": float(p), "recall": float(r), "f1-score": float(f), "support": int(n)}
        for name, p, r, f, n in zip(class_names, precision, recall, f1, support)
    }
    total = int(support.sum())
    report["accuracy"] = float(hits.sum() / total) if total else 0.0
    weights = support / total if total else np.zeros_like(hits)
    for label, average in (("macro avg", np.mean), ("weighted avg", lambda v: float(np.sum(v * weights)))):
        report[label] = {
            "precision": float(average(precision)),
            "recall": float(average(recall)),
            "f1-score": float(average(f1)),
            "support": total,
        }
    return report
