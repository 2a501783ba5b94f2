"""A finished trial's records, written off the trial's path.

Once a trial has trained and been evaluated on test, what is left is bookkeeping: its figures,
report and predictions, its logged model, its final metrics, and closing its run. The trial puts
that in a `TrialRecord` (data only; the classifier already saved to its node's disk), hands it to
the recorder on its node and reports its final result to Tune, so the next trial starts training
while the records upload (on a GPU, a trial trains in about as long as its bookkeeping takes).

A recorder is a Ray actor (no CPU reserved) the driver starts on every node with the sweep and
drains before it reads the runs back (`Recorders.drain`): no run is read half-recorded, and none
is left RUNNING. A trial on a node without one (a node that joined after the start, or a trial run
outside a sweep) records inline, with the same `record_trial`. If a node dies with records still
queued on it, those trials' runs are closed FAILED with the reason when the driver drains.
"""

from __future__ import annotations

import functools
import logging
import queue
import shutil
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from trainables.core.session import Stopwatch

CONFUSION_MATRIX = "confusion_matrix.svg"  # the MLflow UI previews SVG artifacts like PNGs
LEARNING_CURVES = "learning_curves.svg"
REPORT = "classification_report.json"
PREDICTIONS_TABLE = "test_predictions.json"  # an MLflow table: the run's Evaluation view shows it
RECORDER_PREFIX = "scenesweep-recorder"
# Recorders outlive their driver (detached), in a namespace of their own: a driver killed mid-sweep
# leaves them recording what they hold, and `resume` finds them by name and waits for them.
RECORDER_NAMESPACE = "scenesweep-recorders"
RECORDER_LOST_REASON = "its node's recorder was lost before the trial was recorded (node died?)"

log = logging.getLogger(__name__)


@dataclass
class TrialRecord:
    """Everything a finished trial still has to record, by value: picklable, small but for the
    predictions table, and independent of the trial's process."""

    uri: str
    experiment_id: str
    run_id: str
    last_logged_step: int  # per-epoch metrics' steps end here; a per-epoch key's final value goes after
    model_name: str
    model_tags: dict
    classifier_folder: str  # SceneClassifier.save output on this node's disk; removed once logged
    class_names: list
    example_images: np.ndarray
    confusion: np.ndarray
    report: dict
    curves: dict  # metric -> [(epoch, value)]
    predictions: object  # a pandas DataFrame: image, true, predicted, probability
    metrics: dict  # the final metrics, perf-named, with the trial's own timings
    tags: dict = field(default_factory=dict)


def record_trial(record: TrialRecord) -> None:
    """Write the trial's artifacts, model and final metrics, and close its run FINISHED. If any of it
    fails, the run ends FAILED with the reason and the error is raised. Call it with MLflow's fluent
    API pointed at `record.uri` (tracking.uris.fluent_store): the trial runs inside one, a recorder
    holds one for its lifetime (the model is logged through it; entering one per record would not
    be thread-safe)."""
    from mlflow.tracking import MlflowClient

    from sweep.models import log_saved_classifier
    from tracking.provenance import perf_named
    from tracking.runs import TAG_MODEL_URI, TrialRun

    started = time.perf_counter()
    stopwatch = Stopwatch()
    run = TrialRun(MlflowClient(record.uri), record.run_id, status="RUNNING", last_step=record.last_logged_step)
    try:
        with stopwatch("artifacts"):
            with tempfile.TemporaryDirectory() as folder:
                write_trial_artifacts(Path(folder), record)
                run.client.log_artifacts(run.run_id, folder)
            run.client.log_table(run.run_id, data=record.predictions, artifact_file=PREDICTIONS_TABLE)
        # The model before the final metrics: MLflow then has no step-0 metrics to copy onto it (one
        # history request per metric); the final metrics are linked to it in the same request below.
        with stopwatch("model_log"):
            model = log_saved_classifier(
                run.run_id,
                Path(record.classifier_folder),
                record.class_names,
                record.example_images,
                experiment_id=record.experiment_id,
                name=record.model_name,
                tags=record.model_tags,
            )
        seconds = {**stopwatch.metrics(), "record_seconds": time.perf_counter() - started}
        run.log(
            metrics={**record.metrics, **perf_named(seconds)},
            tags={TAG_MODEL_URI: model.model_uri, **record.tags},
            model_id=model.model_id,
        )
        run.finish("FINISHED")
    except Exception as exc:
        try:
            run.finish("FAILED", error=f"recording the finished trial failed: {type(exc).__name__}: {exc}")
        except Exception:  # noqa: BLE001 - the store itself may be what failed; the first error matters
            pass
        raise
    finally:
        shutil.rmtree(record.classifier_folder, ignore_errors=True)


