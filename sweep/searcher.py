"""Ray Tune's OptunaSearch, told what actually happened to each trial.

Ray's own searcher tells Optuna COMPLETE with the last reported value when a scheduler (ASHA) stops
a trial early, so TPE ranks a 2-epoch value as if it were a trained result. Here a trial is COMPLETE
only when its final result says it ran its course (`trial_completed`, set by run_trial after test
evaluation); one that Tune stopped early (ASHA, the time budget) or that stopped itself at chance
level is PRUNED, with its per-epoch values as the study's intermediate values, so TPE compares
like with like. A configuration that failed (`trial_failed`) keeps the worst value, which steers
TPE away from it (FAIL for a multi-objective study, which has no single worst value).
"""

from __future__ import annotations

import logging

from optuna.trial import TrialState
from ray.air.constants import TRAINING_ITERATION
from ray.tune.search import Searcher
from ray.tune.search.optuna import OptunaSearch

from sweep.study import mark_lost, sweep_trials_taken
from sweep.trial import ALREADY_FINISHED, TRIAL_COMPLETED, TRIAL_FAILED

logger = logging.getLogger(__name__)


class SweepSearch(OptunaSearch):
    """`samples` (0: no limit) is counted here, not by Tune's num_samples: against the study, which
    outlives a killed driver. Tune's snapshot lags the study; a trial the last driver asked for after
    the snapshot is unknown to the restored Tune. One that completed still counts (its result is in
    the study and MLflow, and is not run again); one that did not is marked lost and its slot is
    searched again."""

    def __init__(self, *args, samples: int = 0, **kwargs):
        super().__init__(*args, **kwargs)
        self.samples = samples

    def suggest(self, trial_id: str) -> dict | None:
        if self.samples and trial_id not in self._ot_trials and self._taken() >= self.samples:
            return Searcher.FINISHED  # type: ignore[return-value]  # Tune's "no more trials" string
        return super().suggest(trial_id)

    def was_enqueued(self, trial_id: str) -> bool:
        """The trial is a configuration chosen before the search (points_to_evaluate), not a proposal."""
        trial = self._ot_trials.get(trial_id)
        return trial is not None and "fixed_params" in trial._cached_frozen_trial.system_attrs

    def restore(self, checkpoint_path: str) -> None:
        super().restore(checkpoint_path)
        self.samples = getattr(self, "samples", 0)  # a sweep saved before the searcher counted
        assert self._ot_study is not None
        known = {trial.number for trial in self._ot_trials.values()}
        for trial in self._ot_study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
            if trial.number not in known:
                mark_lost(self._ot_study, trial)

    def _taken(self) -> int:
        assert self._ot_study is not None
        in_flight = {t.number for tid, t in self._ot_trials.items() if tid not in self._completed_trials}
        return sweep_trials_taken(self._ot_study, in_flight)

    @property
    def multi_objective(self) -> bool:
        return isinstance(self.metric, list)

    def on_trial_result(self, trial_id: str, result: dict) -> None:
        if self.multi_objective or trial_id in self._completed_trials or trial_id not in self._ot_trials:
            return
        if result.get(TRIAL_FAILED) or result.get(ALREADY_FINISHED) or self.metric not in result:
            return
        step = int(result.get("epoch") or result[TRAINING_ITERATION])
        trial = self._ot_trials[trial_id]
        if step in trial._cached_frozen_trial.intermediate_values:  # a resumed trial repeats epochs
            return
        try:
            trial.report(float(result[self.metric]), step)
        except Exception as exc:  # noqa: BLE001 - e.g. it completed under the killed driver; Tune goes on
            logger.warning("Optuna could not record trial %s's step %d: %s", trial_id, step, exc)

    def on_trial_complete(self, trial_id: str, result: dict | None = None, error: bool = False) -> None:
        if trial_id in self._completed_trials or trial_id not in self._ot_trials:
            return
        if result:  # Tune hands the last result (the one ASHA stopped at, the final one) only to this call
            self.on_trial_result(trial_id, result)
        completed = bool(result and result.get(TRIAL_COMPLETED))
        failed = bool(result and result.get(TRIAL_FAILED))
        if not error and result and (completed or (failed and not self.multi_objective)):
            super().on_trial_complete(trial_id, result=result, error=error)
            return
        state = TrialState.FAIL if (error or failed) else TrialState.PRUNED
        assert self._ot_study is not None  # set up in __init__: the space is always given
        try:
            self._ot_study.tell(self._ot_trials[trial_id], state=state)
        except Exception as exc:  # noqa: BLE001 - e.g. already told by an earlier driver; Tune goes on
            logger.warning("Optuna could not record trial %s as %s: %s", trial_id, state.name, exc)
        self._completed_trials.add(trial_id)
