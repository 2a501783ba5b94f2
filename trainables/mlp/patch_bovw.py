"""MLP mode patch_bovw: a patch MLP's hidden activations as dense descriptors for BoVW.

The paper's last MLP experiment. The MLP has learnt P x P patches (labelled
with their image's class, as in mode `patches`); here every image is cut into
dense, overlapping patches (stride P/2, at least 8 px), each patch's activations after hidden
layer `feature_layer` become one descriptor at the patch's centre, and the
BoVW family's own steps take over: a k-means codebook of `codebook_size` words
with hard-assignment histograms over a spatial pyramid of `pyramid_levels`
(`bovw_encoding.BovwEncoder`), then normalisation and an SVM
(`mlp.fit_feature_classifier`, i.e. `bovw_classifiers.FeatureSettings`).
"""

from __future__ import annotations

from pathlib import Path

import joblib
import numpy as np

from trainables.bovw.descriptors import DescriptorSet
from trainables.bovw.encoding import BovwEncoder, EncodingError
from trainables.core.classifier import SceneClassifier
from trainables.core.session import TrialFailed
from trainables.core.torch_loop import TorchClassifier
from trainables.mlp.network import feature_layer, hidden_features
from trainables.mlp.patches import extract_patches
from trainables.mlp.stages import Staged, fit_feature_classifier

_IMAGES_PER_CHUNK = 256  # images whose dense patches go through the net at once (bounds memory)


class PatchBoVW(Staged):
    def __init__(self, net, encoder: BovwEncoder, svm, *, patch: int, layer: int, class_names, image_size: int):
        super().__init__(net, class_names=class_names, image_size=image_size)
        self.encoder = encoder
        self.svm = svm
        self.patch = patch
        self.layer = layer

    @property
    def stride(self) -> int:
        """Half a patch, but no denser than every 8 px (8 px patches: 64 per 64 px image, not 225)."""
        return max(self.patch // 2, min(self.patch, 8))

    @classmethod
    def fit(cls, net: TorchClassifier, config: dict, dataset, *, patch: int, threads: int = 1) -> PatchBoVW:
        layer = feature_layer(config)
        encoder = BovwEncoder(
            encoding="histogram",
            codebook_size=int(config.get("codebook_size", 256)),
            pyramid_levels=int(config.get("pyramid_levels", 1)),
            seed=int(np.random.randint(0, 2**31 - 1)),
            n_jobs=threads,
        )
        fitted = cls(
            net, encoder, None, patch=patch, layer=layer, class_names=dataset.class_names, image_size=dataset.image_size
        )
        train = fitted.descriptors(dataset.x_train)  # the net runs over every dense patch once
        try:
            encoder.fit(train)
        except EncodingError as exc:
            raise TrialFailed(str(exc)) from exc
        fitted.svm, fitted.val_accuracy = fit_feature_classifier(
            encoder.transform(train),
            dataset.y_train,
            fitted.encode(dataset.x_val),
            dataset.y_val,
            {"normalisation": "l2", **config},
            num_classes=dataset.num_classes,
            threads=threads,
        )
        return fitted

    def descriptors(self, images: np.ndarray) -> DescriptorSet:
        """One descriptor per dense patch: its hidden activations, placed at the patch centre."""
        per_image: list = []
        positions: list = []
        for start in range(0, len(images), _IMAGES_PER_CHUNK):
            patches, centres = extract_patches(images[start : start + _IMAGES_PER_CHUNK], self.patch, self.stride)
            count, k = patches.shape[:2]
            features = hidden_features(self.net, patches.reshape(-1, self.patch, self.patch, 3), self.layer)
            per_image.extend(features.reshape(count, k, -1))
            positions.extend([centres] * count)
        return DescriptorSet.from_arrays(per_image, positions)

    def encode(self, images: np.ndarray) -> np.ndarray:
        return self.encoder.transform(self.descriptors(images))

    @property
    def stage_params(self) -> int:
        from trainables.bovw.classifiers import pipeline_params

        return int(self.encoder.num_params) + (pipeline_params(self.svm) if self.svm is not None else 0)

    def predict_proba(self, images: np.ndarray) -> np.ndarray:
        return self.svm.predict_proba(self.encode(images))

    def save_state(self, directory: Path) -> dict:
        self.net.save(directory / "net")
        joblib.dump({"encoder": self.encoder, "svm": self.svm}, directory / "bovw.joblib")
        return {"patch": self.patch, "layer": self.layer}

    @classmethod
    def load_state(cls, directory: Path, state: dict, *, class_names, image_size: int) -> PatchBoVW:
        stages = joblib.load(directory / "bovw.joblib")
        return cls(
            SceneClassifier.load(directory / "net"),
            stages["encoder"],
            stages["svm"],
            patch=state["patch"],
            layer=state["layer"],
            class_names=class_names,
            image_size=image_size,
        )
