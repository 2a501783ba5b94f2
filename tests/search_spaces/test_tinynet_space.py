"""TinyNet's search space: valid, conditional where it should be, and every sample trains a step."""

import pytest
import torch

from search_spaces import PinnedSpace, parse_pins
from search_spaces.tinynet import PAPER_BEST, SEARCH_STARTS, suggest
from tests.search_spaces.spaces import assert_point_of_space, assert_replays, sample_configs
from trainables.tinynet import build_model


@pytest.mark.parametrize("seed", range(5))
def test_samples_are_valid_and_conditional(seed):
    for config in sample_configs(60, seed, space=suggest):
        assert 2 <= config["blocks"] <= 5 and config["kernel_size"] in (3, 5)
        assert ("momentum" in config) == (config["optimizer"] in ("sgd", "rmsprop"))
        assert ("lr" in config) != config["lr_finder"]
        assert config["input_size"] in (32, 64)


def test_every_sampled_architecture_builds_and_steps():
    for config in sample_configs(25, seed=11, space=suggest):
        config = {**config, "input_size": 32}
        model = build_model(config, 8)
        out = model(torch.rand(2, 3, 32, 32))
        out.sum().backward()
        assert out.shape == (2, 8)


def test_the_default_search_leaves_out_the_corners_that_wasted_its_budget():
    configs = sample_configs(300, seed=3, space=suggest)
    assert not any(config["init"] in ("zeros", "normal") for config in configs)
    assert not any(config["input_size"] == 128 or config["kernel_size"] == 7 for config in configs)
    assert max(config["base_width"] * 2 ** (config["blocks"] - 1) for config in configs) <= 768


def test_fix_still_reaches_every_value_the_full_space_holds():
    pins = ["init=zeros", "input_size=128", "kernel_size=7", "blocks=1", "base_width=64", "activation=tanh"]
    assert parse_pins("tinynet", pins) == {
        "init": "zeros",
        "input_size": 128,
        "kernel_size": 7,
        "blocks": 1,
        "base_width": 64,
        "activation": "tanh",
    }
    space = PinnedSpace("tinynet", {"init": "zeros", "blocks": 6})
    assert all(c["init"] == "zeros" and c["blocks"] == 6 for c in sample_configs(5, seed=4, space=space))


def test_paper_best_and_the_search_starts_are_points_of_the_space():
    for config in (PAPER_BEST, *SEARCH_STARTS):
        assert_point_of_space("tinynet", config)
        assert_replays(suggest, config)


@pytest.mark.parametrize(
    "assignments, expected",
    [
        (["input_size=64"], {"input_size": 64}),
        (["batchnorm=false", "optimizer=sgd"], {"batchnorm": False, "optimizer": "sgd"}),
        (["dropout=0.25", "blocks=3"], {"dropout": 0.25, "blocks": 3}),
        (["optimizer=sgd", "lr=0.3"], {"optimizer": "sgd", "lr": 0.3}),  # sgd's lr range, wider than adam's
    ],
)
def test_pins_parse_to_typed_values(assignments, expected):
    assert parse_pins("tinynet", assignments) == expected


@pytest.mark.parametrize(
    "assignment, message",
    [
        ("depth=3", "has no parameter 'depth'"),
        ("input_size=100", "choose one of 32, 64, 128"),
        ("blocks=9", "out of the space's range"),
        ("lr=0.5", r"out of the space's range \[0.0001, 0.3\]"),
        ("dropout=lots", "expected a number"),
        ("input_size", "is not KEY=VALUE"),
    ],
)
def test_bad_pins_are_rejected(assignment, message):
    with pytest.raises(ValueError, match=message):
        parse_pins("tinynet", [assignment])


def test_pinned_space_always_yields_the_pins():
    space = PinnedSpace("tinynet", {"input_size": 32, "optimizer": "sgd"})
    for config in sample_configs(20, seed=2, space=space):
        assert config["input_size"] == 32 and config["optimizer"] == "sgd" and "momentum" in config
