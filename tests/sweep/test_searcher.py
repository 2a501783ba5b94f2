"""SweepSearch tells Optuna what happened to each trial: COMPLETE only for a trial that ran its course,
PRUNED (with its per-epoch values) for one stopped early, the worst value for a failed configuration.
Real Ray searcher, real Optuna journal storage, read back with optuna.load_study as an outside tool would."""

import math
import pickle

import optuna
import pytest
from optuna.storages.journal import JournalFileBackend, JournalStorage
from ray.tune.search import ConcurrencyLimiter, SearchGenerator

from sweep.searcher import SweepSearch
from sweep.study import lost_trials, start_over


def space(trial):
    trial.suggest_float("lr", 1e-4, 1e-1, log=True)


def searcher_on(journal: str, *, study: str, samples: int = 0, chosen: list[dict] | None = None) -> SweepSearch:
    """A SweepSearch over `space` on a journal study, as build_tuner makes one (`chosen` run first)."""
    return SweepSearch(
        space=space,
        metric="val_accuracy",
        mode="max",
        sampler=optuna.samplers.RandomSampler(seed=0),
        points_to_evaluate=chosen,
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
    lost = lost_trials(study)
    states = [(t.state.name, t.value, t.number in lost) for t in study.trials]
    assert states == [
        ("COMPLETE", 0.5, False),
        ("COMPLETE", 0.6, False),
        ("COMPLETE", 0.5, False),
        ("FAIL", None, True),
        ("RUNNING", None, False),
    ]


def journal_study(journal: str, name: str) -> optuna.Study:
    """The study as an outside tool (optuna.load_study, the dashboard) reads it."""
    return optuna.load_study(study_name=name, storage=JournalStorage(JournalFileBackend(journal)))


def test_chosen_configurations_run_first_in_order_and_are_told_apart(tmp_path):
    journal = str(tmp_path / "optuna.journal")
    chosen = [{"lr": 0.003}, {"lr": 0.02}]
    searcher = searcher_on(journal, study="sweep-e", chosen=chosen)
    assert [searcher.suggest(t) for t in ("t1", "t2")] == chosen
    assert searcher.suggest("t3")["lr"] not in (0.003, 0.02)
    assert [searcher.was_enqueued(t) for t in ("t1", "t2", "t3", "unknown")] == [True, True, False, False]
    assert searcher.suggest("t1") == chosen[0]  # asked again for a trial it knows: the same configuration


def test_warm_start_trials_are_learned_from_never_run_nor_counted(tmp_path):
    """Trials added to the study before the search (--warm-start) are COMPLETE or PRUNED already: the
    search asks for new trials beside them, and --samples counts only the sweep's own."""
    journal = str(tmp_path / "optuna.journal")
    study = optuna.create_study(
        study_name="sweep-w", storage=JournalStorage(JournalFileBackend(journal)), direction="maximize"
    )
    lr = optuna.distributions.FloatDistribution(1e-4, 1e-1, log=True)
    for value, state in ((0.7, "COMPLETE"), (0.4, "PRUNED")):
        study.add_trial(
            optuna.trial.create_trial(
                state=optuna.trial.TrialState[state],
                value=value,
                params={"lr": 0.01},
                distributions={"lr": lr},
                user_attrs={"warm_start_from": "earlier"},
            )
        )
    searcher = searcher_on(journal, study="sweep-w", samples=1)
    assert searcher.suggest("t1") and searcher.suggest("t2") == "FINISHED"
    trials = journal_study(journal, "sweep-w").trials
    assert [(t.number, t.state.name) for t in trials] == [(0, "COMPLETE"), (1, "PRUNED"), (2, "RUNNING")]


def test_running_trials_are_running_in_the_study_for_the_constant_liar(tmp_path):
    """TPE's constant liar (the sampler's own setting) counts the study's RUNNING trials as bad results:
    each trial Tune runs is RUNNING in the study from suggest to its end."""
    journal = str(tmp_path / "optuna.journal")
    sampler = optuna.samplers.TPESampler(seed=0, n_startup_trials=1, constant_liar=True)
    searcher = SweepSearch(
        space=space,
        metric="val_accuracy",
        mode="max",
        sampler=sampler,
        study_name="sweep-c",
        storage=JournalStorage(JournalFileBackend(journal)),
    )
    assert searcher.study.sampler is sampler
    for trial_id in ("t1", "t2", "t3"):
        searcher.suggest(trial_id)
    searcher.on_trial_complete("t1", result={"val_accuracy": 0.5, "training_iteration": 1, "trial_completed": 1})
    states = [t.state.name for t in journal_study(journal, "sweep-c").trials]
    assert states == ["COMPLETE", "RUNNING", "RUNNING"]


MULTI = [
    # id, last result, error, state, values
    (
        "ran its course",
        {"val_accuracy": 0.8, "params": 1200, "training_iteration": 3, "trial_completed": 1},
        False,
        "COMPLETE",
        [0.8, 1200],
    ),
    ("stopped early", {"val_accuracy": 0.4, "training_iteration": 2}, False, "PRUNED", None),
    ("failed configuration", {"val_accuracy": float("-inf"), "trial_failed": 1}, False, "FAIL", None),
    ("crashed", None, True, "FAIL", None),
]


@pytest.mark.parametrize("last, error, state, values", [c[1:] for c in MULTI], ids=[c[0] for c in MULTI])
def test_multi_objective_trials_are_told_every_objective(tmp_path, last, error, state, values):
    journal = str(tmp_path / "optuna.journal")
    searcher = SweepSearch(
        space=space,
        metric=["val_accuracy", "params"],
        mode=["max", "min"],
        sampler=optuna.samplers.RandomSampler(seed=0),
        study_name="sweep-m",
        storage=JournalStorage(JournalFileBackend(journal)),
    )
    searcher.suggest("t1")
    for result in epochs(0.3, 0.4):  # Optuna keeps no intermediate values for several objectives
        searcher.on_trial_result("t1", result)
    searcher.on_trial_complete("t1", result=last, error=error)
    study = journal_study(journal, "sweep-m")
    assert [d.name for d in study.directions] == ["MAXIMIZE", "MINIMIZE"]
    (trial,) = study.trials
    assert (trial.state.name, trial.values, trial.intermediate_values) == (state, values, {})


def test_a_restored_searcher_goes_on_with_the_same_optuna_trials(tmp_path):
    """Tune pickles the searcher into tuner.pkl, then restores it from its latest searcher-state file.
    A trial running at the snapshot resumes under its Tune id, reports to the same Optuna trial, and
    the epochs it repeats (reported under the killed driver, after the snapshot) keep their values."""
    journal, snapshot = str(tmp_path / "optuna.journal"), str(tmp_path / "searcher-state.pkl")
    chosen = [{"lr": 0.003}]
    first = searcher_on(journal, study="sweep-r", chosen=chosen)
    tuner_pkl = pickle.dumps(first)  # before the sweep starts, as Tuner() does
    assert first.suggest("chosen") == chosen[0] and first.suggest("proposed")
    first.on_trial_result("proposed", epochs(0.3)[0])
    first.save(snapshot)
    first.on_trial_result("proposed", epochs(0.3, 0.5)[1])  # after the snapshot; then the driver dies

    resumed = pickle.loads(tuner_pkl)
    resumed.restore(snapshot)
    assert resumed.was_enqueued("chosen") and not resumed.was_enqueued("proposed")
    for result in epochs(0.31, 0.51, 0.6):  # resumed from its epoch-1 checkpoint: epochs 2 and 3 again
        resumed.on_trial_result("proposed", result)
    resumed.on_trial_complete("proposed", result={**epochs(0.31, 0.51, 0.6)[2], "trial_completed": 1})
    assert resumed.suggest("next")  # a new trial, not one of the two it knows

    trials = journal_study(journal, "sweep-r").trials
    assert [(t.state.name, t.params["lr"] == 0.003) for t in trials] == [
        ("RUNNING", True),
        ("COMPLETE", False),
        ("RUNNING", False),
    ]
    assert (trials[1].value, trials[1].intermediate_values) == (0.6, {1: 0.3, 2: 0.5, 3: 0.6})


def test_tune_checkpoints_the_searcher_in_its_experiment_folder(tmp_path):
    """Tune's own checkpointing: the search generator and its ConcurrencyLimiter (--max-concurrent)
    save the searcher into the experiment folder and restore it from there."""
    journal = str(tmp_path / "optuna.journal")
    generator = SearchGenerator(ConcurrencyLimiter(searcher_on(journal, study="sweep-t"), max_concurrent=2))
    assert generator.searcher.suggest("t1")
    generator.save_to_dir(str(tmp_path), session_str="s1")

    restored = SearchGenerator(ConcurrencyLimiter(searcher_on(journal, study="sweep-t"), max_concurrent=2))
    restored.restore_from_dir(str(tmp_path))
    restored.on_trial_complete("t1", result={"val_accuracy": 0.7, "training_iteration": 1, "trial_completed": 1})
    (trial,) = journal_study(journal, "sweep-t").trials
    assert (trial.state.name, trial.value) == ("COMPLETE", 0.7)


def test_a_search_started_over_after_an_early_kill_queues_each_chosen_configuration_once(tmp_path):
    """A driver killed before Tune's first snapshot leaves a study with its chosen configurations
    queued, some asked for (RUNNING, never to end). `resume` starts the search over on that study:
    those are lost, the lost chosen ones are queued again, the waiting ones are not queued twice."""
    journal = str(tmp_path / "optuna.journal")
    chosen = [{"lr": 0.01}, {"lr": 0.02}, {"lr": 0.03}]

    def searcher() -> SweepSearch:
        return searcher_on(journal, study="early", samples=3, chosen=chosen)

    dying = searcher()
    assert dying.suggest("a") and dying.suggest("b")  # the first two chosen, asked for, then the kill
    assert start_over(journal_study(journal, "early")) == 2  # what build_tuner does on such a resume
    again = searcher()
    assert sorted(lost_trials(journal_study(journal, "early"))) == [0, 1]
    asked = [again.suggest(t) for t in ("x", "y", "z")]
    assert sorted(c["lr"] for c in asked) == [0.01, 0.02, 0.03]
    assert all(again.was_enqueued(t) for t in ("x", "y", "z"))
    assert again.suggest("w") == "FINISHED"  # lost trials do not count against --samples 3
    waiting = [t for t in journal_study(journal, "early").trials if t.state.name == "WAITING"]
    assert waiting == []
