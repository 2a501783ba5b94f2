"""Benchmark: the end-of-sweep summary and study plots after a large sweep, without running its trials.

benchmarks/scale.py runs 1,000 real trials (a quarter of an hour of both cores); what happens after the
last one does not need them run again. This builds, for real, what such a sweep leaves behind:

- a sqlite MLflow store (sqlite, not the cluster's PostgreSQL behind an HTTP server: one process, no
  server to start; every request still goes through MLflow's SQLAlchemy store) with the sweep's parent
  run and N child runs, each with its params, final metrics, per-epoch metrics for EPOCHS epochs and
  the tags a trial's run gets (about 1 in 5 pruned after its first epoch, 1 in 50 failed);
- the sweep's folder: its scenesweep.json and a journal Optuna study (optuna.journal) of the same N
  trials (their parameters from TinyNet's space, per-epoch values as intermediate values).

Then it times what the driver does after the last trial, on a fresh copy of that store: `finish` (close
what is open, read the trials back, trials.csv and the best trial on the parent run, the summary) and
the study plots on the parent run. The store is built once (`--store DIR` keeps it; --trials is then
what it was built with), so the code before and after a change can be timed on the same data; the
copies' artifacts (trials.csv, the plots) land in DIR/mlartifacts, where the store's experiment points.

    python -m benchmarks.summary_scale [--trials 1000] [--store DIR]
"""

from __future__ import annotations

import random
import shutil
import sys
import tempfile
import time
from pathlib import Path

from benchmarks.common import BenchmarkError, format_table, main, parser

FAMILY = "tinynet"
SWEEP = "summary-scale"
EPOCHS = 3
PRUNED_EVERY, FAILED_EVERY = 5, 50


def run(args):
    trials = 20 if args.quick else args.trials
    if trials < 1:
        raise BenchmarkError("--trials must be at least 1")
    store = Path(args.store) if args.store else Path(tempfile.mkdtemp(prefix="bench-summary-store-"))
    built = 0.0
    if not (store / "mlruns.db").exists():
        started = time.perf_counter()
        build_store(store, trials=trials)
        built = time.perf_counter() - started
    with tempfile.TemporaryDirectory(prefix="bench-summary-") as folder:
        copy = Path(folder) / "store"
        shutil.copytree(store, copy)
        figures = time_end_of_sweep(copy)
    if not args.store:
        shutil.rmtree(store, ignore_errors=True)
    figures["build seconds"] = round(built, 1)
    payload = {"settings": {"trials": trials, "epochs": EPOCHS, "store": "sqlite"}, "figures": figures}
    rows = [{"measure": key, "value": value} for key, value in figures.items()]
    return "summary_scale", payload, format_table(rows, ["measure", "value"])


