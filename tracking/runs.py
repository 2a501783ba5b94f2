"""MLflow runs: one parent run per sweep, one child run per Tune trial.

Everything here talks to MLflow through an explicit `MlflowClient` and run ids,
never through the fluent API's global "active run", so the same code works in
the driver, in Ray workers on other hosts (over HTTP), and when a trial is
retried or a sweep resumed: runs are looked up by their scenesweep tags before
one is created, so no trial ever gets two runs.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlparse

from mlflow.entities import Metric, Param, RunStatus, RunTag
from mlflow.exceptions import MlflowException
from mlflow.tracking import MlflowClient

from tracking.uris import DEFAULT_STORE, is_local_store, masked, resolve_tracking_uri  # noqa: F401 (re-exported)

TAG_SWEEP = "scenesweep.sweep"
TAG_FAMILY = "scenesweep.family"
TAG_SEARCH = "scenesweep.search"
TAG_ROLE = "scenesweep.role"  # "sweep" for the parent run, "trial" for children
TAG_TRIAL_ID = "scenesweep.trial_id"
TAG_PRUNED = "scenesweep.pruned"
TAG_LOST = "scenesweep.lost"  # its trial was lost with a killed driver (see tracking/reconcile.py)
TAG_ERROR = "scenesweep.error"
TAG_ATTEMPT = "scenesweep.attempt"  # 1, then +1 each time Tune retries or a resume restarts the trial
TAG_RESUMED_FROM = "scenesweep.resumed_from_epoch"  # the checkpoint a retried trial continued from
TAG_NODE = "scenesweep.node"  # the Ray node (its IP) the trial's latest attempt runs on
TAG_PARENT = "mlflow.parentRunId"
TAG_MODEL_URI = "scenesweep.model_uri"  # the trial's logged model (models:/m-...)
TAG_TIMED_OUT = "scenesweep.timed_out"  # training stopped early by --trial-timeout
TAG_CHANCE_STOP = "scenesweep.chance_stop"  # why a trial stopped itself at chance level (pruned)
TAG_RECORDED_BY = "scenesweep.recorded_by"  # "recorder": off the trial's path; "trial": inline, on it

INTERRUPTED_REASON = "sweep interrupted"  # scenesweep.error of the runs Ctrl-C stopped

PER_EPOCH_METRICS = frozenset({"train_loss", "train_accuracy", "val_loss", "val_accuracy", "epoch_seconds", "lr"})
DEFAULT_ARTIFACTS = "mlartifacts"
_MAX_PARAM_LENGTH = 6000
_DATABASE_PORTS = {"postgresql": 5432, "mysql": 3306, "mssql": 1433}
_BATCH = 100  # MLflow's log_batch accepts at most 100 params / 1000 metrics per call


class TrackingError(RuntimeError):
    """The tracking server or store cannot be used; the message says how to fix it."""


# --- where the store is --------------------------------------------------------------------


def check_tracking(uri: str, *, timeout: float = 10.0) -> None:
    """Fail fast, with the fix in the message, when the store cannot be used."""
    parsed = urlparse(uri)
    if parsed.scheme in ("http", "https"):
        import requests

        try:
            response = requests.get(uri.rstrip("/") + "/health", timeout=timeout)
        except requests.RequestException as exc:
            raise TrackingError(
                f"cannot reach the MLflow tracking server at {masked(uri)} ({type(exc).__name__}); "
                "start it (e.g. `mlflow server --host 127.0.0.1 --port 5000`) or pass another --tracking-uri"
            ) from None
        if response.status_code >= 500:
            raise TrackingError(
                f"the MLflow tracking server at {masked(uri)} is unhealthy (HTTP {response.status_code}); check its log"
            )
        _check_credentials(uri, timeout)
    elif parsed.scheme.split("+")[0] in _DATABASE_PORTS and parsed.hostname:
        # MLflow retries a refused database connection for minutes; a plain TCP connect says it at once.
        import socket

        port = parsed.port or _DATABASE_PORTS[parsed.scheme.split("+")[0]]
        try:
            with socket.create_connection((parsed.hostname, port), timeout=min(timeout, 5.0)):
                pass
        except OSError as exc:
            raise TrackingError(
                f"cannot reach the tracking database at {masked(uri)} ({exc.strerror or type(exc).__name__}); "
                "start it or pass another --tracking-uri"
            ) from None
    elif (
        parsed.scheme not in ("sqlite", "file", "postgresql", "mysql", "mssql", "databricks")
        and "+" not in parsed.scheme
    ):
        raise TrackingError(
            f"unsupported tracking URI {masked(uri)!r}; use http://HOST:PORT, sqlite:///FILE or a folder"
        )


def _check_credentials(uri: str, timeout: float) -> None:
    import requests

    auth = None
    user, password = os.environ.get("MLFLOW_TRACKING_USERNAME"), os.environ.get("MLFLOW_TRACKING_PASSWORD")
    if user and password:
        auth = (user, password)
    url = uri.rstrip("/") + "/api/2.0/mlflow/experiments/search"
    try:
        response = requests.post(url, json={"max_results": 1}, auth=auth, timeout=timeout)
    except requests.RequestException as exc:
        raise TrackingError(
            f"cannot talk to the MLflow tracking server at {masked(uri)} ({type(exc).__name__})"
        ) from None
    if response.status_code in (401, 403):
        given = "were refused" if auth else "are missing"
        raise TrackingError(
            f"the MLflow tracking server at {masked(uri)} requires authentication and the credentials {given}; "
            "set MLFLOW_TRACKING_USERNAME and MLFLOW_TRACKING_PASSWORD"
        )


def require_existing_store(uri: str) -> None:
    """A read-only command names a local store that is not there: say so, rather than create an
    empty one (MLflow creates a sqlite file or a folder on first use)."""
    if not is_local_store(uri):
        return
    path = Path(uri[len("sqlite:///") :]) if uri.startswith("sqlite:///") else Path(urlparse(uri).path or uri)
    if not path.exists():
        raise TrackingError(
            f"no tracking store at {path}; run a sweep here first, or pass --tracking-uri "
            "(or set MLFLOW_TRACKING_URI) to where its runs are"
        )


def local_artifact_root(uri: str) -> str | None:
    """Artifacts of a local store go to ./mlartifacts (absolute), beside ./mlruns.db."""
    if not is_local_store(uri):
        return None
    if uri.startswith("sqlite:///"):
        base = Path(uri[len("sqlite:///") :]).parent
    else:
        base = Path(urlparse(uri).path)
    return (base / DEFAULT_ARTIFACTS).resolve().as_uri()


def get_or_create_experiment(client: MlflowClient, name: str, uri: str, *, family: str = "") -> str:
    """The experiment's id; a new one opens on its runs in the UI and says what it holds."""
    from tracking.provenance import experiment_tags, mark_experiment

    experiment = client.get_experiment_by_name(name)
    if experiment is not None:
        if experiment.lifecycle_stage == "deleted":
            raise TrackingError(
                f"experiment {name!r} is deleted in {masked(uri)}; restore it in the MLflow UI or pick another --experiment"
            )
        mark_experiment(client, experiment.experiment_id, family=family)
        return experiment.experiment_id
    try:
        return client.create_experiment(
            name, artifact_location=local_artifact_root(uri), tags=experiment_tags(family=family)
        )
    except MlflowException:
        # Another process created it between our lookup and create.
        experiment = client.get_experiment_by_name(name)
        if experiment is None:
            raise
        return experiment.experiment_id


