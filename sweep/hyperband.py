"""Ray's HyperBand, with a trial that has run its course let end instead of paused."""

from __future__ import annotations

from ray.tune.schedulers import HyperBandScheduler, TrialScheduler

from sweep.trial import TRIAL_COMPLETED


class HyperBandToTheEnd(HyperBandScheduler):
    """HyperBand pauses a trial at a rung until the rest of its bracket gets there, and the last rung
    is max_t: a trial's final result (trained, evaluated on test) is paused too. Its function has
    returned, so it can never resume; when the bracket ends Tune stops it as a paused trial and hands
    the searcher no result, which records a finished trial as pruned. A result that says the trial
    ran its course continues instead: Tune ends the trial with that result, and HyperBand drops it
    from its bracket as it does any trial that ends."""

    def on_trial_result(self, tune_controller, trial, result: dict) -> str:
        action = super().on_trial_result(tune_controller, trial, result)
        if action == TrialScheduler.PAUSE and result.get(TRIAL_COMPLETED):
            return TrialScheduler.CONTINUE
        return action
