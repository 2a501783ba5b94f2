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

import numpy as np

from trainables.core.classifier import SceneClassifier
from trainables.core.session import TrialFailed
from trainables.core.torch_loop import train_classifier
from trainables.mlp.network import BUILDER, build_model
from trainables.mlp.patch_bovw import PatchBoVW
from trainables.mlp.patches import extract_patches
from trainables.mlp.stages import HiddenFeatureSVM, PatchAggregator


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
    net = train_classifier(
        build_model(config, dataset.num_classes), config, patch_dataset(dataset, patch), session, builder=BUILDER
    )
    if mode == "patches":
        return PatchAggregator.fitted(
            net, patch=patch, aggregation=config.get("aggregation", "mean_prob"), dataset=dataset
        )
    return PatchBoVW.fit(net, config, dataset, patch=patch, threads=session.threads)


def patch_dataset(dataset, patch: int):
    """The dataset with every train/val image replaced by its patches, each labelled with the image's class."""

    def cut(images, labels):
        patches, _ = extract_patches(images, patch)
        return patches.reshape(-1, patch, patch, 3), np.repeat(labels, patches.shape[1])

    x_train, y_train = cut(dataset.x_train, dataset.y_train)
    x_val, y_val = cut(dataset.x_val, dataset.y_val)
    return replace(
        dataset,
        x_train=x_train,
        y_train=y_train,
        x_val=x_val,
        y_val=y_val,
        x_test=dataset.x_test[:0],
        y_test=dataset.y_test[:0],
        test_names=(),
    )