# --- the sweep's parent run ----------------------------------------------------------------


@dataclass(frozen=True)
class SweepTarget:
    """Where a sweep's runs live; small and picklable, handed to every trial."""

    uri: str
    experiment_id: str
    parent_run_id: str
    sweep: str
    family: str
    source: tuple[tuple[str, str], ...] = ()  # the driver's mlflow.source.* tags, for the trials' runs


def start_sweep_run(
    client: MlflowClient, *, uri: str, experiment_id: str, sweep: str, family: str, search: str, params: dict
) -> SweepTarget:
    """Create the sweep's parent run, or reopen it when the sweep is resumed."""
    from tracking.provenance import source_tags

    source = source_tags()
    existing = find_sweep_run(client, sweep, experiment_ids=[experiment_id])
    if existing is not None:
        client.update_run(existing.info.run_id, status=RunStatus.to_string(RunStatus.RUNNING))
        run_id = existing.info.run_id
        if TAG_ERROR in existing.data.tags:  # how the last driver ended; this one starts clean
            client.delete_tag(run_id, TAG_ERROR)
    else:
        tags = {TAG_SWEEP: sweep, TAG_FAMILY: family, TAG_SEARCH: search, TAG_ROLE: "sweep", **source}
        run_id = client.create_run(experiment_id, run_name=sweep, tags=tags).info.run_id
        log_params(client, run_id, params)
    return SweepTarget(
        uri=uri,
        experiment_id=experiment_id,
        parent_run_id=run_id,
        sweep=sweep,
        family=family,
        source=tuple(sorted(source.items())),
    )


def sweep_runs(client: MlflowClient) -> list:
    """Every sweep's parent run in the store, newest first."""
    experiment_ids = [e.experiment_id for e in client.search_experiments()]
    if not experiment_ids:
        return []
    return client.search_runs(
        experiment_ids,
        filter_string=f"tags.`{TAG_ROLE}` = 'sweep'",
        order_by=["attributes.start_time DESC"],
        max_results=1000,
    )


