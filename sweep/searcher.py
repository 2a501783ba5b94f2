"""The sweep's Tune searcher: Optuna's ask-and-tell over the sweep's persistent study, told what
actually happened to each trial.

A trial is COMPLETE only when its final result says it ran its course (`trial_completed`, set by
run_trial after test evaluation); one that Tune stopped early (ASHA, the time budget) or that stopped
itself at chance level is PRUNED, with its per-epoch values as the study's intermediate values, so
the sampler compares like with like (Ray's own OptunaSearch tells COMPLETE with a 2-epoch value). A
configuration that failed (`trial_failed`) keeps the worst value, which steers the sampler away
from it (FAIL for a multi-objective study, which has no single worst value).

Only public interfaces: `ray.tune.search.Searcher`; Optuna's `study.ask`, `trial.report`,
`study.tell`, `study.enqueue_trial` and user attributes (sweep/study.py names them).
"""

from __future__ import annotations

import logging
import pickle
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import optuna
from optuna.trial import TrialState
from ray.air.constants import TRAINING_ITERATION
from ray.tune.search import Searcher

from sweep.study import ENQUEUED_ATTR, mark_lost, sweep_trials_taken
from sweep.trial import ALREADY_FINISHED, TRIAL_COMPLETED, TRIAL_FAILED

if TYPE_CHECKING:
    from optuna.samplers import BaseSampler
    from optuna.storages import BaseStorage

logger = logging.getLogger(__name__)

Space = Callable[[optuna.Trial], dict | None]  # define-by-run: suggests, returns constants to add


