"""docker-compose.yml's topology, started for real on loopback, for the cluster tests and benchmarks.

PostgreSQL (MLflow's backend store), an S3 server (moto stands in for MinIO), an
MLflow server with basic auth on both, and a Ray cluster of a head node plus
worker nodes, each a separate `ray start` with its own ports. Every process is
started here in its own session and stopped by PID (process group and
descendants): other Ray clusters share this machine, so nothing is stopped by
name and `ray stop` is never called.
"""

from __future__ import annotations

import glob
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
from pathlib import Path

from tests.conftest import MlflowServer, free_port, wait_for, wait_for_http

BIN = Path(sys.executable).parent
# Credentials reach Ray workers only through the sweep's runtime_env, never the nodes' environment.
_NOT_FOR_NODES = (
    "MLFLOW_TRACKING_URI",
    "MLFLOW_TRACKING_USERNAME",
    "MLFLOW_TRACKING_PASSWORD",
    "MLFLOW_TRACKING_TOKEN",
    "AWS_ACCESS_KEY_ID",
    "AWS_SECRET_ACCESS_KEY",
    "MLFLOW_S3_ENDPOINT_URL",
    "RAY_ADDRESS",
)


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


def _start(command: list[str], *, log: Path, env: dict | None = None, cwd: Path | None = None) -> subprocess.Popen:
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
        self.port = free_port()
        self.database = database
        self._as = []
        if os.geteuid() == 0:
            shutil.chown(root, "postgres", "postgres")
            self._as = ["runuser", "-u", "postgres", "--"]
        try:
            self._run("initdb", "-D", str(self.data), "-U", "postgres", "-A", "trust", "--no-sync", "-E", "UTF8")
            self._run(
                "pg_ctl",
                "-D",
                str(self.data),
                "-l",
                str(root / "postgres.log"),
                "-w",
                "-t",
                "60",
                "-o",
                f"-p {self.port} -k {root} -c listen_addresses=127.0.0.1 -c fsync=off -c max_connections=200",
                "start",
            )
            self._run("createdb", "-h", "127.0.0.1", "-p", str(self.port), "-U", "postgres", database)
        except BaseException:
            self.stop()
            raise

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
        self.port = free_port()
        self.endpoint = f"http://127.0.0.1:{self.port}"
        self.bucket = bucket
        self.process = _start(
            [str(BIN / "moto_server"), "-H", "127.0.0.1", "-p", str(self.port)], log=root / "moto.log"
        )
        try:
            wait_for_http(f"{self.endpoint}/moto-api/", process=self.process)
            self.client().create_bucket(Bucket=bucket)
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


# --- MLflow with basic auth ---------------------------------------------------------------------


class AuthMlflowServer(MlflowServer):
    """`mlflow server --app-name basic-auth` on PostgreSQL, artifacts proxied to S3, like docker-compose's."""

    user = "admin"

    def __init__(self, root: Path, *, postgres: Postgres, s3: S3Server, password: str):
        self.password = password
        # No secret has a default: the admin password seeds basic_auth.db (in the server's working
        # directory) on first start, the Flask secret signs its sessions.
        env = {**s3.env, "MLFLOW_FLASK_SERVER_SECRET_KEY": os.urandom(16).hex(), "MLFLOW_AUTH_ADMIN_PASSWORD": password}
        super().__init__(
            root,
            backend_uri=postgres.uri,
            artifacts=f"s3://{s3.bucket}/artifacts",
            extra_args=["--app-name", "basic-auth"],
            env=env,
        )

    @property
    def client_env(self) -> dict:
        """What a user exports to talk to this server (S3 is reached only by the server: proxied artifacts)."""
        return {"MLFLOW_TRACKING_USERNAME": self.user, "MLFLOW_TRACKING_PASSWORD": self.password}


# --- Ray ----------------------------------------------------------------------------------------


def ray_token() -> str:
    """The test run's Ray token (tests/conftest.py): every node and driver of the cluster needs it."""
    return os.environ["RAY_AUTH_TOKEN"]


