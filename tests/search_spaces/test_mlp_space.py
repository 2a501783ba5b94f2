"""The MLP family's space: one `mode` choice, each mode's parameters only under it, and the
second-stage keys the BoVW steps accept."""

import pytest

from search_spaces import parse_pins
from search_spaces.mlp import MODES, PAPER_BEST, SIZES, suggest
from tests.search_spaces.spaces import assert_point_of_space, sample_configs
from trainables.bovw.classifiers import FeatureSettings


@pytest.mark.parametrize("seed", range(3))
def test_samples_are_conditional_on_the_mode(seed):
    for config in sample_configs(80, seed, space=suggest):
        mode = config["mode"]
        assert ("input_size" in config) == (mode in ("end_to_end", "deep_features_svm"))
        assert ("patch_size" in config) == (mode in ("patches", "patch_bovw"))
        assert config.get("patch_size", 16) in SIZES
        assert ("aggregation" in config) == (mode == "patches")
        assert ("codebook_size" in config) == ("pyramid_levels" in config) == (mode == "patch_bovw")
        assert ("svm_kernel" in config) == ("feature_layer" in config) == (mode in ("deep_features_svm", "patch_bovw"))
        assert [k for k in config if k.startswith("width_")] == [f"width_{i}" for i in range(config["layers"])]
        if "svm_kernel" in config:
            assert ("svm_gamma" in config) == (config["svm_kernel"] == "rbf")
            FeatureSettings.from_config({**config, "classifier": "svm"}, num_classes=8)  # a combination it accepts


def test_every_mode_is_reachable():
    assert {c["mode"] for c in sample_configs(120, seed=5, space=suggest)} == set(MODES)


def test_paper_best_is_the_papers_best_mlp_and_a_point_of_the_space():
    assert (PAPER_BEST["mode"], PAPER_BEST["patch_size"], PAPER_BEST["aggregation"]) == ("patches", 32, "mean_prob")
    assert_point_of_space("mlp", PAPER_BEST)


def test_pins_reach_every_mode():
    assert parse_pins("mlp", ["mode=patch_bovw", "patch_size=16", "codebook_size=64", "svm_kernel=rbf"]) == {
        "mode": "patch_bovw",
        "patch_size": 16,
        "codebook_size": 64,
        "svm_kernel": "rbf",
    }
    with pytest.raises(ValueError, match="choose one of"):
        parse_pins("mlp", ["mode=cnn"])
