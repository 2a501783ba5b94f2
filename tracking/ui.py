"""`scenesweep ui`: the MLflow UI on a local tracking store (a server serves its own)."""

from __future__ import annotations

import subprocess
import sys

from tracking.uris import without_credentials

DEFAULT_PORT = 5000
# MLflow 3.17's UI opens in its GenAI mode unless the URL (or the browser's last choice) says otherwise;
# the experiment's mlflow.experimentKind tag alone does not switch it.
MODEL_TRAINING_VIEW = "workflowType=machine_learning"


def run_page(base: str, target) -> str:
    """The sweep's parent run in the UI's model-training view (a tracking.runs.SweepTarget)."""
    return f"{experiment_page(base, target.experiment_id)}/runs/{target.parent_run_id}?{MODEL_TRAINING_VIEW}"


def experiment_page(base: str, experiment_id: str) -> str:
    return f"{without_credentials(base).rstrip('/')}/#/experiments/{experiment_id}"


def run_ui(uri: str, *, host: str, port: int) -> int:
    from tracking.uris import is_local_store, masked

    if not is_local_store(uri):
        print(f"The tracking server serves its own UI: open {masked(uri)}")
        return 0
    command = [
        sys.executable,
        "-m",
        "mlflow",
        "ui",
        "--backend-store-uri",
        uri,
        "--host",
        host,
        "--port",
        str(port),
        "--workers",
        "1",
    ]
    print(f"MLflow UI for {masked(uri)} at http://{host}:{port} (Ctrl-C to stop)", flush=True)
    try:
        return subprocess.call(command)
    except KeyboardInterrupt:
        return 0
