"""SweepSearch tells Optuna what happened to each trial: COMPLETE only for a trial that ran its course,
PRUNED (with its per-epoch values) for one stopped early, the worst value for a failed configuration.
Real Ray searcher, real Optuna journal storage, read back with optuna.load_study as an outside tool would."""

import math

import optuna
import pytest
from optuna.storages.journal import JournalFileBackend, JournalStorage

from sweep.searcher import SweepSearch


def space(trial):
    trial.suggest_float("lr", 1e-4, 1e-1, log=True)


def epochs(*values):
    return [{"val_accuracy": v, "epoch": i, "training_iteration": i} for i, v in enumerate(values, start=1)]


CASES = [
    # id, results seen while running, last result (None: none), error, state, value, intermediate values
    (
        "ran its course",
        epochs(0.3, 0.5),
        {"val_accuracy": 0.8, "epoch": 3, "training_iteration": 3, "trial_completed": 1, "test_accuracy": 0.7},
        False,
        "COMPLETE",
        0.8,
        {1: 0.3, 2: 0.5, 3: 0.8},
    ),
    ("stopped by ASHA", epochs(0.3), epochs(0.3, 0.4)[1], False, "PRUNED", 0.4, {1: 0.3, 2: 0.4}),
    (
        "stopped at chance level",
        epochs(0.125),
        {"val_accuracy": 0.125, "epoch": 2, "training_iteration": 2, "chance_stopped": 1},
        False,
        "PRUNED",
        0.125,
        {1: 0.125, 2: 0.125},
    ),
    (
        "failed configuration",
        [],
        {"val_accuracy": float("-inf"), "training_iteration": 1, "trial_failed": 1},
        False,
        "COMPLETE",
        float("-inf"),
        {},
    ),
    ("crashed", epochs(0.3), None, True, "FAIL", None, {1: 0.3}),
    ("never started (budget ran out)", [], None, False, "PRUNED", None, {}),
    (
        "resumed after it had finished",
        [],
        {"val_accuracy": 0.6, "training_iteration": 1, "already_finished": 1, "trial_completed": 1},
        False,
        "COMPLETE",
        0.6,
        {},
    ),
]


@pytest.mark.parametrize(
    "results, last, error, state, value, intermediate", [c[1:] for c in CASES], ids=[c[0] for c in CASES]
)
def test_each_way_a_trial_ends_is_told_to_optuna(tmp_path, results, last, error, state, value, intermediate):
    journal = str(tmp_path / "optuna.journal")
    searcher = SweepSearch(
        space=space,
        metric="val_accuracy",
        mode="max",
        sampler=optuna.samplers.RandomSampler(seed=0),
        study_name="sweep-a",
        storage=JournalStorage(JournalFileBackend(journal)),
    )
    assert "lr" in searcher.suggest("t1")
    for result in results:
        searcher.on_trial_result("t1", result)
    searcher.on_trial_complete("t1", result=last, error=error)
    searcher.on_trial_complete("t1", result=last, error=error)  # told twice (a resumed driver): no change

    study = optuna.load_study(study_name="sweep-a", storage=JournalStorage(JournalFileBackend(journal)))
    (trial,) = study.trials
    assert trial.state.name == state
    assert trial.value == value or (value is not None and math.isinf(value) and trial.value == value)
    assert trial.intermediate_values == intermediate
