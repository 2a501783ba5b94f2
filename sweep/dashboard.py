"""`scenesweep dashboard SWEEP`: optuna-dashboard on the sweep's study, on 127.0.0.1 only.

The sweep's own persistent study (an Optuna journal file `<storage>/<sweep>/optuna.journal`, or the
RDB URL saved as `study_storage` in its scenesweep.json) is the one source of its trial state. Only a
sweep without one (older than persistent studies, or whose study is gone) is mirrored from MLflow,
where every trial's run holds its config and metrics: an in-memory study that takes in each trial as
its run ends (checked every few seconds), during the sweep and after, on the cluster's tracking server
as well as a local store; the command says so.
"""

from __future__ import annotations

import threading
import warnings
from pathlib import Path

from sweep.ports import check_listen
from sweep.spec import saved_spec, sweep_tracking_uri
from sweep.study import STUDY_FILE

REFRESH_SECONDS = 10.0


def study_location(sweep: str, *, storage: str) -> str | None:
    """Where the sweep's persistent Optuna study is (its journal file's path or its RDB URL), or None."""
    journal = Path(storage) / sweep / STUDY_FILE
    if journal.is_file():
        return str(journal.resolve())
    return (saved_spec(storage, sweep) or {}).get("study_storage") or None


def open_storage(location: str):
    """An Optuna storage for a journal file path or an RDB URL."""
    import optuna

    if "://" in location:
        return optuna.storages.RDBStorage(location)
    from optuna.storages.journal import JournalFileBackend, JournalStorage

    return JournalStorage(JournalFileBackend(location))


class MlflowMirror:
    """An in-memory study named after the sweep, filled from its MLflow runs and kept current."""

    def __init__(self, sweep: str, *, uri: str, refresh: float = REFRESH_SECONDS):
        import optuna
        from mlflow.tracking import MlflowClient

        from sweep.results import load_sweep

        record = load_sweep(sweep, uri)  # a clear error for an unknown sweep or store
        self.sweep, self.uri, self.refresh = sweep, record.tracking_uri, refresh
        self.family = record.family
        self.client = MlflowClient(self.uri)
        self.storage = optuna.storages.InMemoryStorage()
        optuna.logging.set_verbosity(optuna.logging.WARNING)
        self.study = optuna.create_study(
            storage=self.storage, study_name=sweep, direction="maximize" if self.family.mode == "max" else "minimize"
        )
        with warnings.catch_warnings():  # set_metric_names is "experimental"
            warnings.simplefilter("ignore")
            self.study.set_metric_names([self.family.metric])
        self.study.set_user_attr("source", f"MLflow runs of sweep {sweep} in {record.tracking_uri}")
        self.seen: set[str] = set()
        self._distributions: dict | None = None
        self._stop = threading.Event()
        self.update()

    def update(self) -> int:
        """Add the trials that ended since the last look; returns how many were added."""
        from search_spaces import parameter_distributions
        from sweep.study_source import run_histories, study_from_rows
        from tracking.runs import find_sweep_run, target_from_run
        from tracking.study_plots import TRIAL_ID_ATTR
        from tracking.summary import summarise

        if self._distributions is None:
            self._distributions = parameter_distributions(self.family.space)
        run = find_sweep_run(self.client, self.sweep)
        if run is None:
            return 0
        summary = summarise(self.client, target_from_run(run), metric=self.family.metric, mode=self.family.mode)
        new = [r for r in summary.rows if r.trial_id not in self.seen and r.status != "RUNNING"]
        built = study_from_rows(
            new,
            metric=self.family.metric,
            mode=self.family.mode,
            distributions=self._distributions,
            curves=run_histories(self.client, new, metric=self.family.metric),
        )
        for trial in built.trials:
            self.study.add_trial(trial)
            self.seen.add(trial.user_attrs[TRIAL_ID_ATTR])
        return len(built.trials)

    def follow(self) -> None:
        """Keep taking in trials in the background until stop()."""

        def loop():
            while not self._stop.wait(self.refresh):
                try:
                    self.update()
                except Exception:  # noqa: BLE001 - a tracking hiccup; the next look tries again
                    pass

        threading.Thread(target=loop, daemon=True, name="mlflow-mirror").start()

    def stop(self) -> None:
        self._stop.set()


def run_dashboard(sweep: str, *, uri: str | None, storage: str, port: int) -> int:
    """Serve until Ctrl-C. Loopback only: optuna-dashboard has no authentication, and anyone who can
    reach it can edit the study's notes (reach it from elsewhere through an SSH tunnel)."""
    import optuna_dashboard

    host = "127.0.0.1"
    check_listen(host, port)
    from sweep.study_source import REBUILT_NOTE

    location = study_location(sweep, storage=storage)
    mirror = None
    if location is not None:
        served = open_storage(location)
        where = f"the sweep's study in {location}"
    else:
        mirror = MlflowMirror(sweep, uri=sweep_tracking_uri(sweep, uri, storage=storage))
        mirror.follow()
        served = mirror.storage
        where = f"its trials {REBUILT_NOTE}; from {mirror.uri}, updated every {mirror.refresh:g} s"
    print(
        f"scenesweep: optuna-dashboard for sweep {sweep} at http://{host}:{port} ({where}); Ctrl-C to stop", flush=True
    )
    try:
        optuna_dashboard.run_server(served, host=host, port=port)
    except KeyboardInterrupt:
        pass
    finally:
        if mirror is not None:
            mirror.stop()
    return 0