@contextmanager
def closed_on_failure(client: MlflowClient, target: SweepTarget) -> Iterator[None]:
    """Whatever escapes the block leaves the sweep's runs final, never RUNNING: KILLED for Ctrl-C,
    FAILED with the reason (tag scenesweep.error) for anything else; then the error goes on."""
    try:
        yield
    except BaseException as exc:
        killed = isinstance(exc, (KeyboardInterrupt, SystemExit))
        status = "KILLED" if killed else "FAILED"
        reason = INTERRUPTED_REASON if killed else (f"{type(exc).__name__}: {exc}".strip().splitlines() or [""])[0]
        try:
            close_open_trial_runs(client, target, status="KILLED", reason=f"sweep ended: {reason}")
            close_run(client, target.parent_run_id, status=status, reason=reason)
        except Exception:  # noqa: BLE001 - the tracking store itself may be what failed; the first error matters
            pass
        raise


def find_sweep_run(client: MlflowClient, sweep: str, *, experiment_ids: list[str] | None = None):
    """The parent run of sweep `sweep` (searching every experiment unless told), or None."""
    if experiment_ids is None:
        experiment_ids = [e.experiment_id for e in client.search_experiments()]
    if not experiment_ids:
        return None
    runs = client.search_runs(
        experiment_ids,
        filter_string=f"tags.`{TAG_SWEEP}` = '{quote(sweep)}' AND tags.`{TAG_ROLE}` = 'sweep'",
        max_results=1,
    )
    return runs[0] if runs else None


def trial_runs(client: MlflowClient, target: SweepTarget, *, open_only: bool = False) -> list:
    """All child runs of the sweep (only those still RUNNING or SCHEDULED with `open_only`), oldest
    first: one search, paged."""
    runs: list = []
    token = None
    # MLflow compares only run ids with a list: not FINISHED, FAILED or KILLED is RUNNING or SCHEDULED.
    only_open = (
        "".join(f" AND attributes.status != '{s}'" for s in ("FINISHED", "FAILED", "KILLED")) if open_only else ""
    )
    while True:
        page = client.search_runs(
            [target.experiment_id],
            filter_string=f"tags.`{TAG_PARENT}` = '{target.parent_run_id}'{only_open}",
            order_by=["attributes.start_time ASC"],
            max_results=1000,
            page_token=token,
        )
        runs.extend(page)
        token = page.token
        if not token:
            return runs


def find_trial_run(client: MlflowClient, target: SweepTarget, trial_id: str):
    """The child run of Tune trial `trial_id` in this sweep, or None (a trial never has two)."""
    runs = client.search_runs(
        [target.experiment_id],
        filter_string=f"tags.`{TAG_TRIAL_ID}` = '{quote(trial_id)}' AND tags.`{TAG_PARENT}` = '{target.parent_run_id}'",
        max_results=1,
    )
    return runs[0] if runs else None


def logged_epochs(run) -> int:
    """Epochs a trial's run has recorded: train_loss has one step per epoch (val_accuracy may carry
    one more, a second stage's result after the last epoch). Read from the run as a search returns
    it, no request: a run's latest value of a metric is the one at its highest step."""
    steps = {metric.key: metric.step for metric in run.data.to_proto().metrics}
    return steps.get("train_loss", 0)


def target_from_run(run) -> SweepTarget:
    return SweepTarget(
        uri="",
        experiment_id=run.info.experiment_id,
        parent_run_id=run.info.run_id,
        sweep=run.data.tags.get(TAG_SWEEP, run.info.run_name),
        family=run.data.tags.get(TAG_FAMILY, ""),
    )


# --- a trial's child run -------------------------------------------------------------------


