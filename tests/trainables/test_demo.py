"""The built-in demo data: deterministic, scene-like, and learnable by the default TinyNet."""

import numpy as np

from search_spaces.tinynet import PAPER_BEST
from trainables.core.demo_data import CLASS_NAMES, generate_demo
from trainables.core.session import TrialSession
from trainables.training import fit_and_evaluate


def test_demo_is_deterministic_and_balanced():
    first, second = generate_demo(32), generate_demo(32)
    for a, b in zip(first[:4], second[:4]):
        assert np.array_equal(a, b)
    x_train, y_train, x_test, y_test, names = first
    assert names == list(CLASS_NAMES) and x_train.shape[1:] == (32, 32, 3)
    assert len(set(np.bincount(y_train))) == 1 and len(set(np.bincount(y_test))) == 1
    assert len(np.unique(x_train.reshape(len(x_train), -1), axis=0)) == len(x_train)  # no duplicate images


def test_default_tinynet_learns_demo_well_above_chance(demo_dataset):
    session = TrialSession(max_epochs=4)
    outcome = fit_and_evaluate(PAPER_BEST, demo_dataset, "tinynet", session)
    chance = 1 / demo_dataset.num_classes
    assert outcome.metrics["test_accuracy"] > 4 * chance
    assert outcome.metrics["params"] > 0 and outcome.metrics["accuracy_per_param"] > 0
    assert [epoch for epoch, _ in session.history["val_accuracy"]] == [1, 2, 3, 4]
