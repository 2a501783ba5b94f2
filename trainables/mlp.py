"""The paper's MLP experiments as one family with four modes (config key `mode`).

- end_to_end: images resized to S x S, flattened, an MLP with a softmax head.
- deep_features_svm: train that MLP, then an SVM on one hidden layer's activations.
- patches: the MLP learns P x P patches labelled with their image's class; an image's
  prediction aggregates its patches' probabilities (mean, mean of logs, or a vote).
- patch_bovw: the patch MLP's hidden activations are dense descriptors for a BoVW
  encoding (codebook + histogram) and an SVM, reusing the BoVW family's steps.

Every MLP trains in the shared loop (`torch_loop.train_classifier`), so per-epoch
curves, checkpoints and ASHA work as for the CNNs. Where a second stage follows
(SVM, aggregation, BoVW), its validation accuracy becomes the trial's
`val_accuracy` (the net alone stays in the curves) and the saved classifier
includes every stage, so the served model takes raw images in every mode.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import joblib
import numpy as np
import torch
import torch.nn as nn
from threadpoolctl import threadpool_limits

from trainables.classifier import SceneClassifier
from trainables.patches import extract_patches
from trainables.session import TrialFailed
from trainables.tinynet import ACTIVATIONS
from trainables.torch_loop import TorchClassifier, train_classifier

BUILDER = "trainables.mlp:build_model"
_FEATURE_BATCH = 1024


def fit(config: dict, dataset, session) -> SceneClassifier:
    mode = config.get("mode", "end_to_end")
    if mode in ("end_to_end", "deep_features_svm"):
        config = {"input_size": dataset.image_size, **config}
        net = train_classifier(build_model(config, dataset.num_classes), config, dataset, session, builder=BUILDER)
        if mode == "end_to_end":
            return net
        return HiddenFeatureSVM.fit(net, config, dataset, threads=session.threads)
    if mode not in ("patches", "patch_bovw"):
        raise TrialFailed(f"unknown MLP mode {mode!r}; choose end_to_end, deep_features_svm, patches or patch_bovw")
    patch = min(int(config.get("patch_size", 32)), dataset.image_size)
    config = {**config, "input_size": patch}
    net = train_classifier(build_model(config, dataset.num_classes), config, patch_dataset(dataset, patch), session,
                           builder=BUILDER)
    if mode == "patches":
        return PatchAggregator.fitted(net, patch=patch, aggregation=config.get("aggregation", "mean_prob"),
                                      dataset=dataset)
    from trainables.mlp_bovw import PatchBoVW

    return PatchBoVW.fit(net, config, dataset, patch=patch, threads=session.threads)


def build_model(config: dict, num_classes: int, *, pretrained: bool = False) -> "MLP":
    size = int(config["input_size"])
    return MLP(
        in_features=3 * size * size,
        widths=hidden_widths(config),
        num_classes=num_classes,
        activation=config.get("activation", "relu"),
        batchnorm=bool(config.get("batchnorm", False)),
        dropout=float(config.get("dropout", 0.0)),
    )


def hidden_widths(config: dict) -> list[int]:
    return [int(config.get(f"width_{i}", 256)) for i in range(int(config.get("layers", 1)))]


class MLP(nn.Module):
    def __init__(self, *, in_features: int, widths: list[int], num_classes: int, activation: str = "relu",
                 batchnorm: bool = False, dropout: float = 0.0):
        super().__init__()
        layers, width_in = [], in_features
        for width in widths:
            layers.append(nn.Sequential(
                nn.Linear(width_in, width),
                *([nn.BatchNorm1d(width)] if batchnorm else []),
                ACTIVATIONS[activation](),
                nn.Dropout(dropout),
            ))
            width_in = width
        self.hidden = nn.ModuleList(layers)
        self.head = nn.Linear(width_in, num_classes)

    def forward(self, x):
        return self.head(self.features(x, len(self.hidden)))

    def features(self, x, layer: int):
        """Activations after hidden layer `layer` (1-based; 0 is the flattened input)."""
        x = x.flatten(1)
        for block in self.hidden[:layer]:
            x = block(x)
        return x


def feature_layer(config: dict) -> int:
    """The searched 1-based hidden layer, clipped to the net's depth."""
    return max(1, min(int(config.get("feature_layer", 1)), int(config.get("layers", 1))))