def write_trial_artifacts(folder: Path, record: TrialRecord) -> None:
    from tracking.artifacts import write_json
    from tracking.svg import confusion_matrix_svg, learning_curves_svg

    confusion_matrix_svg(record.confusion, record.class_names, folder / CONFUSION_MATRIX)
    write_json(record.report, folder / REPORT)
    if any(record.curves.values()):
        learning_curves_svg(record.curves, folder / LEARNING_CURVES)


RECORDER_THREADS = 4  # records in flight per node: recording waits on the tracking server, mostly


class Recorder:
    """The node's recorder (a threaded Ray actor) for one sweep's store: `accept` queues a record and
    returns at once; RECORDER_THREADS threads record them; `drain` waits until all accepted ones are
    recorded. One thread keeps up with about one trial a second against an MLflow server (a record
    is some 20 requests: artifacts, the model's files, metrics); trivial trials end faster."""

    def __init__(self, uri: str, threads: int = RECORDER_THREADS) -> None:
        from tracking.uris import fluent_store

        self._queue: queue.Queue[TrialRecord] = queue.Queue()
        self._failures: list[tuple[str, str]] = []  # (run id, why), runs already closed FAILED
        self._store = fluent_store(uri)  # held open: this process records into this store only
        self._store.__enter__()
        for index in range(threads):
            threading.Thread(target=self._work, name=f"scenesweep-recorder-{index}", daemon=True).start()

    def accept(self, record: TrialRecord) -> int:
        self._queue.put(record)
        return self._queue.qsize()

    def drain(self) -> list[tuple[str, str]]:
        self._queue.join()
        failures, self._failures = self._failures, []
        return failures

    def _work(self) -> None:
        try:  # what recording imports, while the sweep's first trials train
            import sweep.models  # noqa: F401
            import tracking.svg  # noqa: F401
        except Exception:  # noqa: BLE001 - the first record will say what is wrong
            pass
        while True:
            record = self._queue.get()
            try:
                record_trial(record)
            except Exception as exc:  # noqa: BLE001 - recorded on the run; the next record goes on
                log.warning("recording run %s failed: %s", record.run_id, exc)
                self._failures.append((record.run_id, f"{type(exc).__name__}: {exc}"))
            finally:
                self._queue.task_done()


def recorder_name(parent_run_id: str, node_id: str) -> str:
    return f"{RECORDER_PREFIX}-{parent_run_id}-{node_id}"


def hand_off(record: TrialRecord, parent_run_id: str) -> bool:
    """Give `record` to this node's recorder; False when there is none (the caller records inline)."""
    import ray
    from ray.exceptions import RayActorError

    from tracking.runs import TAG_RECORDED_BY

    record.tags[TAG_RECORDED_BY] = "recorder"
    name = recorder_name(parent_run_id, ray.get_runtime_context().get_node_id())
    try:
        ray.get(_recorder(name).accept.remote(record))  # accepted: from here the driver's drain waits for it
    except (ValueError, RayActorError):  # no recorder on this node, or it is gone
        _recorder.cache_clear()
        record.tags[TAG_RECORDED_BY] = "trial"
        return False
    return True


@functools.lru_cache(maxsize=4)  # a warm worker runs many trials of the same sweep: look it up once
def _recorder(name: str):
    import ray

    return ray.get_actor(name, namespace=RECORDER_NAMESPACE)


class Recorders:
    """The driver's recorders, one per node alive when the sweep starts. They are detached: if the
    driver dies they record what they were given, and a resumed sweep takes them over (same names)
    and drains them before it squares MLflow with the saved state. `stop` ends them; a sweep killed
    and never resumed leaves them idle (no CPU reserved) until its Ray cluster stops."""

    def __init__(self, parent_run_id: str, uri: str):
        import ray
        from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

        actor = ray.remote(Recorder)
        self.actors: dict[str, Any] = {}  # node id -> the recorder's actor handle
        for node in ray.nodes():
            if not node.get("Alive"):
                continue
            node_id = node["NodeID"]
            self.actors[node_id] = actor.options(
                name=recorder_name(parent_run_id, node_id),
                namespace=RECORDER_NAMESPACE,
                lifetime="detached",
                get_if_exists=True,  # a killed driver's recorder, still holding records: take it over
                num_cpus=0,
                max_concurrency=4,  # accept and drain beside the recording threads
                scheduling_strategy=NodeAffinitySchedulingStrategy(node_id, soft=False),
            ).remote(uri)

    def drain(self) -> tuple[list[tuple[str, str]], list[str]]:
        """Wait until every accepted record is recorded: (failed recordings as (run id, why), the
        nodes whose recorder was lost, records and all)."""
        import ray
        from ray.exceptions import RayActorError

        failures, lost = [], []
        for node_id, actor in self.actors.items():
            try:
                failures += ray.get(actor.drain.remote())
            except RayActorError:
                lost.append(node_id)
        return failures, lost

    def stop(self) -> None:
        import ray

        for actor in self.actors.values():
            ray.kill(actor)
        self.actors = {}
