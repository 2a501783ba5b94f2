"""The MLP family's space: one `mode` choice, each mode's parameters conditional under it."""

from __future__ import annotations

from search_spaces.training import suggest_optimization

MODES = ("end_to_end", "deep_features_svm", "patches", "patch_bovw")
AGGREGATIONS = ("mean_prob", "mean_log_prob", "vote")
SIZES = (8, 16, 24, 32, 48, 64)
WIDTHS = (32, 64, 128, 256, 512, 1024, 2048)

# The paper's best MLP result: 32-pixel patches, patch probabilities aggregated per image (0.72).
PAPER_BEST = {
    "mode": "patches",
    "patch_size": 32,
    "aggregation": "mean_prob",
    "layers": 2,
    "width_0": 1024,
    "width_1": 256,
    "activation": "relu",
    "batchnorm": True,
    "dropout": 0.3,
    "optimizer": "adam",
    "lr_finder": False,
    "lr": 1e-3,
    "weight_decay": 1e-5,
    "batch_size": 128,
    "one_cycle": True,
    "label_smoothing": 0.0,
    "aug_hflip": True,
    # Where a sweep pins another mode (--fix mode=...), its first trial starts from these:
    "input_size": 32,
    "feature_layer": 1,
    "normalisation": "standard",
    "svm_kernel": "rbf",
    "svm_gamma": 1.0,
    "svm_C": 10.0,
    "codebook_size": 256,  # the paper's best patch BoVW: k = 256 (0.70)
    "pyramid_levels": 1,
}


def suggest(trial) -> dict:
    mode = trial.suggest_categorical("mode", list(MODES))
    if mode in ("end_to_end", "deep_features_svm"):
        trial.suggest_categorical("input_size", list(SIZES))  # images resized to S x S, flattened
    else:
        trial.suggest_categorical("patch_size", list(SIZES))
    if mode == "patches":
        trial.suggest_categorical("aggregation", list(AGGREGATIONS))
    layers = trial.suggest_int("layers", 1, 4)
    for index in range(layers):
        trial.suggest_categorical(f"width_{index}", list(WIDTHS))
    trial.suggest_categorical("activation", ["relu", "elu", "leaky_relu", "gelu", "tanh"])
    trial.suggest_categorical("batchnorm", [True, False])
    trial.suggest_float("dropout", 0.0, 0.5)
    suggest_optimization(trial, batch_sizes=(32, 64, 128, 256))
    trial.suggest_categorical("aug_hflip", [True, False])
    if mode in ("deep_features_svm", "patch_bovw"):
        # Which hidden layer's activations become features (1 = first); deeper than `layers` means the last.
        trial.suggest_int("feature_layer", 1, 4)
    if mode == "patch_bovw":
        trial.suggest_int("codebook_size", 32, 1024, log=True)
        trial.suggest_int("pyramid_levels", 0, 2)
    if mode in ("deep_features_svm", "patch_bovw"):
        # The BoVW family's normalisation + SVM keys (trainables.bovw.classifiers.FeatureSettings).
        # Linear and RBF only: hidden activations may be negative, which the histogram kernels refuse.
        trial.suggest_categorical("normalisation", ["standard", "l1", "l2", "power_l2"])
        if trial.suggest_categorical("svm_kernel", ["linear", "rbf"]) == "rbf":
            trial.suggest_float("svm_gamma", 0.1, 10.0, log=True)  # relative to the mean pairwise distance
        trial.suggest_float("svm_C", 1e-2, 1e3, log=True)
    return {}
