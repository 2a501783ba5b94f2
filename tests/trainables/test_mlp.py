"""Every MLP mode trains on demo, and its saved model predicts raw images like the trained one."""

import numpy as np
import pandas as pd
import pytest
import torch

from search_spaces.mlp import PAPER_BEST
from serving.pyfunc_model import ScenePyfuncModel
from trainables.core.classifier import SceneClassifier
from trainables.core.images import encode_png
from trainables.core.session import TrialSession
from trainables.mlp.network import MLP, build_model, hidden_widths
from trainables.mlp.stages import aggregate
from trainables.training import fit_and_evaluate

SMALL = {**PAPER_BEST, "layers": 2, "width_0": 128, "width_1": 64, "batch_size": 64}
MODES = {
    "end_to_end": {**SMALL, "mode": "end_to_end", "input_size": 16},
    "deep_features_svm": {
        **SMALL,
        "mode": "deep_features_svm",
        "input_size": 16,
        "feature_layer": 2,
        "svm_kernel": "rbf",
        "svm_C": 3.0,
        "svm_gamma": 1.0,
        "normalisation": "standard",
    },
    "patches": {**SMALL, "mode": "patches", "patch_size": 16, "aggregation": "mean_prob"},
    "patch_bovw": {
        **SMALL,
        "mode": "patch_bovw",
        "patch_size": 16,
        "feature_layer": 1,
        "codebook_size": 48,
        "pyramid_levels": 1,
        "normalisation": "l2",
        "svm_kernel": "linear",
        "svm_C": 10.0,
    },
}


@pytest.mark.parametrize("mode", sorted(MODES))
def test_each_mode_trains_and_its_saved_model_serves_raw_images(mode, demo_dataset, tmp_path):
    torch.manual_seed(0)
    session = TrialSession(max_epochs=3)
    outcome = fit_and_evaluate(MODES[mode], demo_dataset, "mlp", session)
    assert outcome.metrics["test_accuracy"] > 2.5 / demo_dataset.num_classes
    assert [epoch for epoch, _ in session.history["val_accuracy"]] == [1, 2, 3]
    if mode != "end_to_end":  # a second stage decides the trial's val_accuracy
        assert 0 <= outcome.metrics["val_accuracy"] <= 1
    reloaded = SceneClassifier.load(outcome.classifier.save(tmp_path / "model"))
    images = demo_dataset.x_test[:6]
    assert np.allclose(reloaded.predict_proba(images), outcome.classifier.predict_proba(images), atol=1e-5)
    served = ScenePyfuncModel()
    served.classifier = reloaded
    frame = served.predict(
        None, pd.DataFrame({"image": [encode_png(np.kron(im, np.ones((2, 2, 1), np.uint8))) for im in images]})
    )
    assert frame.shape == (6, demo_dataset.num_classes) and list(frame.columns) == list(demo_dataset.class_names)
    assert np.allclose(frame.to_numpy().sum(axis=1), 1, atol=1e-4)


def test_hidden_layers_follow_the_config():
    config = {
        "input_size": 8,
        "layers": 3,
        "width_0": 64,
        "width_1": 32,
        "width_2": 16,
        "batchnorm": True,
        "dropout": 0.1,
    }
    model = build_model(config, 5)
    assert isinstance(model, MLP) and hidden_widths(config) == [64, 32, 16]
    x = torch.rand(4, 3, 8, 8)
    assert model(x).shape == (4, 5)
    assert [model.features(x, layer).shape[1] for layer in (0, 1, 2, 3)] == [192, 64, 32, 16]


@pytest.mark.parametrize("how, winner", [("mean_prob", 0), ("vote", 0), ("mean_log_prob", 1)])
def test_aggregations_are_distributions(how, winner):
    # Two patches lean to class 0, one is sure of class 1 and gives class 0 only 0.1: the
    # geometric mean (mean of logs) punishes that disagreement, the mean and the vote do not.
    probabilities = np.array([[[0.7, 0.2, 0.1], [0.6, 0.3, 0.1], [0.1, 0.8, 0.1]]])
    combined = aggregate(probabilities, how)
    assert combined.shape == (1, 3) and np.isclose(combined.sum(), 1) and combined.argmax() == winner
    if how == "vote":
        assert np.allclose(combined, [[2 / 3, 1 / 3, 0]])


def test_patch_bovw_describes_dense_overlapping_patches(demo_dataset):
    from trainables.mlp.patch_bovw import PatchBoVW

    torch.manual_seed(0)
    outcome = fit_and_evaluate(MODES["patch_bovw"], demo_dataset, "mlp", TrialSession(max_epochs=1))
    model = outcome.classifier
    assert isinstance(model, PatchBoVW) and model.stride == 8
    described = model.descriptors(demo_dataset.x_test[:3])
    side = demo_dataset.image_size
    per_axis = (side - 16) // 8 + 1  # stride 8 on a 64 px image: 7 patch positions per axis
    assert len(described) == 3 and described.dim == 128  # feature_layer 1 of widths 128-64
    assert np.diff(described.offsets).tolist() == [per_axis**2] * 3
    assert model.encoder.feature_dim == 48 * 5  # 48 words in 1 + 4 pyramid cells
    assert model.num_params > model.net.num_params  # codebook and SVM count too
