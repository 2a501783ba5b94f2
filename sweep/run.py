"""Running a sweep: checks, the parent run, Ray, the Tuner, and the summary read back from MLflow."""

from __future__ import annotations

import json
import sys
from typing import TYPE_CHECKING

from sweep.environment import configure_environment
from sweep.preflight import connect_ray
from sweep.spec import SPEC_FILE, SweepSpec, UsageError, tracking_flag
from trainables.families import Family

if TYPE_CHECKING:
    from tracking.summary import SweepSummary, TrialRow

EXIT_INTERRUPTED = 130


def start_sweep(spec: SweepSpec, *, output: str = "default") -> int:
    """A new sweep; refuses a name that already has state in the storage folder."""
    if (spec.sweep_dir / SPEC_FILE).exists():
        raise UsageError(
            f"sweep {spec.name!r} already exists in {spec.storage}; "
            f"continue it with `scenesweep resume {spec.name}` or pick another --name"
        )
    from sweep.warm_start import check_warm_start

    check_warm_start(spec.warm_start, storage=spec.storage, family=spec.family)
    return run_sweep(spec, resume=False, output=output)


def run_sweep(spec: SweepSpec, *, resume: bool, output: str = "default") -> int:
    """Run (or resume) the sweep; returns the CLI's exit code. `output`: quiet, default or verbose
    (sweep.console)."""
    from sweep.preflight import prepare_embedded_ray

    prepare_embedded_ray(spec)  # first: Ray reads its auth mode when first imported, below
    from mlflow.tracking import MlflowClient

    from sweep.console import QUIET, VERBOSE, tune_verbosity
    from sweep.recorder import Recorders
    from sweep.trial import TRIAL_COMPLETED
    from sweep.tuner import build_tuner, chosen_search, restored_trials
    from tracking.callback import TrialRunCloser
    from tracking.provenance import log_dataset
    from tracking.reconcile import (
        close_lost_trial_runs,
        close_unrecorded_trial_runs,
        name_replacements,
        recorded_trial_ids,
    )
    from tracking.runs import check_tracking, closed_on_failure, get_or_create_experiment, start_sweep_run
    from trainables.core.data import check_data_spec, load_dataset

    configure_environment()
    family = spec.family_entry
    check_tracking(spec.tracking_uri)
    check_data_spec(spec.data)
    # Before anything is written: an unreachable or unfit cluster is a usage error.
    connect_ray(spec, verbose=output == VERBOSE)
    dataset = load_dataset(spec.data)
    if output != QUIET:
        print(f"scenesweep: {spec.name}: {family.name} on {spec.data.source} ({dataset.summary()})")
    search, picked_because = chosen_search(spec)
    if picked_because and output != QUIET:
        print(f"scenesweep: --search auto picked {search}: {picked_because}")
    search_text = f"{search} (--search auto: {picked_because})" if picked_because else search
    client = MlflowClient(spec.tracking_uri)
    experiment_id = get_or_create_experiment(client, spec.experiment, spec.tracking_uri, family=family.name)
    target = start_sweep_run(
        client,
        uri=spec.tracking_uri,
        experiment_id=experiment_id,
        sweep=spec.name,
        family=family.name,
        search=search,  # the sampler that searches (what auto picked); the param `search` is the flag
        params={**spec.tracking_params(), "data_fingerprint": dataset.fingerprint},
    )
    with closed_on_failure(client, target):  # from here on, the parent run never stays RUNNING
        log_dataset(
            client,
            target.parent_run_id,
            source=spec.data.source,
            digest=dataset.fingerprint,
            profile={"summary": dataset.summary()},
        )
        spec.save()
        _quiet_tune_logs()
        closer = TrialRunCloser(target, completed_key=TRIAL_COMPLETED)
        watchers: list = [sweep_progress(spec, family, client, target, dataset, resume=resume, search=search_text)]
        if output not in (QUIET, VERBOSE):
            watchers.append(trial_console(spec, family, target))
        known: set[str] = set()
        lost: list[str] = []
        recorders = Recorders(target.parent_run_id, target.uri)  # finished trials' records, off their path
        try:
            tuner = build_tuner(
                spec, family, dataset, closer, resume=resume, callbacks=tuple(watchers), verbose=tune_verbosity(output)
            )
            if resume:
                # A killed driver's recorders live on (detached) on a standing cluster: what they still
                # hold lands first, then MLflow is squared with the saved state.
                recorders.drain()
                restored = restored_trials(str(spec.sweep_dir))
                known = set(restored)
                # Runs of trials the restored state never knew were lost with the last driver.
                lost = close_lost_trial_runs(client, target, known=known)
                # Completed in the saved state, but never recorded (the recorder died too).
                completed = {
                    t: {k: v for k, v in result.items() if k != TRIAL_COMPLETED}
                    for t, result in restored.items()
                    if result.get(TRIAL_COMPLETED)
                }
                close_unrecorded_trial_runs(client, target, completed=completed)
                known |= recorded_trial_ids(client, target)
            tuner.fit()  # Ctrl-C: Tune stops the trials, saves its state and returns
            interrupted = closer.interrupted
        except KeyboardInterrupt:  # a second Ctrl-C skips Tune's graceful stop
            interrupted = True
        finally:
            drain_recorders(recorders, client, target)  # every finished trial recorded before any is read
        if interrupted:
            closer.record_interruption()
        else:
            from sweep.study import close_sweep_study
            from sweep.study_source import existing_study

            close_sweep_study(spec)
            if spec.objective:
                from sweep.pareto import report_pareto

                report_pareto(client, target, family, spec.objective, study=existing_study(spec))
        name_replacements(client, target, lost=lost, known=known)
        code, summary = finish(spec, family, client, target, interrupted=interrupted)
        if interrupted:  # the conventional code of the signal that stopped it: 130 Ctrl-C, 143 SIGTERM
            code = 128 + closer.signum
    searched = code
    if code == 0 and spec.refit and summary.best is not None:
        from sweep.refit import refit_best

        code = refit_best(spec, family, client, target, dataset, summary, quiet=output == QUIET)
    if searched == 0:
        print(record_study_plots(spec, family, client, target, summary.rows))
        _log_gradcam(spec, client, target, dataset)
        print(f"\nSee every trial in the MLflow UI: {ui_hint(spec.tracking_uri, target)}")
    return code


