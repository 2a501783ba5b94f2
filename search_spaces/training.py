"""The optimisation part of a space, shared by the families trained with the shared torch loop."""

from __future__ import annotations


def suggest_optimization(trial, *, batch_sizes=(16, 32, 64, 128)) -> None:
    """optimizer, lr (or the LR finder), momentum where it applies, weight decay, batch, schedule."""
    optimizer = trial.suggest_categorical("optimizer", ["adam", "adamw", "sgd", "rmsprop"])
    if not trial.suggest_categorical("lr_finder", [True, False]):
        high = 0.3 if optimizer == "sgd" else 1e-2
        trial.suggest_float("lr", 1e-4, high, log=True)
    if optimizer in ("sgd", "rmsprop"):
        trial.suggest_float("momentum", 0.5, 0.99)
    trial.suggest_float("weight_decay", 1e-6, 1e-2, log=True)
    trial.suggest_categorical("batch_size", list(batch_sizes))
    trial.suggest_categorical("one_cycle", [True, False])
    trial.suggest_float("label_smoothing", 0.0, 0.2)
