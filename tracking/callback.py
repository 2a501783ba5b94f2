"""Driver-side guarantee that no trial's run is left RUNNING.

A trial closes its own run on every exit path it sees. This callback covers
the ones it cannot see: Tune stopping its actor before the stop reaches the
training thread (ASHA), or the actor dying (node lost, out of memory).
"""

from __future__ import annotations

from mlflow.tracking import MlflowClient
from ray.tune import Callback

from tracking.runs import TAG_ERROR, TAG_PARENT, TAG_PRUNED, TAG_TRIAL_ID, SweepTarget


class TrialRunCloser(Callback):
    def __init__(self, target: SweepTarget):
        self.target = target

    def on_trial_complete(self, iteration, trials, trial, **info):
        # Completed while its run is still open: the scheduler stopped it early.
        self._close(trial.trial_id, status="KILLED", tags={TAG_PRUNED: "true"})

    def on_trial_error(self, iteration, trials, trial, **info):
        self._close(trial.trial_id, status="FAILED", tags={TAG_ERROR: _error_text(trial)})

    def _close(self, trial_id: str, *, status: str, tags: dict) -> None:
        client = MlflowClient(self.target.uri)
        runs = client.search_runs(
            [self.target.experiment_id],
            filter_string=f"tags.`{TAG_TRIAL_ID}` = '{trial_id}' AND tags.`{TAG_PARENT}` = '{self.target.parent_run_id}'",
            max_results=1,
        )
        if runs and runs[0].info.status in ("RUNNING", "SCHEDULED"):
            for key, value in tags.items():
                client.set_tag(runs[0].info.run_id, key, value)
            client.set_terminated(runs[0].info.run_id, status=status)


def _error_text(trial) -> str:
    try:
        error = trial.get_error()
    except Exception:  # noqa: BLE001 - the error file may be gone; the status still matters
        error = None
    text = str(error) if error else "trial failed"
    lines = [line for line in text.strip().splitlines() if line.strip()]
    return (lines[-1] if lines else text)[:5000]
