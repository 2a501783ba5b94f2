"""InceptionV3's search space: the paper's choices, conditional where they should be, and every
sample builds a network that runs."""

import pytest
import torch

from search_spaces import parse_pins
from search_spaces.inception import AUGMENTATIONS, INPUT_SIZES, OPTIMIZERS, PAPER_BEST, suggest
from tests.search_spaces.spaces import assert_point_of_space, sample_configs
from trainables.families import get_family
from trainables.inception import BLOCKS, build_model


@pytest.mark.parametrize("seed", range(3))
def test_samples_are_valid_and_conditional(seed):
    for config in sample_configs(80, seed, space=suggest):
        assert config["optimizer"] in OPTIMIZERS and 1e-4 <= config["lr"] <= 0.2
        assert ("momentum" in config) == (config["optimizer"] in ("sgd", "rmsprop"))
        assert config.get("momentum", 0.9) in (0.6, 0.8, 0.9)
        assert ("unfreeze_blocks" in config) == (config["mode"] == "unfreeze")
        assert 1 <= config.get("unfreeze_blocks", 1) <= len(BLOCKS)
        assert ("cut_after" in config) == (config["mode"] == "cut")
        assert ("activation" in config) == (config["head_width"] > 0)
        assert config.get("activation", "relu") in ("relu", "elu", "tanh")
        assert config["input_size"] in INPUT_SIZES and 75 <= config["input_size"] <= 299
        for switch, magnitude in AUGMENTATIONS.items():
            if magnitude:
                assert (magnitude[0] in config) == config[switch]


def test_every_mode_block_and_augmentation_is_reachable():
    configs = sample_configs(300, seed=7, space=suggest)
    assert {c["mode"] for c in configs} == {"head", "unfreeze", "cut"}
    assert {c["cut_after"] for c in configs if "cut_after" in c} == set(BLOCKS)
    assert {c["optimizer"] for c in configs} == set(OPTIMIZERS)
    assert all(any(c[switch] for c in configs) for switch in AUGMENTATIONS)


def test_sampled_configs_build_and_run():
    for config in sample_configs(8, seed=3, space=suggest):
        model = build_model({**config, "input_size": 75}, 8).eval()
        with torch.no_grad():
            assert model(torch.rand(2, 3, 75, 75)).shape == (2, 8)


def test_paper_best_is_the_papers_point_of_the_space():
    assert {k: PAPER_BEST[k] for k in ("optimizer", "lr", "momentum", "activation", "aug_hflip")} == {
        "optimizer": "sgd",
        "lr": 0.001,
        "momentum": 0.9,
        "activation": "relu",
        "aug_hflip": True,
    }
    assert not any(PAPER_BEST[k] for k in AUGMENTATIONS if k != "aug_hflip")
    assert PAPER_BEST["input_size"] == 299  # InceptionV3's native size, what the paper trained at


def test_the_default_config_trains_at_96_px_where_trials_get_no_gpu():
    # Decided from the trials' resources by the sweep, not by probing the machine at import.
    family = get_family("inception")
    assert family.default_config(gpu=True)["input_size"] == 299
    assert family.default_config(gpu=False)["input_size"] == 96
    for config in (family.default_config(gpu=True), family.default_config(gpu=False)):
        assert_point_of_space("inception", config)


def test_pins_reach_conditional_parameters():
    assert parse_pins("inception", ["mode=cut", "cut_after=Mixed_5b", "input_size=75", "lr=0.01"]) == {
        "mode": "cut",
        "cut_after": "Mixed_5b",
        "input_size": 75,
        "lr": 0.01,
    }
    with pytest.raises(ValueError, match="choose one of Mixed_5b"):
        parse_pins("inception", ["cut_after=Mixed_8a"])
