"""Running a sweep: checks, the parent run, Ray, the Tuner, and the summary read back from MLflow."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

from sweep.environment import configure_environment, forwarded_environment
from sweep.spec import SPEC_FILE, SweepSpec, UsageError, tracking_uri
from trainables.families import Family

EXIT_INTERRUPTED = 130


def start_sweep(spec: SweepSpec) -> int:
    """A new sweep; refuses a name that already has state in the storage folder."""
    if (spec.sweep_dir / SPEC_FILE).exists():
        raise UsageError(
            f"sweep {spec.name!r} already exists in {spec.storage}; "
            f"continue it with `scenesweep resume {spec.name}` or pick another --name"
        )
    return run_sweep(spec, resume=False)


def run_sweep(spec: SweepSpec, *, resume: bool) -> int:
    """Run (or resume) the sweep; returns the CLI's exit code."""
    from mlflow.tracking import MlflowClient

    from sweep.tuner import build_tuner
    from tracking.callback import TrialRunCloser
    from tracking.provenance import log_dataset
    from tracking.runs import check_tracking, get_or_create_experiment, start_sweep_run
    from trainables.core.data import load_dataset

    configure_environment()
    family = spec.family_entry
    check_tracking(spec.tracking_uri)
    dataset = load_dataset(spec.data)
    print(f"scenesweep: {spec.name}: {family.name} on {spec.data.source} ({dataset.summary()})")
    client = MlflowClient(spec.tracking_uri)
    experiment_id = get_or_create_experiment(client, spec.experiment, spec.tracking_uri, family=family.name)
    target = start_sweep_run(
        client,
        uri=spec.tracking_uri,
        experiment_id=experiment_id,
        sweep=spec.name,
        family=family.name,
        search=spec.search,
        params={**spec.tracking_params(), "data_fingerprint": dataset.fingerprint},
    )
    log_dataset(
        client,
        target.parent_run_id,
        source=spec.data.source,
        digest=dataset.fingerprint,
        profile={"summary": dataset.summary()},
    )
    spec.save()

    connect_ray(spec)
    _hide_tune_resume_hint()
    closer = TrialRunCloser(target)
    try:
        tuner = build_tuner(spec, family, dataset, closer, resume=resume)
        tuner.fit()  # Ctrl-C: Tune stops the trials, saves its state and returns
        interrupted = closer.interrupted
    except KeyboardInterrupt:  # a second Ctrl-C skips Tune's graceful stop
        interrupted = True
    if interrupted:
        closer.record_interruption()
    code = finish(spec, family, client, target, interrupted=interrupted)
    if code == 0:
        _log_gradcam(spec, client, target, dataset)
    return code


def connect_ray(spec: SweepSpec) -> None:
    import logging

    import ray

    if ray.is_initialized():
        return
    if spec.address:
        modules = [__import__(name) for name in ("search_spaces", "trainables", "tracking", "serving")]
        ray.init(
            address=spec.address,
            logging_level=logging.WARNING,
            runtime_env={"py_modules": modules, "env_vars": forwarded_environment()},
        )
    else:
        ray.init(include_dashboard=False, logging_level=logging.WARNING, configure_logging=True)


def _hide_tune_resume_hint() -> None:
    """Tune's own 'Resume experiment with: Tuner.restore(...)' would mislead; finish() names the command."""
    import logging

    class Hide(logging.Filter):
        def filter(self, record):
            return "Resume experiment with" not in record.getMessage()

    logging.getLogger("ray.tune.tune").addFilter(Hide())


def finish(spec: SweepSpec, family: Family, client, target, *, interrupted: bool) -> int:
    """Close what is open, record the result on the parent run, print the summary; the exit code."""
    from tracking.runs import close_open_trial_runs
    from tracking.summary import format_failures, format_table, record_sweep_result, summarise

    if interrupted:
        close_open_trial_runs(client, target, status="KILLED", reason="sweep interrupted")
    summary = summarise(client, target, metric=family.metric, mode=family.mode)
    close_open_trial_runs(client, target, status="KILLED", reason="sweep ended while the trial was open")
    status = "KILLED" if interrupted else ("FINISHED" if summary.finished else "FAILED")
    record_sweep_result(client, target, summary, status=status)
    counts = ", ".join(f"{v} {k.lower()}" for k, v in sorted(summary.counts().items()))
    print(f"\nscenesweep: sweep {spec.name}: {len(summary.rows)} trials ({counts})")
    if interrupted:
        print(
            f"scenesweep: interrupted; running trials were stopped and their runs marked KILLED; "
            f"continue with: scenesweep resume {spec.name}"
            + (f" --storage {spec.storage}" if Path(spec.storage) != Path("sweeps").resolve() else "")
        )
        return EXIT_INTERRUPTED
    best = summary.best
    if best is None:
        print("scenesweep: error: no trial finished; distinct errors:", file=sys.stderr)
        for error, count in summary.errors.most_common():
            print(f"  {count} x {error}", file=sys.stderr)
        return 1
    print(format_table(summary.ranked()[:5], metric=family.metric))
    if failures := format_failures(summary.rows):
        print(f"failed (see scenesweep.error on their runs):\n{failures}")
    print(
        f"\nBest trial {best.trial_id} (run {best.run_id}): {family.metric} {best.metrics[family.metric]:.4f}, "
        f"test_accuracy {best.metrics.get('test_accuracy', float('nan')):.4f}"
    )
    print("config: " + json.dumps(best.config, sort_keys=True))
    print(f"model: {best.model_uri}")
    print(f"\nSee every trial in the MLflow UI: {ui_hint(spec.tracking_uri, target)}")
    return 0


def _log_gradcam(spec: SweepSpec, client, target, dataset) -> None:
    """gradcam.png on the best trial (CNN families); the sweep is recorded already, so never fatal."""
    from serving.explanations import GRADCAM_FILE, log_best_trial_gradcam

    try:
        run_id = log_best_trial_gradcam(client, target.parent_run_id, dataset, tracking_uri=spec.tracking_uri)
    except Exception as exc:  # noqa: BLE001
        print(
            f"scenesweep: warning: no {GRADCAM_FILE} for the best trial: {type(exc).__name__}: {exc}", file=sys.stderr
        )
        return
    if run_id:
        print(f"Grad-CAM of the best trial: {GRADCAM_FILE} in run {run_id}")


def ui_hint(uri: str, target=None) -> str:
    """How to see the sweep's parent run: its page on the server, or `scenesweep ui` for a local
    store and then the page it serves."""
    from tracking.runs import is_local_store
    from tracking.ui import DEFAULT_PORT, run_page

    if not is_local_store(uri):
        return run_page(uri, target) if target else uri
    command = "scenesweep ui" + tracking_flag(uri)
    if target is None:
        return command
    return f"{command}, then open {run_page(f'http://127.0.0.1:{DEFAULT_PORT}', target)}"


def tracking_flag(uri: str) -> str:
    """` --tracking-uri URI` where a pasted command would otherwise look in another store; else ""."""
    default = tracking_uri(None) if "MLFLOW_TRACKING_URI" not in os.environ else None
    return "" if uri == default else f" --tracking-uri {uri}"
