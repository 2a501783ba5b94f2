"""Failures that belong to one configuration end that trial only (TrialFailed), everything else propagates."""

import pytest
import torch

import trainables.tinynet as tinynet
from trainables.core.session import TrialFailed, TrialSession
from trainables.training import fit_and_evaluate


def _raises(exc):
    def fit(config, dataset, session):
        raise exc

    return fit


def test_gpu_out_of_memory_fails_only_the_trial(monkeypatch, demo_dataset):
    # No GPU here: the error torch raises on one, raised where fit() would raise it.
    monkeypatch.setattr(
        tinynet,
        "fit",
        _raises(
            torch.cuda.OutOfMemoryError(
                "CUDA out of memory. Tried to allocate 20.00 GiB (GPU 0; 79.19 GiB total capacity)"
            )
        ),
    )
    with pytest.raises(
        TrialFailed,
        match=r"out of GPU memory \(CUDA out of memory\. Tried to allocate 20\.00 GiB.*"
        r"pin a smaller --fix batch_size/input_size",
    ):
        fit_and_evaluate({}, demo_dataset, "tinynet", TrialSession(max_epochs=1))


def test_other_errors_propagate_for_tune_to_retry(monkeypatch, demo_dataset):
    monkeypatch.setattr(tinynet, "fit", _raises(RuntimeError("worker lost its connection")))
    with pytest.raises(RuntimeError, match="worker lost its connection"):
        fit_and_evaluate({}, demo_dataset, "tinynet", TrialSession(max_epochs=1))