class SweepSearch(Searcher):
    """`space` is an Optuna define-by-run function; `metric` and `mode` are lists for a
    multi-objective study. `points_to_evaluate` are enqueued in the study and run first, in order
    (`was_enqueued` tells them apart). `samples` (0: no limit) is counted here, not by Tune's
    num_samples: against the study, which outlives a killed driver.

    Tune's snapshot lags the study; a trial the last driver asked for after the snapshot is unknown
    to the restored searcher. One that completed still counts (its result is in the study and
    MLflow, and is not run again); one that did not is marked lost and its slot is searched again.

    Tune pickles the searcher into tuner.pkl and calls save/restore on its experiment checkpoints.
    The study lives in its storage; the searcher's own state is which Optuna trial each Tune trial
    is (a resumed Tune trial keeps its id). It keeps each trial's Optuna handle, the only public way
    to report an intermediate value, and pickles it with the study it belongs to."""

    def __init__(
        self,
        *,
        space: Space,
        metric: str | list[str],
        mode: str | list[str],
        sampler: BaseSampler | None = None,
        points_to_evaluate: list[dict] | None = None,
        study_name: str | None = None,
        storage: BaseStorage | None = None,
        samples: int = 0,
    ):
        super().__init__(metric=metric, mode=mode)  # type: ignore[arg-type]  # Tune takes lists too
        self.space = space
        self.samples = samples
        modes = mode if isinstance(mode, list) else [mode]
        self.study = optuna.create_study(
            study_name=study_name or "optuna",
            storage=storage,
            sampler=sampler,
            pruner=optuna.pruners.NopPruner(),  # Tune's scheduler stops trials, not Optuna
            directions=["maximize" if m == "max" else "minimize" for m in modes],
            load_if_exists=True,
        )
        self._enqueue_chosen(points_to_evaluate or [])
        self._trials: dict[str, optuna.Trial] = {}  # Tune trial id -> its Optuna trial
        self._ended: set[str] = set()  # told to Optuna (or found finished there on restore)
        self._enqueued: set[str] = set()
        self._steps: dict[str, set[int]] = {}  # the intermediate values each trial has in the study

    def _enqueue_chosen(self, points: list[dict]) -> None:
        """The chosen configurations first, once per study: a search started over on its study
        (sweep.study.start_over) finds them queued already."""
        if any(trial.user_attrs.get(ENQUEUED_ATTR) for trial in self.study.get_trials(deepcopy=False)):
            return
        for point in points:
            self.study.enqueue_trial(point, user_attrs={ENQUEUED_ATTR: True})

    @property
    def multi_objective(self) -> bool:
        return isinstance(self.metric, list)

    def set_search_properties(self, metric: str | None, mode: str | None, config: dict, **spec) -> bool:
        return False  # the space, metric and mode were given to the constructor

    def suggest(self, trial_id: str) -> dict | None:
        trial = self._trials.get(trial_id)
        if trial is None:
            if self.samples and self._taken() >= self.samples:
                return Searcher.FINISHED  # type: ignore[return-value]  # Tune's "no more trials" string
            trial = self.study.ask()  # an enqueued point first, in the order given
            self._trials[trial_id] = trial
            self._steps[trial_id] = set()
            if trial.user_attrs.get(ENQUEUED_ATTR):
                self._enqueued.add(trial_id)
        constants = self.space(trial) or {}  # an asked trial answers each suggest_* with its own value
        return {**trial.params, **constants}

    def was_enqueued(self, trial_id: str) -> bool:
        """The trial is a configuration chosen before the search (points_to_evaluate), not a proposal."""
        return trial_id in self._enqueued

    def on_trial_result(self, trial_id: str, result: dict) -> None:
        if self.multi_objective or trial_id in self._ended or trial_id not in self._trials:
            return
        if result.get(TRIAL_FAILED) or result.get(ALREADY_FINISHED) or self.metric not in result:
            return
        step = int(result.get("epoch") or result[TRAINING_ITERATION])
        if step in self._steps[trial_id]:  # a resumed trial repeats epochs
            return
        try:
            self._trials[trial_id].report(float(result[self.metric]), step)
        except Exception as exc:  # noqa: BLE001 - e.g. it completed under the killed driver; Tune goes on
            logger.warning("Optuna could not record trial %s's step %d: %s", trial_id, step, exc)
            return
        self._steps[trial_id].add(step)

    def on_trial_complete(self, trial_id: str, result: dict | None = None, error: bool = False) -> None:
        if trial_id in self._ended or trial_id not in self._trials:
            return
        if result:  # Tune hands the last result (the one ASHA stopped at, the final one) only to this call
            self.on_trial_result(trial_id, result)
        completed = bool(result and result.get(TRIAL_COMPLETED))
        failed = bool(result and result.get(TRIAL_FAILED))
        values: Any = None
        if not error and result and (completed or (failed and not self.multi_objective)):
            values = [result.get(m) for m in self.metric] if self.multi_objective else result.get(self.metric)
        if values is not None:
            state = TrialState.COMPLETE
        else:
            state = TrialState.FAIL if (error or failed) else TrialState.PRUNED
        try:
            self.study.tell(self._trials[trial_id], values, state=state)
        except Exception as exc:  # noqa: BLE001 - e.g. a NaN value; Tune goes on
            logger.warning("Optuna could not record trial %s as %s: %s", trial_id, state.name, exc)
        self._ended.add(trial_id)

    def get_state(self) -> dict:
        return {
            "study": self.study,
            "trials": self._trials,
            "ended": self._ended,
            "enqueued": self._enqueued,
            "steps": self._steps,
        }

    def set_state(self, state: dict) -> None:
        """The state a snapshot saved, reconciled with the study, which may have moved on since."""
        self.study = state["study"]
        self._trials = state["trials"]
        self._ended = state["ended"]
        self._enqueued = state["enqueued"]
        self._steps = state["steps"]
        known = {trial.number: trial_id for trial_id, trial in self._trials.items()}
        for trial in self.study.get_trials(deepcopy=False):
            trial_id = known.get(trial.number)
            if trial_id is None:
                if trial.state == TrialState.RUNNING:  # asked for after the snapshot: never to be resumed
                    mark_lost(self.study, trial.number)
            elif trial_id not in self._ended:
                if trial.state.is_finished():  # told under the killed driver after the snapshot
                    self._ended.add(trial_id)
                else:  # epochs reported after the snapshot, which the resumed trial will repeat
                    self._steps[trial_id] = set(trial.intermediate_values)

    def save(self, checkpoint_path: str) -> None:
        with open(checkpoint_path, "wb") as handle:
            pickle.dump(self.get_state(), handle)

    def restore(self, checkpoint_path: str) -> None:
        with open(checkpoint_path, "rb") as handle:
            self.set_state(pickle.load(handle))

    def _taken(self) -> int:
        in_flight = {trial.number for trial_id, trial in self._trials.items() if trial_id not in self._ended}
        return sweep_trials_taken(self.study, in_flight)
