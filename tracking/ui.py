"""`scenesweep ui`: the MLflow UI on a local tracking store (a server serves its own)."""

from __future__ import annotations

import subprocess
import sys


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
