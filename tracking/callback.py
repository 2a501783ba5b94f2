"""Driver-side guarantee that no trial's run is left RUNNING.

A trial closes its own run on every exit path it sees. This callback covers
the ones it cannot see: Tune stopping its actor before the stop reaches the
training thread (ASHA), or the actor dying (node lost, out of memory).
"""

from __future__ import annotations

import signal
import threading

from mlflow.tracking import MlflowClient
from ray.tune import Callback

from tracking.runs import INTERRUPTED_REASON, TAG_PRUNED, SweepTarget, close_run, find_trial_run

# The signals that stop a sweep cleanly (the CLI exits 128 + the signal's number).
STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)


class TrialRunCloser(Callback):
    def __init__(self, target: SweepTarget, *, completed_key: str):
        self.target = target
        # A trial whose last result has this key completed: its node's recorder closes its run.
        self.completed_key = completed_key
        self.interrupted = False  # Ctrl-C (SIGINT), SIGTERM or SIGHUP stopped the sweep
        self.signum = int(signal.SIGINT)  # which of them
        self._running: list[str] = []  # trial ids running at the last step of Tune's loop
        self.stopped_by_interrupt: list[str] = []  # those running when Ctrl-C came

    def setup(self, **info):  # type: ignore[override]  # Tune passes its hooks' arguments by keyword
        # Tune has just installed its Ctrl-C handler (stop gracefully, save state). Note the signal on
        # its way there: trials Tune then stops were interrupted, not pruned, and the CLI says so.
        # SIGTERM (docker stop, Kubernetes, Ray's stop_job) and SIGHUP (a closed terminal) take the
        # same graceful path instead of killing the driver with its runs left RUNNING.
        if threading.current_thread() is not threading.main_thread():
            return
        tune_handler = signal.getsignal(signal.SIGINT)

        def note_interrupt(signum, frame):
            self.interrupted = True
            self.signum = signum
            self.stopped_by_interrupt = list(self._running)
            if callable(tune_handler):
                tune_handler(signal.SIGINT, frame)

        for signum in STOP_SIGNALS:
            signal.signal(signum, note_interrupt)

    def on_step_begin(self, iteration, trials, **info):
        self._running = [t.trial_id for t in trials if t.status == "RUNNING"]

    def record_interruption(self) -> None:
        """Runs of the trials Ctrl-C stopped end KILLED as interrupted, whatever the trial itself saw
        (Tune's stop reaches it as the same SystemExit as an ASHA stop)."""
        client = MlflowClient(self.target.uri)
        for trial_id in self.stopped_by_interrupt:
            run = find_trial_run(client, self.target, trial_id)
            if run is not None and run.info.status != "FINISHED":
                if TAG_PRUNED in run.data.tags:
                    client.delete_tag(run.info.run_id, TAG_PRUNED)
                close_run(client, run.info.run_id, status="KILLED", reason=INTERRUPTED_REASON)

    def on_trial_complete(self, iteration, trials, trial, **info):
        if (trial.last_result or {}).get(self.completed_key):
            return  # trained and evaluated: its run is being recorded and closes FINISHED
        # Completed while its run is still open: the scheduler stopped it early, or Ctrl-C did.
        if self.interrupted:
            self._close(trial.trial_id, status="KILLED", reason=INTERRUPTED_REASON)
        else:
            self._close(trial.trial_id, status="KILLED", tags={TAG_PRUNED: "true"})

    def on_trial_error(self, iteration, trials, trial, **info):
        self._close(trial.trial_id, status="FAILED", reason=error_text(trial))

    def _close(self, trial_id: str, *, status: str, reason: str = "", tags: dict | None = None) -> None:
        client = MlflowClient(self.target.uri)
        run = find_trial_run(client, self.target, trial_id)
        if run is not None and run.info.status in ("RUNNING", "SCHEDULED"):
            close_run(client, run.info.run_id, status=status, reason=reason, tags=tags)


def error_text(trial) -> str:
    try:
        error = trial.get_error()
    except Exception:  # noqa: BLE001 - the error file may be gone; the status still matters
        error = None
    text = str(error) if error else "trial failed"
    lines = [line for line in text.strip().splitlines() if line.strip()]
    return (lines[-1] if lines else text)[:5000]
