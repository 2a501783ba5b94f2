"""ChosenRunTheirCourse: ASHA stops a proposed trial that trails at a rung; a configuration chosen
before the search (Optuna enqueued: --enqueue, the paper's, SEARCH_STARTS) trails the same way and
goes on. Real Tune scheduler and trials, real SweepSearch on an in-memory Optuna study."""

import optuna
from ray.tune.experiment import Trial
from ray.tune.schedulers import TrialScheduler

from sweep.scheduler import ChosenRunTheirCourse
from sweep.searcher import SweepSearch


def space(trial):
    trial.suggest_float("lr", 1e-4, 1e-1, log=True)


def test_asha_spares_the_chosen_configurations_and_prunes_the_proposals():
    searcher = SweepSearch(
        space=space,
        metric="val_accuracy",
        mode="max",
        sampler=optuna.samplers.RandomSampler(seed=0),
        points_to_evaluate=[{"lr": 0.003}],
    )
    scheduler = ChosenRunTheirCourse(
        searcher=searcher, metric="val_accuracy", mode="max", max_t=20, grace_period=2, reduction_factor=3
    )
    controller = None  # Tune's controller: ASHA does not read it
    leader, chosen, proposed = (Trial("__fake", trial_id=name, stub=True) for name in ("leader", "chosen", "proposed"))
    searcher.suggest("chosen")  # the enqueued point goes first
    searcher.suggest("leader")
    searcher.suggest("proposed")
    assert searcher.was_enqueued("chosen") and not searcher.was_enqueued("proposed")
    for trial in (leader, chosen, proposed):
        scheduler.on_trial_add(controller, trial)
        scheduler._trial_info[trial.trial_id] = scheduler._brackets[0]  # one bracket: the rungs compare all three

    def at_rung(trial, value):
        return scheduler.on_trial_result(controller, trial, {"training_iteration": 2, "val_accuracy": value})

    assert at_rung(leader, 0.9) == TrialScheduler.CONTINUE
    assert at_rung(proposed, 0.2) == TrialScheduler.STOP
    assert at_rung(chosen, 0.2) == TrialScheduler.CONTINUE  # trails just as far, runs its course
    last = {"training_iteration": 20, "val_accuracy": 0.2}
    assert scheduler.on_trial_result(controller, chosen, last) == TrialScheduler.STOP  # at max_t, as ASHA does
