"""Ray's schedulers that pause trials, fitted to a trial that ends when its function returns.

A paused trial is resumed later from its checkpoint. A trial whose final result (trained, evaluated
on test: TRIAL_COMPLETED) is paused has returned already, so it never resumes: Tune stops it at the
end as a paused trial and hands the searcher no result, which records a finished trial as pruned."""

from __future__ import annotations

from ray.tune.schedulers import HyperBandScheduler, MedianStoppingRule, TrialScheduler

from sweep.trial import TRIAL_COMPLETED


class HyperBandToTheEnd(HyperBandScheduler):
    """HyperBand pauses a trial at a rung until the rest of its bracket gets there, and its last rung
    is max_t. A result that says the trial ran its course continues instead: Tune ends the trial
    with that result, and HyperBand drops it from its bracket as it does any trial that ends."""

    def on_trial_result(self, tune_controller, trial, result: dict) -> str:
        action = super().on_trial_result(tune_controller, trial, result)
        if action == TrialScheduler.PAUSE and result.get(TRIAL_COMPLETED):
            return TrialScheduler.CONTINUE
        return action


class MedianStoppingOnly(MedianStoppingRule):
    """The median stopping rule as a stopper only. With fewer than min_samples_required trials to
    compare, Ray's rule pauses the trial to give pending ones a turn (its min_time_slice cannot turn
    that off: a trial's first pause is always due); for a trial that restarts its worker on resume
    that costs a restart per pause, and a paused final result is lost. Here the trial goes on."""

    def on_trial_result(self, tune_controller, trial, result: dict) -> str:
        action = super().on_trial_result(tune_controller, trial, result)
        return TrialScheduler.CONTINUE if action == TrialScheduler.PAUSE else action
