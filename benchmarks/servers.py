"""Local servers started as processes on loopback: an MLflow tracking server, PostgreSQL (MLflow's
backend store), moto's S3 server (standing in for MinIO), and the process-tree helpers that stop
them by PID. The tests (tests/conftest.py, tests/topology.py) and the benchmarks that need a real
tracking stack (load_tracking, scale) start the same ones from here.

Every process is started in its own session and stopped by PID (process group and descendants):
other servers and Ray clusters share the machine, so nothing is stopped by name.
"""

from __future__ import annotations

import glob
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

BIN = Path(sys.executable).parent
T = TypeVar("T")


# Every port this process has handed out: the OS gives a just-released port again readily, so two
# servers (or two components of one Ray node) that each asked for "a free port" could get the same one.
_HANDED_OUT: set[int] = set()
_HANDING_OUT = threading.Lock()


def free_ports(count: int) -> list[int]:
    """`count` distinct free loopback ports that this process has never handed out before. All are
    held bound until every one is chosen, so the OS cannot return one of them twice."""
    with _HANDING_OUT:
        held: list[socket.socket] = []
        ports: list[int] = []
        try:
            while len(ports) < count:
                sock = socket.socket()
                held.append(sock)  # one handed out before stays bound too, so the OS moves on
                sock.bind(("127.0.0.1", 0))
                if (port := sock.getsockname()[1]) not in _HANDED_OUT:
                    ports.append(port)
        finally:
            for sock in held:
                sock.close()
        _HANDED_OUT.update(ports)
        return ports


def free_port() -> int:
    return free_ports(1)[0]


def log_tail(path: Path, chars: int = 3000) -> str:
    try:
        return path.read_text(errors="replace")[-chars:]
    except OSError as exc:
        return f"(no log: {exc})"


def start_on_fresh_ports(start: Callable[[list[int]], T], *, count: int, what: str, log: Path) -> T:
    """`start(ports)` with `count` fresh ports; if it fails, once more on fresh ones (another process
    may take a port between its choosing and the server binding it). `start` stops what it started
    before it raises. A second failure says so, with the end of `log`."""
    try:
        return start(free_ports(count))
    except Exception:  # noqa: BLE001 - whatever stopped it, the retry says
        pass
    try:
        return start(free_ports(count))
    except Exception as exc:
        raise RuntimeError(
            f"{what} failed to start twice, on fresh ports each time: {exc}\n--- {log} ---\n{log_tail(log)}"
        ) from exc


