"""One Tune trial, family-agnostic: seed, open the MLflow run, fit, evaluate, log, close.

`run_trial` is the function Ray Tune runs. It trains through the model library's plain training
(`trainables.training.fit_and_evaluate`), so a sweep is an overlay on training, not a different
code path.
"""

from __future__ import annotations

import logging
import tempfile
import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from trainables.core.session import AtChanceLevel, Stopwatch, TrialFailed, TrialSession
from trainables.families import Family
from trainables.training import TrialOutcome, fit_and_evaluate, seed_everything, set_threads

if TYPE_CHECKING:
    from sweep.spec import SweepSpec
    from tracking.runs import SweepTarget
    from trainables.core.data import Dataset

CURVE_METRICS = ("train_loss", "val_loss", "train_accuracy", "val_accuracy")
# Keys of a trial's last Tune result that say how it ended (the searcher tells Optuna from them):
TRIAL_COMPLETED = "trial_completed"  # trained its course and was evaluated on test
TRIAL_FAILED = "trial_failed"  # this configuration cannot train (worst value)
ALREADY_FINISHED = "already_finished"  # a resumed trial that had completed before the snapshot
CHANCE_STOPPED = "chance_stopped"  # stopped itself at chance level (pruned)


_UNRECORDED_OPTIONS = frozenset({"cache_dir"})  # where the decoded data is cached, not how it trains


@dataclass(frozen=True)
class TrialSettings:
    family: Family  # the entry itself, not its name: a family registered at run time reaches the workers
    max_epochs: int
    seed: int = 0
    threads: int = 1
    target: SweepTarget | None = None  # where the trial's run goes; None = don't track
    options: dict = field(default_factory=dict)  # sweep-wide, not searched: cache_dir, family flags
    time_limit: float | None = None  # seconds of training per trial attempt (--trial-timeout)
    chance_stop: bool = True  # stop a trial still at chance level after CHANCE_EPOCHS (--no-chance-stop)
    data_source: str = "demo"  # --data as given: recorded as the run's dataset input
    run_name: str = ""  # the run's name; "" = the Tune trial's name (a refit names its own: sweep/refit.py)
    run_tags: dict = field(default_factory=dict)  # tags over the run's own (a refit's role and source trial)

    @classmethod
    def of_sweep(cls, spec: SweepSpec, family: Family, target: SweepTarget, **overrides) -> TrialSettings:
        """The settings every trial of sweep `spec` trains with (the refit overrides a few)."""
        return replace(
            cls(
                family=family,
                max_epochs=spec.epochs,
                seed=spec.seed,
                threads=max(1, int(spec.cpus_per_trial)),
                target=target,
                options={"cache_dir": spec.data.cache_dir, **spec.options},
                time_limit=spec.trial_timeout,
                chance_stop=spec.chance_stop,
                data_source=spec.data.source,
            ),
            **overrides,
        )


def option_tags(options: dict) -> dict:
    """The sweep's family options (--precision, --compile, ...) as the trial's run records them:
    tags `scenesweep.option.NAME`, not params, so a trial's config stays what the search chose."""
    return {f"scenesweep.option.{k}": v for k, v in sorted(options.items()) if k not in _UNRECORDED_OPTIONS}


def run_trial(config: dict, *, dataset: Dataset, settings: TrialSettings) -> None:
    """Ray Tune's function trainable. Every exit path leaves the MLflow run in a final state."""
    from tracking.uris import fluent_store

    if settings.target is None:
        raise ValueError("run_trial tracks every trial: TrialSettings.target must be set")
    with fluent_store(settings.target.uri):  # Model.log goes through the fluent API's store
        _run_trial(config, dataset=dataset, settings=settings)


