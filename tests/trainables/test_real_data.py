"""A short TinyNet training on the paper's real photographs (skipped where they are absent)."""

import pytest

from search_spaces.tinynet import PAPER_BEST
from trainables.core.data import DataSpec, load_dataset
from trainables.core.session import TrialSession
from trainables.training import fit_and_evaluate

pytestmark = pytest.mark.slow


def test_short_real_data_training_is_well_above_chance(mit_split_64, tmp_path):
    import torch

    torch.set_num_threads(2)
    dataset = load_dataset(DataSpec(source=str(mit_split_64), cache_dir=str(tmp_path)))
    outcome = fit_and_evaluate(PAPER_BEST, dataset, "tinynet", TrialSession(max_epochs=6))
    assert outcome.metrics["test_accuracy"] > 0.6  # chance is 0.125 (8 classes)