def wait_for(condition, *, timeout: float, what: str, process: subprocess.Popen | None = None, interval: float = 0.3):
    """Poll `condition()` until it is truthy (returned); fail with `what` after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process is not None and process.poll() is not None:
            raise RuntimeError(f"process exited with {process.returncode} while waiting for {what}")
        value = condition()
        if value:
            return value
        time.sleep(interval)
    raise TimeoutError(f"waited {timeout:.0f} s for {what}")


def wait_for_http(url: str, *, timeout: float = 90.0, process: subprocess.Popen | None = None) -> None:
    import requests

    def answers() -> bool:
        try:
            return requests.get(url, timeout=2).status_code < 500
        except requests.RequestException:
            return False

    wait_for(answers, timeout=timeout, what=f"{url} to answer", process=process)


class MlflowServer:
    """A real `mlflow server` on loopback: sqlite and proxied artifacts on disk unless told otherwise.

    `stop()` then `start()` restarts it on the same port and stores (a tracking outage).
    """

    def __init__(
        self, root: Path, *, extra_args=(), env=None, backend_uri: str | None = None, artifacts: str | None = None
    ):
        self.root = root
        self.backend_uri = backend_uri or f"sqlite:///{root / 'mlflow.db'}"
        self.artifacts = artifacts or str(root / "artifacts")
        self.extra_args = list(extra_args)
        self.env = {**os.environ, "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false", **(env or {})}
        self.process: subprocess.Popen | None = None
        self.log = root / "server.log"
        start_on_fresh_ports(self._start_on, count=1, what="the MLflow server", log=self.log)

    def _start_on(self, ports: list[int]) -> None:
        (self.port,) = ports
        self.uri = f"http://127.0.0.1:{self.port}"
        self.command = [
            sys.executable,
            "-m",
            "mlflow",
            "server",
            "--backend-store-uri",
            self.backend_uri,
            "--artifacts-destination",
            self.artifacts,
            "--host",
            "127.0.0.1",
            "--port",
            str(self.port),
            "--workers",
            "1",
            *self.extra_args,
        ]
        self.start()

    def start(self) -> None:
        """Start it on its port (again, after `stop()`: the same port and stores)."""
        with open(self.log, "ab") as log:
            self.process = subprocess.Popen(
                self.command,
                stdout=log,
                stderr=subprocess.STDOUT,
                env=self.env,
                cwd=self.root,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
            )
        try:
            wait_for_http(f"{self.uri}/health", process=self.process)
        except BaseException:
            self.stop()
            raise

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait()


def cli_env(env: dict | None = None) -> dict:
    """This process's environment as a user's shell would hand it to the CLI, plus `env` (None unsets)."""
    full_env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    for inherited in ("MLFLOW_TRACKING_URI", "RAY_ADDRESS"):  # a test states where it tracks and runs
        full_env.pop(inherited, None)
    full_env.update(env or {})
    return {key: value for key, value in full_env.items() if value is not None}


class Unavailable(RuntimeError):
    """A part of the topology cannot run on this machine (the message says what is missing)."""


# --- processes ---------------------------------------------------------------------------------


def descendants(pid: int) -> list[int]:
    """PIDs of every process below `pid` (read from /proc, so it sees processes that changed group)."""
    children: dict[int, list[int]] = {}
    for stat in glob.glob("/proc/[0-9]*/stat"):
        try:
            text = Path(stat).read_text()
        except OSError:
            continue
        fields = text[text.rfind(")") + 2 :].split()
        children.setdefault(int(fields[1]), []).append(int(stat.split("/")[2]))
    found, stack = [], [pid]
    while stack:
        for child in children.get(stack.pop(), []):
            found.append(child)
            stack.append(child)
    return found


def kill_tree(process: subprocess.Popen, *, sig: int = signal.SIGKILL) -> None:
    """Kill a process started with start_new_session=True, its group and all its descendants."""
    pids = descendants(process.pid)
    try:
        os.killpg(process.pid, sig)
    except ProcessLookupError:
        pass
    for pid in [process.pid, *pids]:
        try:
            os.kill(pid, sig)
        except ProcessLookupError:
            pass
    try:
        process.wait(timeout=30)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()


def stop_tree(process: subprocess.Popen, *, grace: float = 15.0) -> None:
    """SIGTERM, then SIGKILL whatever (group or descendants) is left after `grace` seconds."""
    pids = descendants(process.pid)
    if process.poll() is None:
        try:
            os.killpg(process.pid, signal.SIGTERM)
        except ProcessLookupError:
            pass
        try:
            process.wait(timeout=grace)
        except subprocess.TimeoutExpired:
            pass
    for pid in [process.pid, *pids]:  # orphans that ignored SIGTERM (Ray's log monitor, agents)
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    try:
        os.killpg(process.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    process.wait()


def start_process(
    command: list[str], *, log: Path, env: dict | None = None, cwd: Path | None = None
) -> subprocess.Popen:
    with open(log, "ab") as handle:
        return subprocess.Popen(
            command,
            stdout=handle,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            env=env if env is not None else dict(os.environ),
            cwd=cwd,
            start_new_session=True,
        )


# --- PostgreSQL ---------------------------------------------------------------------------------


def postgres_bin() -> Path:
    candidates = [os.environ.get("POSTGRES_BIN", ""), *sorted(glob.glob("/usr/lib/postgresql/*/bin"), reverse=True)]
    for candidate in candidates:
        if candidate and (Path(candidate) / "initdb").exists():
            return Path(candidate)
    raise Unavailable("PostgreSQL server binaries not found (apt-get install postgresql, or set POSTGRES_BIN)")


class Postgres:
    """A throwaway PostgreSQL cluster in `root` (initdb refuses root, so it runs as user postgres)."""

    def __init__(self, *, database: str = "mlflow"):
        self.bin = postgres_bin()
        # Its own folder under the system temp dir: pytest's are private to root, and the server runs as postgres.
        self.root = root = Path(tempfile.mkdtemp(prefix="scenesweep-postgres-"))
        self.data = root / "data"
        self.port = 0
        self.database = database
        self._as = []
        if os.geteuid() == 0:
            shutil.chown(root, "postgres", "postgres")
            self._as = ["runuser", "-u", "postgres", "--"]
        try:
            self._run("initdb", "-D", str(self.data), "-U", "postgres", "-A", "trust", "--no-sync", "-E", "UTF8")
            start_on_fresh_ports(self._start_on, count=1, what="PostgreSQL", log=root / "postgres.log")
            self._run("createdb", "-h", "127.0.0.1", "-p", str(self.port), "-U", "postgres", database)
        except BaseException:
            self.stop()
            raise

    def _start_on(self, ports: list[int]) -> None:
        (self.port,) = ports
        self._run(
            "pg_ctl",
            "-D",
            str(self.data),
            "-l",
            str(self.root / "postgres.log"),
            "-w",
            "-t",
            "60",
            "-o",
            f"-p {self.port} -k {self.root} -c listen_addresses=127.0.0.1 -c fsync=off -c max_connections=200",
            "start",
        )

    @property
    def uri(self) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/{self.database}"

    def _run(self, tool: str, *args: str) -> None:
        result = subprocess.run(
            [*self._as, str(self.bin / tool), *args],
            capture_output=True,
            text=True,
            stdin=subprocess.DEVNULL,
            timeout=120,
        )
        if result.returncode != 0:
            raise RuntimeError(f"{tool} failed: {result.stdout[-2000:]}{result.stderr[-2000:]}")

    def stop(self) -> None:
        if (self.data / "postmaster.pid").exists():
            self._run("pg_ctl", "-D", str(self.data), "-m", "immediate", "-w", "stop")
        shutil.rmtree(self.root, ignore_errors=True)


# --- S3 -----------------------------------------------------------------------------------------


class S3Server:
    """moto's S3 server on loopback, standing in for MinIO; one bucket created up front."""

    credentials = {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": "us-east-1",
    }

    def __init__(self, root: Path, *, bucket: str = "mlflow"):
        self.bucket = bucket
        self.log = root / "moto.log"
        start_on_fresh_ports(self._start_on, count=1, what="the S3 server (moto)", log=self.log)

    def _start_on(self, ports: list[int]) -> None:
        (self.port,) = ports
        self.endpoint = f"http://127.0.0.1:{self.port}"
        self.process = start_process([str(BIN / "moto_server"), "-H", "127.0.0.1", "-p", str(self.port)], log=self.log)
        try:
            wait_for_http(f"{self.endpoint}/moto-api/", process=self.process)
            self.client().create_bucket(Bucket=self.bucket)
        except BaseException:
            self.stop()
            raise

    @property
    def env(self) -> dict:
        return {**self.credentials, "MLFLOW_S3_ENDPOINT_URL": self.endpoint}

    def client(self):
        import boto3

        return boto3.client(
            "s3",
            endpoint_url=self.endpoint,
            region_name="us-east-1",
            aws_access_key_id="testing",
            aws_secret_access_key="testing",
        )

    def keys(self, prefix: str = "") -> list[str]:
        paginator = self.client().get_paginator("list_objects_v2")
        return [
            item["Key"]
            for page in paginator.paginate(Bucket=self.bucket, Prefix=prefix)
            for item in page.get("Contents", [])
        ]

    def read(self, key: str) -> bytes:
        return self.client().get_object(Bucket=self.bucket, Key=key)["Body"].read()

    def stop(self) -> None:
        stop_tree(self.process)
