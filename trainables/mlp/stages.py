"""Second stages after a trained MLP: an SVM on hidden features, patch aggregation (patch BoVW
lives in patch_bovw.py). Each saves the MLP in `net/` beside its own state, so the served model
takes raw images in every mode."""

from __future__ import annotations

from pathlib import Path

import joblib
import numpy as np
from threadpoolctl import threadpool_limits

from trainables.core.classifier import SceneClassifier
from trainables.core.session import TrialFailed
from trainables.core.torch_loop import TorchClassifier
from trainables.mlp.network import feature_layer, hidden_features
from trainables.mlp.patches import extract_patches


def fit_feature_classifier(
    x_train: np.ndarray,
    y_train: np.ndarray,
    x_val: np.ndarray,
    y_val: np.ndarray,
    config: dict,
    *,
    num_classes: int,
    threads: int = 1,
):
    """The BoVW family's normalisation + SVM steps (`bovw_classifiers.FeatureSettings`: keys
    normalisation, svm_kernel, svm_C, svm_gamma) fitted on train features; the SVM's probability
    temperature is fitted on the validation decisions, which also give the stage's accuracy.
    Returns (fitted sklearn pipeline, val_accuracy)."""
    from trainables.bovw.classifiers import ClassifierSettingsError, FeatureSettings

    try:
        settings = FeatureSettings.from_config(
            {"normalisation": "standard", **config, "classifier": "svm", "reduction": "none"},
            num_classes=num_classes,
            n_jobs=threads,
            seed=int(np.random.randint(0, 2**31 - 1)),
        )
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


class Staged(SceneClassifier):
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


class HiddenFeatureSVM(Staged):
    """Mode deep_features_svm: an SVM on a hidden layer's activations."""

    def __init__(self, net, svm, *, layer: int, class_names, image_size: int):
        super().__init__(net, class_names=class_names, image_size=image_size)
        self.svm = svm
        self.layer = layer

    @classmethod
    def fit(cls, net: TorchClassifier, config: dict, dataset, *, threads: int = 1) -> HiddenFeatureSVM:
        layer = feature_layer(config)
        svm, val_accuracy = fit_feature_classifier(
            hidden_features(net, dataset.x_train, layer),
            dataset.y_train,
            hidden_features(net, dataset.x_val, layer),
            dataset.y_val,
            config,
            num_classes=dataset.num_classes,
            threads=threads,
        )
        fitted = cls(net, svm, layer=layer, class_names=dataset.class_names, image_size=dataset.image_size)
        fitted.val_accuracy = val_accuracy
        return fitted

    @property
    def stage_params(self) -> int:
        from trainables.bovw.classifiers import pipeline_params

        return pipeline_params(self.svm)

    def predict_proba(self, images: np.ndarray) -> np.ndarray:
        return self.svm.predict_proba(hidden_features(self.net, images, self.layer))

    def save_state(self, directory: Path) -> dict:
        self.net.save(directory / "net")
        joblib.dump(self.svm, directory / "svm.joblib")
        return {"layer": self.layer}

    @classmethod
    def load_state(cls, directory: Path, state: dict, *, class_names, image_size: int) -> HiddenFeatureSVM:
        net = SceneClassifier.load(directory / "net")
        return cls(
            net,
            joblib.load(directory / "svm.joblib"),
            layer=state["layer"],
            class_names=class_names,
            image_size=image_size,
        )


class PatchAggregator(Staged):
    """Mode patches: an image's class probabilities aggregate its patches' probabilities."""

    def __init__(self, net, *, patch: int, aggregation: str, class_names, image_size: int):
        super().__init__(net, class_names=class_names, image_size=image_size)
        if aggregation not in ("mean_prob", "mean_log_prob", "vote"):
            raise TrialFailed(f"unknown aggregation {aggregation!r}; choose mean_prob, mean_log_prob or vote")
        self.patch = patch
        self.aggregation = aggregation

    @classmethod
    def fitted(cls, net, *, patch: int, aggregation: str, dataset) -> PatchAggregator:
        fitted = cls(
            net, patch=patch, aggregation=aggregation, class_names=dataset.class_names, image_size=dataset.image_size
        )
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
    def load_state(cls, directory: Path, state: dict, *, class_names, image_size: int) -> PatchAggregator:
        return cls(
            SceneClassifier.load(directory / "net"),
            patch=state["patch"],
            aggregation=state["aggregation"],
            class_names=class_names,
            image_size=image_size,
        )


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