class TrialRun:
    """The MLflow child run of one Tune trial; reopened, never duplicated, on retry or resume."""

    def __init__(self, client: MlflowClient, run_id: str, *, status: str, last_step: int, reopened: bool = False):
        self.client = client
        self.run_id = run_id
        self.previous_status = status  # what it was before this attempt reopened it
        self.last_logged_step = last_step  # epochs up to here are already in MLflow
        self.reopened = reopened  # an earlier attempt (retry, resume) created it

    @classmethod
    def open(
        cls, target: SweepTarget, *, trial_id: str, trial_name: str, params: dict, tags: dict | None = None
    ) -> TrialRun:
        """`tags` go in with the run's own (one request), on a new run and on a reopened one."""
        client = MlflowClient(target.uri)
        run = find_trial_run(client, target, trial_id)
        if run is not None:
            trial = cls(client, run.info.run_id, status=run.info.status, last_step=logged_epochs(run), reopened=True)
            if run.info.status != "FINISHED":
                client.update_run(run.info.run_id, status="RUNNING")
                attempt = int(run.data.tags.get(TAG_ATTEMPT, "1")) + 1
                trial.set_tags({TAG_ATTEMPT: attempt, **(tags or {})})
                for stale in (TAG_ERROR, TAG_PRUNED):  # how the last attempt ended; this one starts clean
                    if stale in run.data.tags:
                        client.delete_tag(run.info.run_id, stale)
            return trial
        tags = {
            TAG_PARENT: target.parent_run_id,
            TAG_TRIAL_ID: trial_id,
            TAG_SWEEP: target.sweep,
            TAG_FAMILY: target.family,
            TAG_ROLE: "trial",
            TAG_ATTEMPT: "1",
            **dict(target.source),
            **{k: str(v) for k, v in (tags or {}).items()},
        }
        run = client.create_run(target.experiment_id, run_name=trial_name, tags=tags)
        log_params(client, run.info.run_id, params)
        return cls(client, run.info.run_id, status="RUNNING", last_step=0)

    def log_epoch(self, epoch: int, metrics: dict) -> None:
        """One log_batch per epoch; an epoch already recorded (before a retry) is not logged twice."""
        if epoch <= self.last_logged_step:
            return
        timestamp = int(time.time() * 1000)
        self.client.log_batch(self.run_id, metrics=[Metric(k, float(v), timestamp, epoch) for k, v in metrics.items()])
        self.last_logged_step = epoch

    def set_tags(self, tags: dict) -> None:
        self.log(tags=tags)

    def resumed_from(self, epoch: str) -> None:
        """Say which checkpoint (epoch) a retried trial continued from."""
        self.set_tags({TAG_RESUMED_FROM: epoch})

    def log(self, *, metrics: dict | None = None, tags: dict | None = None, model_id: str | None = None) -> None:
        """Trial-level metrics and tags in one request. Metrics go at step 0, except a final value for
        a per-epoch key (a second stage's val_accuracy, say): it becomes the next step of that key's
        history, so it is the run's latest. `model_id` links the metrics to the trial's logged model."""
        timestamp = int(time.time() * 1000)
        after_epochs = self.last_logged_step + 1
        self.client.log_batch(
            self.run_id,
            metrics=[
                Metric(k, float(v), timestamp, after_epochs if k in PER_EPOCH_METRICS else 0, model_id=model_id)
                for k, v in (metrics or {}).items()
            ],
            tags=[RunTag(k, str(v)) for k, v in (tags or {}).items()],
        )

    def log_params(self, params: dict) -> None:
        log_params(self.client, self.run_id, params)

    def latest_metrics(self) -> dict:
        return dict(self.client.get_run(self.run_id).data.metrics)

    def metric_history(self, key: str) -> list:
        return sorted(self.client.get_metric_history(self.run_id, key), key=lambda m: m.step)

    def finish(self, status: str = "FINISHED", *, error: str | None = None, pruned: bool = False) -> None:
        close_run(
            self.client, self.run_id, status=status, reason=error or "", tags={TAG_PRUNED: "true"} if pruned else None
        )


def close_run(client: MlflowClient, run_id: str, *, status: str, reason: str = "", tags: dict | None = None) -> None:
    """End a run with `status`, after its reason (scenesweep.error) and any other `tags`, in one
    request: whoever reads the run closed finds why."""
    tags = {**(tags or {}), **({TAG_ERROR: reason[:5000]} if reason else {})}
    if tags:
        client.log_batch(run_id, tags=[RunTag(key, str(value)) for key, value in tags.items()])
    client.set_terminated(run_id, status=status)


def close_open_trial_runs(
    client: MlflowClient, target: SweepTarget, *, status: str = "KILLED", reason: str = ""
) -> int:
    """Give every child run still RUNNING a final status; returns how many were closed."""
    closed = 0
    for run in trial_runs(client, target, open_only=True):
        close_run(client, run.info.run_id, status=status, reason=reason)
        closed += 1
    return closed


def log_params(client: MlflowClient, run_id: str, params: dict) -> None:
    items = [Param(str(k), _param_value(v)) for k, v in sorted(flatten(params).items())]
    for start in range(0, len(items), _BATCH):
        client.log_batch(run_id, params=items[start : start + _BATCH])


def flatten(mapping: dict, prefix: str = "") -> dict:
    flat = {}
    for key, value in mapping.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict):
            flat.update(flatten(value, f"{name}."))
        else:
            flat[name] = value
    return flat


def _param_value(value) -> str:
    text = "None" if value is None else str(value)
    return text[:_MAX_PARAM_LENGTH]


def quote(value: str) -> str:
    """A value inside a single-quoted MLflow search filter."""
    return str(value).replace("'", "\\'")
