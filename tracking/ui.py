"""`scenesweep ui`: the MLflow UI on a local tracking store (a server serves its own)."""

from __future__ import annotations

import os
import signal
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
    # Its own process group, so the server and its workers stop together whatever stops this command:
    # Ctrl-C, or SIGTERM/SIGHUP (docker stop, systemd, a closed terminal), passed on to the group.
    server = subprocess.Popen(command, start_new_session=True)
    received: list[int] = []

    def pass_on(signum, _frame) -> None:
        received.append(signum)
        _signal_group(server, signal.SIGTERM)

    previous = {sig: signal.signal(sig, pass_on) for sig in (signal.SIGTERM, signal.SIGHUP)}
    try:
        code = server.wait()
    except KeyboardInterrupt:
        return 0
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        _stop(server)
    return 128 + received[0] if received else code


def _signal_group(server: subprocess.Popen, sig: int) -> None:
    try:
        os.killpg(server.pid, sig)
    except ProcessLookupError:
        pass


def _stop(server: subprocess.Popen) -> None:
    """SIGTERM to the server's group, SIGKILL if it has not gone after 20 s; reaps it."""
    if server.poll() is None:
        _signal_group(server, signal.SIGTERM)
        try:
            server.wait(timeout=20)
        except subprocess.TimeoutExpired:
            _signal_group(server, signal.SIGKILL)
            server.wait()
