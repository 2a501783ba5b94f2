"""`resume` squares MLflow with the restored Tune state.

Tune snapshots its state every few seconds, MLflow records at once: a driver killed in between
leaves a child run whose trial the snapshot never knew. Tune re-suggests that slot under a new
trial id, so the old run would stay open (or count twice) forever. It is closed as lost instead.
"""

from __future__ import annotations

from mlflow.tracking import MlflowClient

from tracking.runs import TAG_ERROR, TAG_LOST, TAG_PRUNED, TAG_TRIAL_ID, SweepTarget, trial_runs

LOST_REASON = "lost with the driver: the restored Tune state does not know this trial"


def close_lost_trial_runs(client: MlflowClient, target: SweepTarget, *, known: set[str]) -> list[str]:
    """Close every unfinished child run whose trial id is not in `known` as KILLED, tagged lost;
    returns their run ids, oldest first. A FINISHED run keeps its result: nothing of it was lost."""
    lost = []
    for run in trial_runs(client, target):
        tags = run.data.tags
        if tags.get(TAG_TRIAL_ID) in known or run.info.status == "FINISHED" or tags.get(TAG_LOST) == "true":
            continue
        if TAG_PRUNED in tags:
            client.delete_tag(run.info.run_id, TAG_PRUNED)
        client.set_tag(run.info.run_id, TAG_LOST, "true")
        client.set_tag(run.info.run_id, TAG_ERROR, LOST_REASON)
        client.set_terminated(run.info.run_id, status="KILLED")
        lost.append(run.info.run_id)
    return lost


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
