"""MLflow system metrics (CPU, memory, disk, network; GPU through nvidia-ml-py) on a trial's run.

MLflow's own monitor, sampling every 10 s on a daemon thread: about one small log_batch per sample,
nothing in the training loop. Without psutil there is nothing to sample, and the trial goes on.
"""

from __future__ import annotations

import logging

SAMPLING_SECONDS = 10.0


class _NoMonitor:
    def stop(self) -> None:
        pass


class _Monitor:
    def __init__(self, monitor):
        self._monitor = monitor

    def stop(self) -> None:
        """End sampling, keeping the samples since the last publish (MLflow's own stop drops them, so
        a trial shorter than the interval would show none)."""
        monitor, self._monitor = self._monitor, None
        if monitor is None:
            return
        monitor.finish()
        try:
            if tail := monitor.aggregate_metrics():
                monitor.publish_metrics(tail)
                monitor.mlflow_logger.flush()
        except Exception:  # noqa: BLE001 - system metrics are a nicety; never fail a trial over them
            pass


def system_metrics(run_id: str, *, tracking_uri: str, interval: float = SAMPLING_SECONDS, resume: bool = True):
    """Start sampling into run `run_id`; the returned object's stop() ends it (safe to call once).
    `resume`: the run may hold an earlier attempt's samples, whose steps this one continues (a
    request to find the last); False for a run just created."""
    try:
        import psutil  # noqa: F401 - MLflow's CPU and memory monitors need it
        from mlflow.system_metrics.system_metrics_monitor import SystemMetricsMonitor
    except ImportError:
        return _NoMonitor()
    # A retried trial continues its run's system/* steps instead of starting them over at 0.
    logging.getLogger("mlflow.system_metrics").setLevel(logging.WARNING)  # "Started monitoring ..." per trial
    monitor = SystemMetricsMonitor(run_id, sampling_interval=interval, resume_logging=resume, tracking_uri=tracking_uri)
    monitor.start()
    return _Monitor(monitor)
