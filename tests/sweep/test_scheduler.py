"""ChosenRunTheirCourse wraps the sweep's scheduler: it stops a proposed trial that trails; a
configuration chosen before the search (Optuna enqueued: --enqueue, the paper's, SEARCH_STARTS) trails
the same way and goes on, up to max_t. Everything else is the wrapped scheduler's, as Tune sees it.
Real Tune schedulers and trials, real SweepSearch on an in-memory Optuna study."""

import pickle

import optuna
import pytest
from ray.tune.experiment import Trial
from ray.tune.schedulers import ASHAScheduler, FIFOScheduler, MedianStoppingRule, TrialScheduler

from sweep.scheduler import ChosenRunTheirCourse
from sweep.searcher import SweepSearch

CONTINUE, STOP = TrialScheduler.CONTINUE, TrialScheduler.STOP
MAX_T = 20


def space(trial):
    trial.suggest_float("lr", 1e-4, 1e-1, log=True)


def chosen_searcher() -> SweepSearch:
    """Three trials asked for: "chosen" (the enqueued point, asked first), "leader", "proposed"."""
    searcher = SweepSearch(
        space=space,
        metric="val_accuracy",
        mode="max",
        sampler=optuna.samplers.RandomSampler(seed=0),
        points_to_evaluate=[{"lr": 0.003}],
    )
    for trial_id in ("chosen", "leader", "proposed"):
        searcher.suggest(trial_id)
    assert searcher.was_enqueued("chosen") and not searcher.was_enqueued("proposed")
    return searcher


def asha():
    return ASHAScheduler(metric="val_accuracy", mode="max", max_t=MAX_T, grace_period=2, reduction_factor=3)


def median():
    return MedianStoppingRule(
        time_attr="training_iteration", metric="val_accuracy", mode="max", grace_period=1, min_samples_required=1
    )


CASES = [
    # id, the wrapped scheduler, (trial, training_iteration, val_accuracy, the wrapper's decision) in
    # order; decision None: the trial completes with that result
    (
        "asha",
        asha,
        [
            ("leader", 2, 0.9, CONTINUE),
            ("proposed", 2, 0.2, STOP),
            ("chosen", 2, 0.2, CONTINUE),  # trails just as far, runs its course
            ("chosen", MAX_T, 0.2, STOP),  # at max_t, as ASHA does
        ],
    ),
    (
        "median stopping",
        median,
        [("leader", 2, 0.9, None), ("proposed", 2, 0.2, STOP), ("chosen", 2, 0.2, CONTINUE)],
    ),
    ("fifo", FIFOScheduler, [("proposed", 2, 0.2, CONTINUE), ("chosen", MAX_T, 0.2, CONTINUE)]),
]


@pytest.mark.parametrize("make, steps", [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_the_scheduler_stops_proposals_and_spares_the_chosen_configurations(make, steps):
    scheduler = ChosenRunTheirCourse(make(), searcher=chosen_searcher(), max_t=MAX_T)
    controller = None  # Tune's controller: these schedulers do not read it on a result
    trials = {name: Trial("__fake", trial_id=name, stub=True) for name in ("leader", "chosen", "proposed")}
    for trial in trials.values():
        scheduler.on_trial_add(controller, trial)
    decisions = []
    for name, t, value, expected in steps:
        result = {"training_iteration": t, "val_accuracy": value}
        if expected is None:
            decisions.append(scheduler.on_trial_complete(controller, trials[name], result))
        else:
            decisions.append(scheduler.on_trial_result(controller, trials[name], result))
    assert decisions == [decision for *_, decision in steps]


def test_tune_sees_the_wrapped_scheduler():
    inner = asha()
    scheduler = ChosenRunTheirCourse(inner, searcher=chosen_searcher(), max_t=MAX_T)
    assert scheduler.metric == "val_accuracy" == inner.metric
    assert scheduler.supports_buffered_results == inner.supports_buffered_results
    assert scheduler.debug_string() == inner.debug_string()
    # Tune's metric= beside a scheduler that has its own is refused, as the wrapped scheduler refuses it.
    assert scheduler.set_search_properties(None, None) and not scheduler.set_search_properties("loss", "min")
    unset = ChosenRunTheirCourse(ASHAScheduler(), searcher=chosen_searcher(), max_t=MAX_T)
    assert unset.set_search_properties("val_accuracy", "max") and unset.metric == "val_accuracy"
    trial = Trial("__fake", trial_id="proposed", stub=True)
    scheduler.on_trial_add(None, trial)
    scheduler.on_trial_remove(None, trial)
    with pytest.raises(KeyError):  # ASHA forgot it: the removal reached it
        scheduler.on_trial_result(None, trial, {"training_iteration": 2, "val_accuracy": 0.1})


def test_it_pickles_with_its_searcher_as_tune_saves_them():
    """Tune pickles the searcher and the scheduler into one tuner.pkl: the restored scheduler asks the
    restored searcher, and its ASHA keeps its rungs."""
    searcher = chosen_searcher()
    scheduler = ChosenRunTheirCourse(asha(), searcher=searcher, max_t=MAX_T)
    trials = {name: Trial("__fake", trial_id=name, stub=True) for name in ("leader", "chosen", "proposed")}
    for trial in trials.values():
        scheduler.on_trial_add(None, trial)
    assert scheduler.on_trial_result(None, trials["leader"], {"training_iteration": 2, "val_accuracy": 0.9}) == CONTINUE

    searcher_again, scheduler_again = pickle.loads(pickle.dumps((searcher, scheduler)))
    assert scheduler_again.searcher is searcher_again
    for name, decision in (("proposed", STOP), ("chosen", CONTINUE)):
        result = {"training_iteration": 2, "val_accuracy": 0.2}
        assert scheduler_again.on_trial_result(None, trials[name], result) == decision
