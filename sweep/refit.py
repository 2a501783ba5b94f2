"""Refit: after a search that ended normally, the selected configuration retrained on train+val.

The best trial's configuration trains again, with its own epochs and seed, on the training images
plus the validation images, in its own child run under the sweep's parent run (tag
`scenesweep.role=refit`, `scenesweep.refit_of=<trial id>`, run name `refit-<trial name>`), and its
model is logged exactly as a trial's. `promote` registers that model, still selected by the source
trial's validation metric (sweep/results.py).

How it runs: a second Tune run with one fixed trial through the very trial runtime
(`sweep.trial.run_trial`), on the sweep's Ray with a trial's resources (a GPU where trials had one).
Not a Ray task: `run_trial` needs Tune's session (report, checkpoint, context) and a second path
around it would be a second training path to keep in step. Tune also stops it gracefully on Ctrl-C
/ SIGTERM (tracking.callback.TrialRunCloser closes its run KILLED, or FAILED with the reason).

What its validation means: there is no held-out validation left once the validation images are
trained on. Torch families still report per-epoch `val_*` on the validation images, which the refit
trained on: in-sample, said by tag `scenesweep.refit_validation` and the run's description. Only
`test_*` is held out. A family scored by cross-validation (`cv_*`: BoVW) already fits its trials on
train+val (trainables/bovw/pipeline.py): its best trial is its refit, so none runs.

The budget (--budget) covers search and refit: `RefitReserve` ends the search when the time left
would not fit the refit, estimated by `refit_reserve` from the best trial so far.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from dataclasses import replace
from typing import TYPE_CHECKING

import numpy as np
from ray.tune.stopper import Stopper

from tracking.runs import TAG_ROLE
from tracking.summary import TAG_REFIT_OF

if TYPE_CHECKING:
    from sweep.spec import SweepSpec
    from tracking.runs import SweepTarget
    from tracking.summary import TrialRow
    from trainables.core.data import Dataset
    from trainables.families import Family

ROLE_REFIT = "refit"
TAG_REFIT_OF_RUN = "scenesweep.refit_of_run"  # the source trial's run id
TAG_REFIT_VALIDATION = "scenesweep.refit_validation"
IN_SAMPLE = (
    "in-sample: the refit trains on train+val, so its val_* are measured on images it trained on; "
    "only test_* is held out"
)
REFIT_NAME_PREFIX = "refit-"


def refit_reserve(fit_seconds: float, *, train_images: int, refit_images: int) -> float:
    """Seconds to keep for the refit: the trial's measured fit time scaled by the larger training set
    (an epoch's cost is linear in its images; the refit runs the same epochs)."""
    return fit_seconds * refit_images / max(1, train_images)


def search_must_stop(*, used: float, budget: float, reserve: float) -> bool:
    """The search ends when what it has used plus the refit's reserve reaches the budget."""
    return used + reserve >= budget


def runs_refit(family: Family) -> bool:
    """A family scored by cross-validation fits its trials on train+val already: nothing to refit."""
    return not family.metric.startswith("cv_")


class RefitReserve(Stopper):
    """A Tune stopper: ends the search when the time left would
    not fit the refit of the best trial so far. The budget is consumed between checks, as Tune's
    TimeoutStopper does, so a restored sweep counts on from where it was saved."""

    def __init__(self, *, budget: float, metric: str, mode: str, scale: float, clock: Callable[[], float] = time.time):
        self.budget = budget
        self.metric, self.mode, self.scale = metric, mode, scale
        self.clock = clock
        self.used = 0.0
        self.best: tuple[float, float] | None = None  # (metric, fit_seconds) of the best completed trial
        self._last_check: float | None = None

    @property
    def reserve(self) -> float:
        return 0.0 if self.best is None else self.best[1] * self.scale

    def __call__(self, trial_id: str, result: dict) -> bool:
        from sweep.trial import TRIAL_COMPLETED

        if result.get(TRIAL_COMPLETED) and self.metric in result and "fit_seconds" in result:
            value = float(result[self.metric])
            if self.best is None or (value > self.best[0] if self.mode == "max" else value < self.best[0]):
                self.best = (value, float(result["fit_seconds"]))
        return False

    def stop_all(self) -> bool:
        now = self.clock()
        if self._last_check is not None:
            self.used += now - self._last_check
        self._last_check = now
        return search_must_stop(used=self.used, budget=self.budget, reserve=self.reserve)

    def __setstate__(self, state: dict) -> None:
        state["_last_check"] = None  # the clock of another process
        self.__dict__.update(state)


def reserve_stopper(spec: SweepSpec, family: Family, dataset: Dataset) -> RefitReserve | None:
    """The search's stopper when a budget must leave room for a refit, else None."""
    if not (spec.budget and spec.refit and runs_refit(family)):
        return None
    train = len(dataset.y_train)
    return RefitReserve(
        budget=spec.budget,
        metric=family.metric,
        mode=family.mode,
        scale=refit_reserve(1.0, train_images=train, refit_images=train + len(dataset.y_val)),
    )


def refit_dataset(dataset: Dataset) -> Dataset:
    """The training images plus the validation images; the validation images stay as `x_val` for the
    nets' per-epoch report (in-sample, see the module docstring)."""
    import hashlib

    return replace(
        dataset,
        x_train=np.concatenate([dataset.x_train, dataset.x_val]),
        y_train=np.concatenate([dataset.y_train, dataset.y_val]),
        fingerprint=hashlib.sha256(f"{dataset.fingerprint}|train+val".encode()).hexdigest()[:16],
    )


def run_refit(
    spec: SweepSpec, family: Family, dataset: Dataset, target: SweepTarget, best: TrialRow, *, trial_name: str
) -> tuple[int, str]:
    """Retrain `best`'s configuration on train+val in its own run; returns (exit code, what to print).
    The code is 128+signal when interrupted, else 0: a failed refit is a warning (the search
    succeeded and its best trial stays promotable)."""
    from mlflow.tracking import MlflowClient
    from ray import tune

    from sweep.preflight import gpus_per_trial
    from sweep.trial import TRIAL_COMPLETED, TrialSettings, run_trial
    from tracking.callback import TrialRunCloser
    from tracking.runs import close_open_trial_runs

    gpus = gpus_per_trial(spec)
    settings = TrialSettings.of_sweep(
        spec,
        family,
        target,
        chance_stop=False,  # the configuration learned in its trial; its in-sample val is no test of that
        run_name=REFIT_NAME_PREFIX + trial_name,
        run_tags={
            TAG_ROLE: ROLE_REFIT,
            TAG_REFIT_OF: best.trial_id,
            TAG_REFIT_OF_RUN: best.run_id,
            TAG_REFIT_VALIDATION: IN_SAMPLE,
            "mlflow.note.content": (
                f"Refit of trial {best.trial_id} (run {best.run_id}) on train+val, its config, "
                f"{spec.epochs} epochs, seed {spec.seed}. Validation metrics are {IN_SAMPLE}."
            ),
        },
    )
    closer = TrialRunCloser(target, completed_key=TRIAL_COMPLETED)
    config = trial_config(spec, best)
    tuner = tune.Tuner(
        tune.with_resources(
            tune.with_parameters(run_trial, dataset=refit_dataset(dataset), settings=settings),
            {"cpu": spec.cpus_per_trial, "gpu": gpus},
        ),
        param_space=config,
        tune_config=tune.TuneConfig(num_samples=1),
        run_config=tune.RunConfig(
            name="refit",  # beside the search's trials in the sweep's folder, never a sweep of its own
            storage_path=str(spec.sweep_dir),
            failure_config=tune.FailureConfig(max_failures=0),
            callbacks=[closer],
            verbose=0,
        ),
    )
    client = MlflowClient(target.uri)
    try:
        tuner.fit()
        interrupted = closer.interrupted
    except KeyboardInterrupt:
        interrupted = True
    # Nothing stays RUNNING: what the closer did not close (a second Ctrl-C, a lost worker) ends here.
    if interrupted:
        close_open_trial_runs(client, target, status="KILLED", reason="refit interrupted")
    close_open_trial_runs(client, target, status="FAILED", reason="refit ended while its run was open")
    refit = find_refit_run(client, target)
    if interrupted:
        return 128 + closer.signum, (
            f"scenesweep: refit of trial {best.trial_id} interrupted; its run is KILLED; "
            f"run it again with: {spec.resume_command()}"
        )
    if refit is None or refit.info.status != "FINISHED":
        why = refit.data.tags.get("scenesweep.error", "") if refit is not None else "no run was created"
        print(f"scenesweep: warning: the refit of trial {best.trial_id} failed: {why}", file=sys.stderr)
        return 0, f"refit: failed (run {refit.info.run_id if refit else '-'}); promote takes trial {best.trial_id}"
    test = refit.data.metrics.get("test_accuracy", float("nan"))
    return 0, (
        f"Refit of trial {best.trial_id} on train+val (run {refit.info.run_id}): test_accuracy {test:.4f}, "
        f"model {refit.data.tags.get('scenesweep.model_uri', '')} (promote registers it)"
    )


def refit_best(
    spec: SweepSpec, family: Family, client, target: SweepTarget, dataset: Dataset, summary, *, quiet: bool = False
) -> int:
    """The refit after a search that ended normally with a best trial; prints what happened (one line
    as it starts unless `quiet`, one with its result) and returns the exit code (0 unless
    interrupted: a failed refit is a warning, see run_refit)."""
    from tracking.runs import close_open_trial_runs

    best = summary.best
    if not runs_refit(family):
        print(f"refit: none; {family.name} trials are fit on train+val already ({family.metric} is cross-validated)")
        return 0
    if (done := summary.refit_of(best.trial_id)) is not None:  # a resume of a sweep whose refit finished
        print(f"refit: trial {best.trial_id} was refit already (run {done.run_id})")
        return 0
    if not quiet:
        images = len(dataset.y_train) + len(dataset.y_val)
        print(f"scenesweep: refitting trial {best.trial_id} on train+val ({images} images)", flush=True)
    try:
        code, line = run_refit(spec, family, dataset, target, best, trial_name=f"{family.name}_{best.trial_id}")
    except BaseException as exc:  # the search is recorded; the refit's failure is a warning
        killed = isinstance(exc, (KeyboardInterrupt, SystemExit))
        reason = "refit interrupted" if killed else f"refit failed: {type(exc).__name__}: {exc}".splitlines()[0]
        close_open_trial_runs(client, target, status="KILLED" if killed else "FAILED", reason=reason)
        if killed:
            raise
        print(f"scenesweep: warning: the {reason}", file=sys.stderr)
        return 0
    print(line)
    return code


def trial_config(spec: SweepSpec, best: TrialRow) -> dict:
    """The configuration trial `best` ran, as Tune saved it (types and all); its run's params (MLflow
    strings typed back) when the sweep's Tune state does not hold it."""
    from ray.tune import ExperimentAnalysis

    try:
        for trial in ExperimentAnalysis(str(spec.sweep_dir)).trials:
            if trial.trial_id == best.trial_id:
                return dict(trial.config)
    except Exception:  # noqa: BLE001 - no readable Tune state (a study-only restart): MLflow has the params
        pass
    return best.config


def find_refit_run(client, target: SweepTarget):
    """The sweep's refit run (the newest, if a resume ran it again), or None."""
    from tracking.runs import TAG_PARENT

    runs = client.search_runs(
        [target.experiment_id],
        filter_string=f"tags.`{TAG_PARENT}` = '{target.parent_run_id}' AND tags.`{TAG_ROLE}` = '{ROLE_REFIT}'",
        order_by=["attributes.start_time DESC"],
        max_results=1,
    )
    return runs[0] if runs else None