def build_store(root: Path, *, trials: int) -> None:
    """The parent run, N child runs and the sweep's journal study, as a finished sweep leaves them."""
    import optuna
    from mlflow.entities import Metric, Param, RunTag
    from mlflow.tracking import MlflowClient

    from search_spaces import space_of
    from sweep.spec import SweepSpec
    from sweep.study import load_sweep_study, new_study, study_storage
    from tracking.runs import (
        TAG_ERROR,
        TAG_FAMILY,
        TAG_PARENT,
        TAG_PRUNED,
        TAG_ROLE,
        TAG_SEARCH,
        TAG_SWEEP,
        TAG_TRIAL_ID,
    )
    from trainables.core.data import DataSpec

    root.mkdir(parents=True, exist_ok=True)
    uri = f"sqlite:///{root / 'mlruns.db'}"
    spec = SweepSpec(family=FAMILY, data=DataSpec(), name=SWEEP, tracking_uri=uri, storage=str(root / "sweeps"))
    spec.save()
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    new_study(spec, ["max"], study_storage(spec))
    study = load_sweep_study(spec, sampler=optuna.samplers.RandomSampler(seed=0))  # asks only, no search
    client = MlflowClient(uri)
    experiment_id = client.create_experiment(
        f"scenesweep-{FAMILY}", artifact_location=(root / "mlartifacts").resolve().as_uri()
    )
    tags = {TAG_SWEEP: SWEEP, TAG_FAMILY: FAMILY, TAG_SEARCH: "tpe", TAG_ROLE: "sweep"}
    parent = client.create_run(experiment_id, run_name=SWEEP, tags=tags).info.run_id
    client.log_batch(parent, params=[Param(k, str(v)) for k, v in {"samples": trials, "epochs": EPOCHS}.items()])
    rng = random.Random(0)
    suggest = space_of(FAMILY)
    frozen = []
    for number in range(trials):
        ask = study.ask()
        constants = suggest(ask) or {}
        pruned, failed = number % PRUNED_EVERY == PRUNED_EVERY - 1, number % FAILED_EVERY == FAILED_EVERY - 1
        epochs = 1 if pruned else (0 if failed else EPOCHS)
        curve = {epoch: 0.2 + rng.random() * 0.2 * epoch for epoch in range(1, epochs + 1)}
        state = (
            optuna.trial.TrialState.FAIL
            if failed
            else (optuna.trial.TrialState.PRUNED if pruned else optuna.trial.TrialState.COMPLETE)
        )
        frozen.append((ask, constants, curve, state))
        trial_id = f"bench_{number:05d}"
        run_tags = {TAG_PARENT: parent, TAG_TRIAL_ID: trial_id, TAG_SWEEP: SWEEP, TAG_FAMILY: FAMILY, TAG_ROLE: "trial"}
        run_id = client.create_run(experiment_id, run_name=f"{FAMILY}_{trial_id}", tags=run_tags).info.run_id
        now = int(time.time() * 1000)
        metrics = [
            Metric(key, value, now, epoch)
            for epoch, accuracy in curve.items()
            for key, value in {
                "train_loss": 2.0 - accuracy,
                "train_accuracy": accuracy + 0.05,
                "val_loss": 2.1 - accuracy,
                "val_accuracy": accuracy,
                "epoch_seconds": 1.0 + rng.random(),
            }.items()
        ]
        if state == optuna.trial.TrialState.COMPLETE:
            final = {"test_accuracy": curve[EPOCHS] - 0.01, "test_loss": 1.5, "fit_seconds": 3.0 + rng.random()}
            metrics += [Metric(k, v, now, 0) for k, v in {**final, "params": 1e4 * (1 + rng.random() * 50)}.items()]
        params = [Param(k, str(v)) for k, v in sorted({**ask.params, **constants, "epochs": EPOCHS}.items())]
        run_tags_end = [RunTag(TAG_PRUNED, "true")] if pruned else []
        run_tags_end += [RunTag(TAG_ERROR, "RuntimeError: diverged")] if failed else []
        client.log_batch(run_id, metrics=metrics, params=params, tags=run_tags_end)
        client.set_terminated(run_id, status="FAILED" if failed else ("KILLED" if pruned else "FINISHED"))
    for ask, _constants, curve, state in frozen:
        for epoch, value in curve.items():
            ask.report(value, epoch)
        study.tell(ask, curve[EPOCHS] if state == optuna.trial.TrialState.COMPLETE else None, state=state)


def time_end_of_sweep(root: Path) -> dict:
    """Seconds the end of the sweep takes on the store at `root`: finish, then the study plots."""
    import contextlib
    import io

    from mlflow.tracking import MlflowClient

    from sweep import run as sweep_run
    from sweep.spec import load_spec
    from tracking.runs import find_sweep_run, target_from_run

    spec = load_spec(str(root / "sweeps"), SWEEP, address=None, uri=f"sqlite:///{root / 'mlruns.db'}")
    family = spec.family_entry
    client = MlflowClient(spec.tracking_uri)
    target = target_from_run(find_sweep_run(client, SWEEP))
    printed = io.StringIO()
    started = time.perf_counter()
    with contextlib.redirect_stdout(printed):
        if hasattr(sweep_run, "record_study_plots"):
            code, summary = sweep_run.finish(spec, family, client, target, interrupted=False)
            finished = time.perf_counter()
            plots = sweep_run.record_study_plots(spec, family, client, target, summary.rows)
        else:  # the code before issue 21: finish() returned the exit code, the plots read MLflow again
            code = sweep_run.finish(spec, family, client, target, interrupted=False)
            finished = time.perf_counter()
            plots = sweep_run._log_study_plots(family, client, target)
    ended = time.perf_counter()
    if code != 0 or "warning" in plots:
        raise BenchmarkError(f"the end of the sweep did not succeed (exit code {code}): {plots}")
    return {
        "finish seconds": round(finished - started, 2),
        "study plots seconds": round(ended - finished, 2),
        "total seconds": round(ended - started, 2),
        "plots": plots,
    }


def build_parser():
    p = parser(__doc__.splitlines()[0])
    p.set_defaults(data="demo")  # no images are read
    p.add_argument("--trials", type=int, default=1000, help="trials in the sweep (default 1000)")
    p.add_argument("--store", default="", help="build the store here once and reuse it (default: a temporary one)")
    return p


if __name__ == "__main__":
    sys.exit(main(run, build_parser().parse_args()))
