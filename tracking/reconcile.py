"""`resume` squares MLflow with the restored Tune state.

Tune snapshots its state every few seconds, MLflow records at once: a driver killed in between
leaves a child run whose trial the snapshot never knew. Tune re-suggests that slot under a new
trial id, so the old run would stay open (or count twice) forever. It is closed as lost instead.
"""

from __future__ import annotations

import math
import time

from mlflow.entities import Metric
from mlflow.tracking import MlflowClient
from ray.tune.result import AUTO_RESULT_KEYS, DONE

from tracking.runs import TAG_ERROR, TAG_LOST, TAG_PRUNED, TAG_ROLE, TAG_TRIAL_ID, SweepTarget, close_run, trial_runs

DRIVER_LOST_REASON = "lost with the driver: the restored Tune state does not know this trial"


def close_lost_trial_runs(client: MlflowClient, target: SweepTarget, *, known: set[str]) -> list[str]:
    """Close every unfinished child run whose trial id is not in `known` as KILLED, tagged lost;
    returns their run ids, oldest first. A FINISHED run keeps its result: nothing of it was lost."""
    lost = []
    for run in trial_runs(client, target):
        tags = run.data.tags
        if tags.get(TAG_TRIAL_ID) in known or run.info.status == "FINISHED" or tags.get(TAG_LOST) == "true":
            continue
        if tags.get(TAG_ROLE) == "refit":  # a refit is no search trial: it never takes a slot (sweep/refit.py)
            continue
        if TAG_PRUNED in tags:
            client.delete_tag(run.info.run_id, TAG_PRUNED)
        close_run(client, run.info.run_id, status="KILLED", reason=DRIVER_LOST_REASON, tags={TAG_LOST: "true"})
        lost.append(run.info.run_id)
    return lost


TUNE_KEYS = frozenset({*AUTO_RESULT_KEYS, DONE, "epoch"})  # what Tune adds to a result, and the epoch counter
UNRECORDED_REASON = (
    "lost with the driver while its node's recorder wrote it: no model or figures; "
    "its final metrics come from the saved Tune state"
)


def close_unrecorded_trial_runs(client: MlflowClient, target: SweepTarget, *, completed: dict[str, dict]) -> list[str]:
    """Close, FAILED and saying why, the unfinished runs of trials that `completed` (trial id -> the
    last result the saved Tune state holds) says had trained and been evaluated: their records were
    handed to a recorder that died with the driver. The result's metrics are logged on the run first,
    so what Tune knew of the trial is not lost. Returns their run ids."""
    closed = []
    for run in trial_runs(client, target):
        result = completed.get(run.data.tags.get(TAG_TRIAL_ID, ""))
        if result is None or run.info.status in ("FINISHED", "FAILED", "KILLED"):
            continue
        metrics = {
            k: float(v)
            for k, v in result.items()
            if isinstance(v, (int, float)) and not isinstance(v, bool) and k not in TUNE_KEYS
        }
        timestamp = int(time.time() * 1000)
        client.log_batch(
            run.info.run_id,
            metrics=[Metric(k, v, timestamp, 0) for k, v in sorted(metrics.items()) if math.isfinite(v)][:1000],
        )
        close_run(client, run.info.run_id, status="FAILED", reason=UNRECORDED_REASON)
        closed.append(run.info.run_id)
    return closed


def recorded_trial_ids(client: MlflowClient, target: SweepTarget) -> set[str]:
    """The trial ids of the sweep's child runs so far."""
    return {run.data.tags.get(TAG_TRIAL_ID, "") for run in trial_runs(client, target)}


def name_replacements(client: MlflowClient, target: SweepTarget, *, lost: list[str], known: set[str]) -> None:
    """After the resumed sweep: each lost run, oldest first, names the trial that took its slot (the
    trials new since the restore, in the order they started). `known`: every trial id recorded at the
    restore (a trial the restored Tune did not know but that finished took no slot)."""
    if not lost:
        return
    lost_ids = set(lost)
    new = [
        run.data.tags.get(TAG_TRIAL_ID, "")
        for run in trial_runs(client, target)
        if run.info.run_id not in lost_ids and run.data.tags.get(TAG_TRIAL_ID) not in known
    ]
    for run_id, trial_id in zip(lost, new):
        client.set_tag(run_id, TAG_ERROR, f"lost with the driver; its slot ran again as trial {trial_id}")