def _run_trial(config: dict, *, dataset: Dataset, settings: TrialSettings) -> None:
    import ray
    from ray import tune

    from sweep.recorder import hand_off, record_trial
    from tracking.provenance import log_dataset, perf_named
    from tracking.runs import TAG_CHANCE_STOP, TAG_NODE, TrialRun
    from tracking.system_metrics import system_metrics

    started = time.perf_counter()
    family = settings.family
    target = settings.target
    assert target is not None  # run_trial checked
    logging.getLogger("ray.train").setLevel(logging.WARNING)  # one "Checkpoint created" line per epoch is noise
    seed_everything(settings.seed)
    set_threads(settings.threads)
    context = tune.get_context()
    trial_name = settings.run_name or context.get_trial_name()
    # The trial's own overhead, in disjoint parts: MLflow during training (epoch_log) and outside it
    # (tracking: the run, its dataset input, the record handed to the recorder), Tune's reports and
    # checkpoints. Training alone = fit_seconds - epoch_log_seconds - tune_seconds. The recorder adds
    # what it spends (artifacts, model_log, record) to the same run.
    stopwatch = Stopwatch()
    with stopwatch("tracking"):
        run = TrialRun.open(
            target,
            trial_id=context.get_trial_id(),
            trial_name=trial_name,
            params=config,
            tags={TAG_NODE: ray.util.get_node_ip_address(), **option_tags(settings.options), **settings.run_tags},
        )
    if run.previous_status == "FINISHED":
        # Resumed from a snapshot taken before this trial completed: report what it already recorded.
        tune.report({**run.latest_metrics(), ALREADY_FINISHED: 1, TRIAL_COMPLETED: 1})
        return
    resumed = run.last_logged_step > 0  # earlier epochs are in MLflow, not in this attempt's history
    with stopwatch("tracking"):
        log_dataset(
            run.client,
            run.run_id,
            source=settings.data_source,
            digest=dataset.fingerprint,
            profile={"summary": dataset.summary()},
        )
    session = TrialSession(
        max_epochs=settings.max_epochs,
        run=run,
        threads=settings.threads,
        report=tune.report,
        checkpoint=tune.get_checkpoint(),
        options=settings.options,
        time_limit=settings.time_limit,
        stopwatch=stopwatch,
        chance_level=1.0 / len(dataset.class_names) if settings.chance_stop else None,
    )
    monitor = system_metrics(run.run_id, tracking_uri=target.uri, resume=run.reopened)
    try:
        outcome = fit_and_evaluate(config, dataset, family, session)
        # What is left is bookkeeping: handed to this node's recorder (off the trial's path), or done
        # here when the node has none (sweep/recorder.py).
        with stopwatch("tracking"):
            record = trial_record(run, session, outcome, dataset, settings, name=trial_name, resumed=resumed)
        overhead = perf_named({**stopwatch.metrics(), "trial_seconds": time.perf_counter() - started})
        record.metrics = {**perf_named(outcome.metrics), **overhead}
        if not hand_off(record, target.parent_run_id):
            record_trial(record)
    except TrialFailed as exc:
        # Deterministic for this config: record why and let the sweep go on (no retry). Tune insists
        # on the metric in a trial's last result; the worst value also steers TPE away from the config.
        run.finish("FAILED", error=str(exc))
        tune.report({family.metric: float("-inf") if family.mode == "max" else float("inf"), TRIAL_FAILED: 1})
        return
    except AtChanceLevel as exc:
        # Not learning: the rest of its epochs would be wasted budget. Pruned, with the reason on its run.
        run.set_tags({TAG_CHANCE_STOP: str(exc)})
        run.finish("KILLED", pruned=True)
        epoch, value = session.history["val_accuracy"][-1]
        value = session.history.get(family.metric, [(epoch, value)])[-1][1]
        tune.report({family.metric: value, "epoch": epoch, CHANCE_STOPPED: 1})
        return
    except SystemExit:
        # Tune stops a function trainable by raising SystemExit inside tune.report (ASHA pruning).
        run.finish("KILLED", pruned=True)
        raise
    except KeyboardInterrupt:
        # Ctrl-C reached the worker too: the sweep is being interrupted, the trial did nothing wrong.
        run.finish("KILLED", error="sweep interrupted")
        raise
    except BaseException as exc:
        run.finish("FAILED", error=f"{type(exc).__name__}: {exc}")
        raise
    finally:
        monitor.stop()
    final = {**perf_named(outcome.metrics), **overhead, TRIAL_COMPLETED: 1}
    if family.metric not in final and family.metric in session.history:
        final[family.metric] = session.history[family.metric][-1][1]
    session.send_final(final)


def trial_curves(run, session: TrialSession, outcome: TrialOutcome, resumed: bool) -> dict:
    """The learning curves as MLflow holds them: this attempt's epochs plus a final value of a per-epoch
    key (the step after the last epoch). Read back from MLflow only when earlier attempts logged epochs."""
    if resumed:
        return {k: [(m.step, m.value) for m in run.metric_history(k)] for k in CURVE_METRICS}
    after = run.last_logged_step + 1
    return {
        k: session.history.get(k, []) + ([(after, float(outcome.metrics[k]))] if k in outcome.metrics else [])
        for k in CURVE_METRICS
    }


def trial_record(
    run, session: TrialSession, outcome: TrialOutcome, dataset, settings: TrialSettings, *, name: str, resumed: bool
):
    """What the finished trial still has to record (sweep.recorder), its classifier saved to a
    folder on this node that the recording removes."""
    from sweep.recorder import TrialRecord
    from tracking.runs import TAG_TIMED_OUT

    target = settings.target
    assert target is not None
    folder = Path(tempfile.mkdtemp(prefix="scenesweep-model-"))
    saved = outcome.classifier.save(folder / "classifier")
    return TrialRecord(
        uri=target.uri,
        experiment_id=target.experiment_id,
        run_id=run.run_id,
        last_logged_step=run.last_logged_step,
        model_name=name,
        model_tags=dict(target.source),
        classifier_folder=str(saved),
        class_names=list(dataset.class_names),
        example_images=np.ascontiguousarray(dataset.x_test[:2]),
        confusion=outcome.test.confusion,
        report=outcome.test.report,
        curves=trial_curves(run, session, outcome, resumed),
        predictions=predictions_table(outcome, dataset),
        metrics={},
        tags={TAG_TIMED_OUT: "true"} if session.timed_out else {},
    )


def predictions_table(outcome: TrialOutcome, dataset):
    """One row per test image: its file, true and predicted class, the prediction's probability."""
    import pandas as pd

    names = dataset.class_names
    predicted = outcome.test.predictions
    return pd.DataFrame(
        {
            "image": list(dataset.test_names),
            "true": [names[i] for i in dataset.y_test],
            "predicted": [names[i] for i in predicted],
            "probability": [round(float(p[i]), 6) for p, i in zip(outcome.test.probabilities, predicted)],
        }
    )