@torch.no_grad()
def hidden_features(net: TorchClassifier, images: np.ndarray, layer: int) -> np.ndarray:
    """Hidden-layer activations of `net` for uint8 images at the net's own image size."""
    net.model.eval()
    device = net.device
    tensor = torch.as_tensor(np.ascontiguousarray(images))
    chunks = []
    for start in range(0, len(tensor), _FEATURE_BATCH):
        x = net.to_input(tensor[start : start + _FEATURE_BATCH].to(device))
        chunks.append(net.model.features(x, layer).float().cpu())
    return torch.cat(chunks).numpy() if chunks else np.zeros((0, 0), np.float32)


def patch_dataset(dataset, patch: int):
    """The dataset with every train/val image replaced by its patches, each labelled with the image's class."""

    def cut(images, labels):
        patches, _ = extract_patches(images, patch)
        return patches.reshape(-1, patch, patch, 3), np.repeat(labels, patches.shape[1])

    x_train, y_train = cut(dataset.x_train, dataset.y_train)
    x_val, y_val = cut(dataset.x_val, dataset.y_val)
    return replace(dataset, x_train=x_train, y_train=y_train, x_val=x_val, y_val=y_val,
                   x_test=dataset.x_test[:0], y_test=dataset.y_test[:0], test_names=())


def fit_feature_classifier(x_train: np.ndarray, y_train: np.ndarray, x_val: np.ndarray, y_val: np.ndarray,
                           config: dict, *, num_classes: int, threads: int = 1):
    """The BoVW family's normalisation + SVM steps (`bovw_classifiers.FeatureSettings`: keys
    normalisation, svm_kernel, svm_C, svm_gamma) fitted on train features; the SVM's probability
    temperature is fitted on the validation decisions, which also give the stage's accuracy.
    Returns (fitted sklearn pipeline, val_accuracy)."""
    from trainables.bovw_classifiers import ClassifierSettingsError, FeatureSettings

    try:
        settings = FeatureSettings.from_config({"normalisation": "standard", **config, "classifier": "svm",
                                                "reduction": "none"},
                                               num_classes=num_classes, n_jobs=threads,
                                               seed=int(np.random.randint(0, 2**31 - 1)))
    except ClassifierSettingsError as exc:
        raise TrialFailed(str(exc)) from exc
    with threadpool_limits(limits=max(1, threads)):
        model = settings.pipeline().fit(x_train, y_train)
        decisions = model[-1].decision_function(model[:-1].transform(x_val))
    if len(y_val):
        model[-1].calibrate(decisions, y_val)
    val_accuracy = float(np.mean(model[-1].classes_[decisions.argmax(axis=1)] == y_val)) if len(y_val) else 0.0
    return model, val_accuracy


def accuracy(classifier: SceneClassifier, images: np.ndarray, labels: np.ndarray) -> float:
    return float(np.mean(classifier.predict_proba(images).argmax(axis=1) == labels))


class _Staged(SceneClassifier):
    """A trained MLP followed by a second stage; the MLP is saved in `net/`."""

    def __init__(self, net: TorchClassifier, *, class_names, image_size: int):
        super().__init__(class_names=class_names, image_size=image_size)
        self.net = net
        self.val_accuracy: float | None = None

    @property
    def num_params(self) -> int:
        return self.net.num_params + self.stage_params

    @property
    def stage_params(self) -> int:
        """Fitted numbers of the second stage (SVM, codebook); none for a plain aggregation."""
        return 0

    @property
    def extra_metrics(self) -> dict:
        extra = dict(self.net.extra_metrics)
        if self.val_accuracy is not None:
            extra["val_accuracy"] = self.val_accuracy  # the whole pipeline's, not the net's alone
        return extra


