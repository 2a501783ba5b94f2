"""The sweep's early stopping: whichever scheduler the sweep uses, except for the configurations
chosen before the search."""

from __future__ import annotations

from typing import TYPE_CHECKING

from ray.air.constants import TRAINING_ITERATION
from ray.tune.schedulers import TrialScheduler

if TYPE_CHECKING:
    from ray.tune.experiment import Trial

    from sweep.searcher import SweepSearch


class ChosenRunTheirCourse(TrialScheduler):
    """`scheduler` decides for the configurations the search proposes. The ones chosen before it
    started (the user's --enqueue, the paper's, the space's SEARCH_STARTS: Optuna enqueued trials)
    run their full course: they are the references the search has to beat, and an early rung would
    otherwise compare a one-cycle schedule in its warm-up against faster starters. A STOP for one of
    them below `max_t` (in `time_attr`) becomes CONTINUE; --budget and the chance stop still end them.

    Every other call goes to `scheduler` unchanged, so Tune sees its behaviour (its metric, its
    bookkeeping, its choice of the next trial). Its own counters still count the stops it asked
    for (ASHA's num_stopped in Tune's status line includes the spared ones).

    It holds the sweep's searcher itself (Tune keeps schedulers away from its search algorithm):
    Tune pickles both in one tuner.pkl, so a resumed sweep's scheduler holds the restored searcher."""

    def __init__(
        self, scheduler: TrialScheduler, *, searcher: SweepSearch, max_t: int, time_attr: str = TRAINING_ITERATION
    ):
        super().__init__()
        self.scheduler = scheduler
        self.searcher = searcher
        self.max_t = max_t
        self.time_attr = time_attr

    @property
    def metric(self):
        return self.scheduler.metric

    @property
    def supports_buffered_results(self) -> bool:
        return self.scheduler.supports_buffered_results

    def set_search_properties(self, metric: str | None, mode: str | None, **spec) -> bool:
        return self.scheduler.set_search_properties(metric, mode, **spec)

    def on_trial_add(self, tune_controller, trial: Trial) -> None:
        self.scheduler.on_trial_add(tune_controller, trial)

    def on_trial_error(self, tune_controller, trial: Trial) -> None:
        self.scheduler.on_trial_error(tune_controller, trial)

    def on_trial_result(self, tune_controller, trial: Trial, result: dict) -> str:
        action = self.scheduler.on_trial_result(tune_controller, trial, result)
        if (
            action == self.STOP
            and result.get(self.time_attr, 0) < self.max_t
            and self.searcher.was_enqueued(trial.trial_id)
        ):
            return self.CONTINUE
        return action

    def on_trial_complete(self, tune_controller, trial: Trial, result: dict) -> None:
        self.scheduler.on_trial_complete(tune_controller, trial, result)

    def on_trial_remove(self, tune_controller, trial: Trial) -> None:
        self.scheduler.on_trial_remove(tune_controller, trial)

    def choose_trial_to_run(self, tune_controller) -> Trial | None:
        return self.scheduler.choose_trial_to_run(tune_controller)

    def debug_string(self) -> str:
        return self.scheduler.debug_string()

    def save(self, checkpoint_path: str) -> None:
        self.scheduler.save(checkpoint_path)

    def restore(self, checkpoint_path: str) -> None:
        self.scheduler.restore(checkpoint_path)
