"""Shared test fixtures: real data when present, a real MLflow server, the real CLI."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
# Beside the checkout (/work/main -> /work/shared), or one level up from a worktree (/work/wt/NAME).
MIT_SPLIT_64 = next((p for p in (ROOT.parent / "shared" / "data" / "mit_split_64",
                                 ROOT.parent.parent / "shared" / "data" / "mit_split_64") if p.is_dir()),
                    ROOT.parent / "shared" / "data" / "mit_split_64")

os.environ.setdefault("RAY_AUTH_MODE", "disabled")
os.environ.setdefault("MLFLOW_LOGGING_LEVEL", "WARNING")
os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")


@pytest.fixture(scope="session")
def mit_split_64() -> Path:
    if not (MIT_SPLIT_64 / "train").is_dir():
        pytest.skip(f"real data not present at {MIT_SPLIT_64}")
    return MIT_SPLIT_64


@pytest.fixture(scope="session")
def demo_dataset():
    from trainables.data import DataSpec, load_dataset

    return load_dataset(DataSpec())


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_for_http(url: str, *, timeout: float = 90.0, process: subprocess.Popen | None = None) -> None:
    import requests

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process is not None and process.poll() is not None:
            raise RuntimeError(f"server exited with {process.returncode} before answering {url}")
        try:
            if requests.get(url, timeout=2).status_code < 500:
                return
        except requests.RequestException:
            pass
        time.sleep(0.3)
    raise TimeoutError(f"{url} did not answer within {timeout} s")


class MlflowServer:
    """A real `mlflow server` on loopback with sqlite and proxied artifacts."""

    def __init__(self, root: Path, *, extra_args=(), env=None):
        self.root = root
        self.port = free_port()
        self.uri = f"http://127.0.0.1:{self.port}"
        self.log = open(root / "server.log", "wb")
        command = [
            sys.executable, "-m", "mlflow", "server",
            "--backend-store-uri", f"sqlite:///{root / 'mlflow.db'}",
            "--artifacts-destination", str(root / "artifacts"),
            "--host", "127.0.0.1", "--port", str(self.port), "--workers", "1", *extra_args,
        ]
        server_env = {**os.environ, "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false", **(env or {})}
        self.process = subprocess.Popen(command, stdout=self.log, stderr=subprocess.STDOUT, env=server_env,
                                        cwd=root, start_new_session=True)
        wait_for_http(f"{self.uri}/health", process=self.process)

    def stop(self) -> None:
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait()
        self.log.close()


@pytest.fixture(scope="session")
def mlflow_server(tmp_path_factory):
    server = MlflowServer(tmp_path_factory.mktemp("mlflow-server"))
    yield server
    server.stop()


def run_cli(*args: str, cwd: Path, env: dict | None = None, timeout: float = 900) -> subprocess.CompletedProcess:
    """Run `python orchestrator.py ARGS` the way a user does, from `cwd`, with no standard input."""
    full_env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    for inherited in ("MLFLOW_TRACKING_URI", "RAY_ADDRESS"):  # a test states where it tracks and runs
        full_env.pop(inherited, None)
    full_env.update(env or {})
    return subprocess.run(
        [sys.executable, str(ROOT / "orchestrator.py"), *args],
        cwd=cwd, env=full_env, stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=timeout,
    )
