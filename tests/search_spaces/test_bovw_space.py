"""BoVW's search space: conditional, never proposes an impossible or oversized combination, and
TPE runs over it (its ranges depend on earlier answers)."""

import optuna
import pytest

from search_spaces import parse_pins
from search_spaces.bovw import PAPER_BEST, SEARCH_STARTS, suggest
from tests.search_spaces.spaces import assert_point_of_space, assert_replays, sample_configs
from trainables.bovw.classifiers import FeatureSettings
from trainables.bovw.descriptors import DescriptorSpec
from trainables.bovw.pipeline import check_encoding


@pytest.mark.parametrize("seed", range(3))
def test_samples_are_conditional_and_always_buildable(seed):
    for config in sample_configs(150, seed, space=suggest):
        spec = DescriptorSpec.from_config(config)
        check_encoding(config, spec)  # raises for anything too long or a kernel on signed features
        FeatureSettings.from_config(config, num_classes=8)  # raises for impossible step combinations
        assert ("keypoints" in config) == (config["descriptor"] in ("sift", "orb"))
        assert ("patch_sizes" in config) == (config["descriptor"] == "dense_sift")
        assert ("daisy_radius" in config) == (config["descriptor"] == "daisy")
        assert ("rootsift" in config) == (config["descriptor"] in ("sift", "dense_sift"))
        assert ("gmm_components" in config) == (config["encoding"] == "fisher")
        assert ("codebook_size" in config) == (config["encoding"] == "histogram")
        assert ("svm_gamma" in config) == (config.get("svm_kernel") in ("rbf", "chi2"))
        assert ("pca_components" in config) == (config["reduction"] == "pca")
        if config.get("svm_kernel") in ("intersection", "chi2"):
            assert (config["encoding"], config["normalisation"], config["reduction"]) == ("histogram", "none", "none")


def test_paper_best_is_the_papers_pipeline_and_a_point_of_the_space():
    assert (
        PAPER_BEST["descriptor"],
        PAPER_BEST["encoding"],
        PAPER_BEST["gmm_components"],
        PAPER_BEST["descriptor_pca"],
        PAPER_BEST["svm_kernel"],
    ) == ("dense_sift", "fisher", 16, 32, "rbf")
    assert_point_of_space("bovw", PAPER_BEST)


def test_the_search_starts_from_the_paper_then_the_plain_rootsift_fisher_pipeline():
    (start,) = SEARCH_STARTS
    assert (start["rootsift"], start["svm_kernel"], start["gmm_components"], start["pyramid_levels"]) == (
        True,
        "linear",
        32,
        1,
    )
    for config in (PAPER_BEST, start):
        assert_replays(suggest, config)


@pytest.mark.filterwarnings("ignore::optuna.exceptions.ExperimentalWarning")
def test_tpe_samples_the_conditional_space():
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    sampler = optuna.samplers.TPESampler(seed=0, multivariate=True, group=True, n_startup_trials=5)
    study = optuna.create_study(direction="maximize", sampler=sampler)
    study.enqueue_trial(PAPER_BEST)
    study.optimize(lambda trial: float(len(suggest(trial)) + len(trial.params)) / 30, n_trials=25)
    assert len(study.trials) == 25 and all(t.state == optuna.trial.TrialState.COMPLETE for t in study.trials)
    assert study.trials[0].params["gmm_components"] == 16


@pytest.mark.parametrize(
    "pin, message",
    [
        ("descriptor=surf", "SURF is patented"),
        ("codebook_size=9000", "out of the space's range [32, 4096]"),
        ("svm_kernel=sigmoid", "choose one of linear, rbf, intersection, chi2"),
    ],
)
def test_pins_are_checked(pin, message):
    with pytest.raises(ValueError, match=message.replace("[", r"\[").replace("]", r"\]")):
        parse_pins("bovw", [pin])


def test_pins_accept_the_widest_range_of_a_bounded_parameter():
    assert parse_pins("bovw", ["codebook_size=4096", "patch_sizes=8,16", "pca_components=0.95"]) == {
        "codebook_size": 4096,
        "patch_sizes": "8,16",
        "pca_components": 0.95,
    }
