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


def searcher_on(journal: str, *, study: str, samples: int = 0) -> SweepSearch:
    """A SweepSearch over `space` on a journal study, as build_tuner makes one."""
    return SweepSearch(
        space=space,
        metric="val_accuracy",
        mode="max",
        sampler=optuna.samplers.RandomSampler(seed=0),
        study_name=study,
        storage=JournalStorage(JournalFileBackend(journal)),
        samples=samples,
    )


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
    searcher = searcher_on(journal, study="sweep-a")
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


def test_samples_count_against_the_study_across_a_killed_driver(tmp_path):
    """Tune's snapshot lags the study. Under the driver that is then SIGKILLed: t1 completes before
    the snapshot; t2 is running at the snapshot and completes after it; t3 and t4 are asked for after
    it, t3 completes, t4 is running at the kill. The resumed searcher (restored from the snapshot)
    counts t1, t2, t3 (their results are in the study), marks t4 lost, and so asks for one more."""
    journal, snapshot = str(tmp_path / "optuna.journal"), str(tmp_path / "searcher-state.pkl")
    final = {"val_accuracy": 0.5, "epoch": 1, "training_iteration": 1, "trial_completed": 1}
    dying = searcher_on(journal, study="sweep-k", samples=4)
    for trial_id in ("t1", "t2"):
        assert dying.suggest(trial_id)
    dying.on_trial_complete("t1", result=final)
    dying.save(snapshot)
    dying.on_trial_complete("t2", result={**final, "val_accuracy": 0.6})
    assert dying.suggest("t3") and dying.suggest("t4")
    dying.on_trial_complete("t3", result=final)
    assert dying.suggest("t5") == "FINISHED"  # t1-t3 ended, t4 in flight: 4 of 4

    resumed = searcher_on(journal, study="sweep-k", samples=4)
    resumed.restore(snapshot)
    # Tune re-runs t2 (running in its snapshot); it reports again, then completes: no error, no change.
    resumed.on_trial_result("t2", {**final, "epoch": 2, "training_iteration": 2})
    resumed.on_trial_complete("t2", result={**final, "val_accuracy": 0.7, "already_finished": 1})
    assert resumed.suggest("n1")  # t4's slot, searched again
    assert resumed.suggest("n2") == "FINISHED"

    study = optuna.load_study(study_name="sweep-k", storage=JournalStorage(JournalFileBackend(journal)))
    states = [(t.state.name, t.value, t.user_attrs.get("scenesweep_lost", False)) for t in study.trials]
    assert states == [
        ("COMPLETE", 0.5, False),
        ("COMPLETE", 0.6, False),
        ("COMPLETE", 0.5, False),
        ("FAIL", None, True),
        ("RUNNING", None, False),
    ]