class HiddenFeatureSVM(_Staged):
    """Mode deep_features_svm: an SVM on a hidden layer's activations."""

    def __init__(self, net, svm, *, layer: int, class_names, image_size: int):
        super().__init__(net, class_names=class_names, image_size=image_size)
        self.svm = svm
        self.layer = layer

    @classmethod
    def fit(cls, net: TorchClassifier, config: dict, dataset, *, threads: int = 1) -> "HiddenFeatureSVM":
        layer = feature_layer(config)
        svm, val_accuracy = fit_feature_classifier(
            hidden_features(net, dataset.x_train, layer), dataset.y_train,
            hidden_features(net, dataset.x_val, layer), dataset.y_val,
            config, num_classes=dataset.num_classes, threads=threads)
        fitted = cls(net, svm, layer=layer, class_names=dataset.class_names, image_size=dataset.image_size)
        fitted.val_accuracy = val_accuracy
        return fitted

    @property
    def stage_params(self) -> int:
        from trainables.bovw_classifiers import pipeline_params

        return pipeline_params(self.svm)

    def predict_proba(self, images: np.ndarray) -> np.ndarray:
        return self.svm.predict_proba(hidden_features(self.net, images, self.layer))

    def save_state(self, directory: Path) -> dict:
        self.net.save(directory / "net")
        joblib.dump(self.svm, directory / "svm.joblib")
        return {"layer": self.layer}

    @classmethod
    def load_state(cls, directory: Path, state: dict, *, class_names, image_size: int) -> "HiddenFeatureSVM":
        net = SceneClassifier.load(directory / "net")
        return cls(net, joblib.load(directory / "svm.joblib"), layer=state["layer"], class_names=class_names,
                   image_size=image_size)


class PatchAggregator(_Staged):
    """Mode patches: an image's class probabilities aggregate its patches' probabilities."""

    def __init__(self, net, *, patch: int, aggregation: str, class_names, image_size: int):
        super().__init__(net, class_names=class_names, image_size=image_size)
        if aggregation not in ("mean_prob", "mean_log_prob", "vote"):
            raise TrialFailed(f"unknown aggregation {aggregation!r}; choose mean_prob, mean_log_prob or vote")
        self.patch = patch
        self.aggregation = aggregation

    @classmethod
    def fitted(cls, net, *, patch: int, aggregation: str, dataset) -> "PatchAggregator":
        fitted = cls(net, patch=patch, aggregation=aggregation, class_names=dataset.class_names,
                     image_size=dataset.image_size)
        fitted.val_accuracy = accuracy(fitted, dataset.x_val, dataset.y_val)
        return fitted

    def predict_proba(self, images: np.ndarray) -> np.ndarray:
        patches, _ = extract_patches(images, self.patch)
        count, per_image = patches.shape[:2]
        probabilities = self.net.predict_proba(patches.reshape(-1, self.patch, self.patch, 3))
        return aggregate(probabilities.reshape(count, per_image, -1), self.aggregation)

    def save_state(self, directory: Path) -> dict:
        self.net.save(directory / "net")
        return {"patch": self.patch, "aggregation": self.aggregation}

    @classmethod
    def load_state(cls, directory: Path, state: dict, *, class_names, image_size: int) -> "PatchAggregator":
        return cls(SceneClassifier.load(directory / "net"), patch=state["patch"], aggregation=state["aggregation"],
                   class_names=class_names, image_size=image_size)


def aggregate(probabilities: np.ndarray, how: str) -> np.ndarray:
    """(N, K patches, C) -> (N, C) rows summing to 1."""
    if how == "mean_prob":
        return probabilities.mean(axis=1)
    if how == "mean_log_prob":
        log_mean = np.log(np.clip(probabilities, 1e-12, 1.0)).mean(axis=1)
        scores = np.exp(log_mean - log_mean.max(axis=1, keepdims=True))
        return scores / scores.sum(axis=1, keepdims=True)
    votes = np.eye(probabilities.shape[2])[probabilities.argmax(axis=2)].sum(axis=1)
    return votes / probabilities.shape[1]