class RayNode:
    """One `ray start --block` node (head or worker); its own ports, stopped or killed by PID."""

    def __init__(
        self,
        root: Path,
        *,
        name: str,
        head_address: str | None,
        cpus: int,
        ip: str,
        temp_dir: Path | None = None,
        object_store_bytes: int = 250 * 2**20,
    ):
        self.name = name
        self.ip = ip
        self.log = root / f"ray-{name}.log"
        command = [
            sys.executable,
            "-m",
            "ray.scripts.scripts",
            "start",
            "--block",
            "--disable-usage-stats",
            f"--num-cpus={cpus}",
            "--num-gpus=0",
            f"--node-ip-address={ip}",
            f"--object-store-memory={object_store_bytes}",
            f"--dashboard-agent-listen-port={free_port()}",
            f"--dashboard-agent-grpc-port={free_port()}",
            f"--runtime-env-agent-port={free_port()}",
            f"--metrics-export-port={free_port()}",
            f"--node-manager-port={free_port()}",
            f"--object-manager-port={free_port()}",
        ]
        if head_address is None:
            self.port = free_port()
            command += ["--head", f"--port={self.port}", f"--temp-dir={temp_dir}", "--include-dashboard=false"]
        else:
            command += [f"--address={head_address}"]
        env = {k: v for k, v in os.environ.items() if k not in _NOT_FOR_NODES}
        env.update(RAY_AUTH_MODE="token", RAY_AUTH_TOKEN=ray_token(), PYTHONUNBUFFERED="1")
        self.process = _start(command, log=self.log, env=env, cwd=root)
        try:
            wait_for(
                lambda: "Ray runtime started" in self.log.read_text(errors="replace"),
                timeout=120,
                what=f"Ray node {name} to start (log {self.log})",
                process=self.process,
            )
        except BaseException:
            self.kill()
            raise

    def kill(self) -> None:
        """The node dies as a machine would: every process of it, at once, with no goodbye."""
        kill_tree(self.process, sig=signal.SIGKILL)

    def stop(self) -> None:
        stop_tree(self.process, grace=5)


class RayCluster:
    """A head node and `workers` worker nodes on this machine, each advertising its own loopback IP."""

    def __init__(self, root: Path, *, workers: int = 1, cpus_per_node: int = 1):
        self.root = root
        self.cpus_per_node = cpus_per_node
        # Ray's unix sockets live under --temp-dir, whose path must stay short (107 bytes).
        self.temp_dir = Path(tempfile.mkdtemp(prefix="ssray-"))
        self.head = RayNode(
            root, name="head", head_address=None, cpus=cpus_per_node, ip="127.0.0.1", temp_dir=self.temp_dir
        )
        self.address = f"127.0.0.1:{self.head.port}"
        self.workers: list[RayNode] = []
        try:
            for _ in range(workers):
                self.add_worker()
        except BaseException:
            self.stop()
            raise

    def add_worker(self) -> RayNode:
        index = len(self.workers) + 1
        node = RayNode(
            self.root,
            name=f"worker{index}",
            head_address=self.address,
            cpus=self.cpus_per_node,
            ip=f"127.0.0.{index + 1}",
        )
        self.workers.append(node)
        self.wait_for_nodes(1 + sum(w.process.poll() is None for w in self.workers))
        return node

    def alive_nodes(self) -> list[dict]:
        """The cluster's live nodes, asked from a separate driver process (this one stays out of Ray)."""
        script = (
            f"import json, ray; ray.init(address={self.address!r}, logging_level='ERROR'); "
            "print(json.dumps([{'ip': n['NodeManagerAddress'], 'cpus': n['Resources'].get('CPU', 0)} "
            "for n in ray.nodes() if n['Alive']]))"
        )
        env = {k: v for k, v in os.environ.items() if k not in _NOT_FOR_NODES}
        result = subprocess.run(
            [sys.executable, "-c", script],
            capture_output=True,
            text=True,
            timeout=120,
            env={**env, "RAY_AUTH_MODE": "token", "RAY_AUTH_TOKEN": ray_token()},
            stdin=subprocess.DEVNULL,
        )
        if result.returncode != 0:
            raise RuntimeError(result.stderr[-2000:])
        return json.loads(result.stdout.strip().splitlines()[-1])

    def wait_for_nodes(self, count: int, timeout: float = 120) -> None:
        wait_for(lambda: len(self.alive_nodes()) == count, timeout=timeout, what=f"{count} live Ray nodes")

    def stop(self) -> None:
        for node in [*self.workers, self.head]:
            node.stop()
        shutil.rmtree(self.temp_dir, ignore_errors=True)
