"""The sweep's early stopping: ASHA, except for the configurations chosen before the search."""

from __future__ import annotations

from ray.tune.schedulers import ASHAScheduler

from sweep.searcher import SweepSearch


class ChosenRunTheirCourse(ASHAScheduler):
    """ASHA for the configurations the search proposes. The ones chosen before it started (the user's
    --enqueue, the paper's, the space's SEARCH_STARTS: Optuna enqueued trials) run their full
    course: they are the references the search has to beat, and an early rung would otherwise
    compare a one-cycle schedule in its warm-up against faster starters. --budget and the chance
    stop still end them.

    It holds the sweep's searcher itself (Tune keeps schedulers away from its search algorithm):
    Tune pickles both in one tuner.pkl, so a resumed sweep's scheduler holds the restored searcher."""

    def __init__(self, *, searcher: SweepSearch, **asha):
        super().__init__(**asha)
        self.searcher = searcher

    def on_trial_result(self, tune_controller, trial, result: dict) -> str:
        action = super().on_trial_result(tune_controller, trial, result)
        if (
            action == self.STOP
            and result.get(self._time_attr, 0) < self._max_t
            and self.searcher.was_enqueued(trial.trial_id)
        ):
            self._num_stopped -= 1
            return self.CONTINUE
        return action