def drain_recorders(recorders, client, target) -> None:
    """Wait for the recorders to record every trial handed to them; say which recordings failed (those
    runs are FAILED with the reason) and close, FAILED, the runs a lost node's recorder still held."""
    from sweep.recorder import RECORDER_LOST_REASON
    from tracking.runs import close_open_trial_runs

    try:
        failures, lost_nodes = recorders.drain()
    finally:
        recorders.stop()
    for run_id, why in failures:
        print(f"scenesweep: warning: run {run_id} finished training but could not be recorded: {why}", file=sys.stderr)
    if lost_nodes:
        closed = close_open_trial_runs(client, target, status="FAILED", reason=RECORDER_LOST_REASON)
        print(f"scenesweep: warning: {len(lost_nodes)} node(s) lost with their recorder; {closed} run(s) closed FAILED")


def trial_console(spec: SweepSpec, family: Family, target):
    """One line per trial event, the failure reason read from the trial's run."""
    from mlflow.tracking import MlflowClient

    from sweep.console import TrialConsole
    from tracking.runs import TAG_ERROR, find_trial_run

    def error_of(trial_id: str) -> str:
        run = find_trial_run(MlflowClient(target.uri), target, trial_id)
        return run.data.tags.get(TAG_ERROR, "") if run is not None else ""

    return TrialConsole(
        metric=family.metric, mode=family.mode, samples=spec.samples, max_epochs=spec.epochs, error_of=error_of
    )


def stored_command(argv: list[str]) -> str:
    """The command line as the parent run's description records it: a password in any URI among the
    flags (`--tracking-uri http://alice:SECRET@host`, `--study-storage postgresql://...`) masked, as
    nothing the sweep stores may hold a secret."""
    import shlex

    from tracking.uris import masked

    return "scenesweep " + shlex.join(masked(arg) for arg in argv)


def sweep_progress(spec: SweepSpec, family: Family, client, target, dataset, *, resume: bool, search: str):
    """The parent run kept current as trials end (tracking.live); a resumed sweep counts on from
    the trials its runs already recorded."""
    from search_spaces import parameter_distributions
    from tracking.live import SweepAbout, SweepProgress
    from tracking.summary import summarise

    searched = [name for name in parameter_distributions(family.space) if name not in spec.fixed]
    pins = ", ".join(f"{k}={v}" for k, v in sorted(spec.fixed.items()))
    about = SweepAbout(
        command=stored_command(sys.argv[1:]),
        data=f"`{spec.data.source}` ({dataset.summary()}; fingerprint `{dataset.fingerprint}`)",
        space=f"{family.name}, {search} over {len(searched)} parameters ({', '.join(searched)})"
        + (f"; pinned {pins}" if pins else ""),
        budget=f"{spec.samples} trials of up to {spec.epochs} epochs"
        + (f", {spec.trial_timeout:g} s of training per trial" if spec.trial_timeout else ""),
    )
    progress = SweepProgress(target, metric=family.metric, mode=family.mode, about=about)
    if resume:
        progress.seed(summarise(client, target, metric=family.metric, mode=family.mode).rows)
    return progress


