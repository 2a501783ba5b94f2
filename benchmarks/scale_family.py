"""A trivial family for benchmarks/scale.py: softmax regression on random features of tiny thumbnails.

A few hundred milliseconds of real work per trial (numpy, one thread), reported per epoch like the
nets (train/val loss and accuracy each epoch), so a trial goes through the whole sweep path: its
MLflow run, per-epoch logs, Tune reports, artifacts and a logged model. Registered at run time
(`register(SCALE_FAMILY)` below, run again in each Ray worker when it imports this module), the way
README's "Adding a model family" describes; the workers find it through PYTHONPATH.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from trainables.core.classifier import SceneClassifier
from trainables.core.images import resize_square
from trainables.families import Family, register

# --- the search space ----------------------------------------------------------------------------

PAPER_BEST = {"lr": 0.5, "pixels": 8, "features": 128, "weight_decay": 1e-4}


def suggest(trial) -> dict:
    trial.suggest_float("lr", 1e-2, 2.0, log=True)
    trial.suggest_categorical("pixels", [6, 8, 12])
    trial.suggest_categorical("features", [64, 128, 256])
    trial.suggest_float("weight_decay", 1e-6, 1e-2, log=True)
    return {"steps_per_epoch": 40}


# --- the trainable -------------------------------------------------------------------------------


class RandomFeatureSoftmax(SceneClassifier):
    def __init__(self, *, projection, weights, pixels: int, class_names, image_size: int):
        super().__init__(class_names=class_names, image_size=image_size)
        self.projection, self.weights, self.pixels = projection, weights, pixels

    def features(self, images: np.ndarray) -> np.ndarray:
        thumbs = np.stack([resize_square(image, self.pixels) for image in images]).reshape(len(images), -1)
        return np.cos((thumbs / np.float32(255.0)).astype(np.float32) @ self.projection)

    def predict_proba(self, images: np.ndarray) -> np.ndarray:
        return softmax(self.features(images) @ self.weights)

    @property
    def num_params(self) -> int:
        return int(self.weights.size)

    def save_state(self, directory: Path) -> dict:
        np.savez(directory / "weights.npz", projection=self.projection, weights=self.weights)
        return {"pixels": self.pixels}

    @classmethod
    def load_state(cls, directory: Path, state: dict, *, class_names, image_size: int) -> RandomFeatureSoftmax:
        arrays = np.load(directory / "weights.npz")
        return cls(
            projection=arrays["projection"],
            weights=arrays["weights"],
            pixels=state["pixels"],
            class_names=class_names,
            image_size=image_size,
        )


def softmax(logits: np.ndarray) -> np.ndarray:
    shifted = np.exp(logits - logits.max(axis=1, keepdims=True))
    return shifted / shifted.sum(axis=1, keepdims=True)


def loss_and_accuracy(probabilities: np.ndarray, labels: np.ndarray) -> tuple[float, float]:
    picked = probabilities[np.arange(len(labels)), labels]
    return float(-np.log(np.maximum(picked, 1e-12)).mean()), float((probabilities.argmax(axis=1) == labels).mean())


def fit(config: dict, dataset, session) -> RandomFeatureSoftmax:
    rng = np.random.default_rng(0)
    pixels, width = int(config["pixels"]), int(config["features"])
    classes = len(dataset.class_names)
    classifier = RandomFeatureSoftmax(
        projection=(rng.normal(0, 1.0, (pixels * pixels * 3, width)) / np.sqrt(pixels)).astype(np.float32),
        weights=np.zeros((width, classes), dtype=np.float32),
        pixels=pixels,
        class_names=dataset.class_names,
        image_size=dataset.image_size,
    )
    x_train, x_val = classifier.features(dataset.x_train), classifier.features(dataset.x_val)
    onehot = np.eye(classes, dtype=np.float32)[dataset.y_train]
    lr, decay = np.float32(config["lr"]), np.float32(config["weight_decay"])
    for epoch in range(1, session.max_epochs + 1):
        for _ in range(int(config.get("steps_per_epoch", 40))):
            gradient = x_train.T @ (softmax(x_train @ classifier.weights) - onehot) / len(x_train)
            classifier.weights -= lr * (gradient + decay * classifier.weights)
        train_loss, train_accuracy = loss_and_accuracy(softmax(x_train @ classifier.weights), dataset.y_train)
        val_loss, val_accuracy = loss_and_accuracy(softmax(x_val @ classifier.weights), dataset.y_val)
        session.report_epoch(
            epoch,
            {
                "train_loss": train_loss,
                "train_accuracy": train_accuracy,
                "val_loss": val_loss,
                "val_accuracy": val_accuracy,
            },
        )
    return classifier


# --- one registry entry --------------------------------------------------------------------------

SCALE_FAMILY = register(Family("scale_softmax", metric="val_accuracy", space=__name__, trainable=__name__))
