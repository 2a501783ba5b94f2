"""A net trial's checkpoint loads with weights_only=True: it round-trips, and a pickle that would run
code is refused without running it."""

from __future__ import annotations

import pickle
from pathlib import Path

import pytest
import torch

from trainables.core.torch_loop import TRAINING_STATE_FILE, load_training_state, save_training_state


class Payload:
    """What a hostile checkpoint holds: unpickling it calls Path.touch (it could be os.system)."""

    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return (Path.touch, (self.marker,))


def test_a_training_state_round_trips_with_weights_only(tmp_path):
    model = torch.nn.Sequential(torch.nn.Linear(4, 3), torch.nn.BatchNorm1d(3))
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3)
    scheduler = torch.optim.lr_scheduler.OneCycleLR(optimizer, max_lr=0.1, total_steps=10)
    model(torch.randn(8, 4)).sum().backward()
    optimizer.step()
    scheduler.step()
    state = {
        "epoch": 3,
        "lr": 0.1,
        "model": model.state_dict(),
        "optimizer": optimizer.state_dict(),
        "scheduler": scheduler.state_dict(),
        "rng": torch.get_rng_state(),
    }
    save_training_state(tmp_path, state)
    loaded = load_training_state(tmp_path, "cpu")
    assert loaded["epoch"] == 3 and torch.equal(loaded["rng"], state["rng"])
    optimizer.load_state_dict(loaded["optimizer"])
    scheduler.load_state_dict(loaded["scheduler"])
    model.load_state_dict(loaded["model"])


def test_a_checkpoint_that_would_run_code_is_refused(tmp_path):
    marker = tmp_path / "code-ran"
    torch.save({"epoch": 1, "model": Payload(marker)}, tmp_path / TRAINING_STATE_FILE)
    with pytest.raises(pickle.UnpicklingError):
        load_training_state(tmp_path, "cpu")
    assert not marker.exists()