def _quiet_tune_logs() -> None:
    """Tune's own 'Resume experiment with: Tuner.restore(...)' would mislead (finish() names the
    command), and its result grid misses the per-trial result files that MLflow makes redundant."""
    import logging

    logging.getLogger("ray.tune.analysis.experiment_analysis").setLevel(logging.ERROR)

    class Hide(logging.Filter):
        def filter(self, record):
            return "Resume experiment with" not in record.getMessage()

    logging.getLogger("ray.tune.tune").addFilter(Hide())


def finish(spec: SweepSpec, family: Family, client, target, *, interrupted: bool) -> tuple[int, SweepSummary]:
    """Close what is open, record the result on the parent run, print the summary; the exit code, and
    the trials as MLflow holds them (one search)."""
    from tracking.runs import INTERRUPTED_REASON, close_open_trial_runs
    from tracking.summary import format_failures, format_table, record_sweep_result, summarise

    if interrupted:
        close_open_trial_runs(client, target, status="KILLED", reason=INTERRUPTED_REASON)
    close_open_trial_runs(client, target, status="KILLED", reason="sweep ended while the trial was open")
    summary = summarise(client, target, metric=family.metric, mode=family.mode)  # after: nothing counts as running
    status = "KILLED" if interrupted else ("FINISHED" if summary.finished else "FAILED")
    record_sweep_result(client, target, summary, status=status)
    counts = ", ".join(f"{v} {k.lower()}" for k, v in sorted(summary.counts().items()))
    print(f"\nscenesweep: sweep {spec.name}: {len(summary.rows)} trials ({counts})")
    if interrupted:
        print(
            f"scenesweep: interrupted; running trials were stopped and their runs marked KILLED; "
            f"continue with: {spec.resume_command()}"
        )
        return EXIT_INTERRUPTED, summary
    best = summary.best
    if best is None:
        if not summary.errors:  # every trial was stopped early: by ASHA, the chance stop or the budget
            budget = f" within --budget {spec.budget:g}s" if spec.budget else ""
            print(
                f"scenesweep: error: no trial finished{budget}: every one was stopped early; "
                "give trials time to finish (a longer --budget, or fewer --epochs)",
                file=sys.stderr,
            )
            return 1, summary
        print("scenesweep: error: no trial finished; distinct errors:", file=sys.stderr)
        for error, count in summary.errors.most_common():
            print(f"  {count} x {error}", file=sys.stderr)
        return 1, summary
    print(format_table(summary.ranked()[:5], metric=family.metric))
    if failures := format_failures(summary.rows):
        print(f"failed (see scenesweep.error on their runs):\n{failures}")
    print(
        f"\nBest trial {best.trial_id} (run {best.run_id}): {family.metric} {best.metrics[family.metric]:.4f}, "
        f"test_accuracy {best.metrics.get('test_accuracy', float('nan')):.4f}"
    )
    print("config: " + json.dumps(best.config, sort_keys=True))
    print(f"model: {best.model_uri}")
    return 0, summary


def record_study_plots(spec: SweepSpec, family: Family, client, target, rows: list[TrialRow]) -> str:
    """The study's plots on the parent run (tracking.study_plots), drawn from the sweep's own study,
    with `rows` (its runs, as finish read them) for each trial's id and size; a sweep without a study
    is rebuilt from its runs and says so. Never fatal: the sweep is recorded. Returns the line to print."""
    from sweep.study_source import REBUILT_NOTE, drawn_study, existing_study, run_histories, study_from_rows
    from tracking.study_plots import log_study_plots

    try:
        study = existing_study(spec)
        if study is not None:
            drawn, note = drawn_study(study, rows, mode=family.mode), ""
        else:
            from search_spaces import parameter_distributions

            drawn = study_from_rows(
                rows,
                metric=family.metric,
                mode=family.mode,
                distributions=parameter_distributions(family.space),
                curves=run_histories(client, rows, metric=family.metric),
            )
            note = f"; {REBUILT_NOTE}"
        plots = log_study_plots(client, target.parent_run_id, drawn, metric=family.metric)
        return f"Study plots ({plots.line()}{note})"
    except Exception as exc:  # noqa: BLE001
        return f"scenesweep: warning: no study plots: {type(exc).__name__}: {exc}"


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
    from tracking.ui import DEFAULT_PORT, run_page
    from tracking.uris import is_local_store, masked

    if not is_local_store(uri):
        return run_page(uri, target) if target else masked(uri)
    command = "scenesweep ui" + tracking_flag(uri)
    if target is None:
        return command
    return f"{command}, then open {run_page(f'http://127.0.0.1:{DEFAULT_PORT}', target)}"
