"""docker-compose.yml's topology, started for real on loopback, for the cluster tests.

PostgreSQL (MLflow's backend store), an S3 server (moto stands in for MinIO), an
MLflow server with basic auth on both, and a Ray cluster of a head node plus
worker nodes, each a separate `ray start` with its own ports. Every process is
started here in its own session and stopped by PID (process group and
descendants): other Ray clusters share this machine, so nothing is stopped by
name and `ray stop` is never called.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
from pathlib import Path

from benchmarks.servers import (  # noqa: F401 - the tests import these from here
    BIN,
    MlflowServer,
    Postgres,
    S3Server,
    Unavailable,
    descendants,
    free_port,
    free_ports,
    kill_tree,
    postgres_bin,
    start_on_fresh_ports,
    start_process,
    stop_tree,
    wait_for,
    wait_for_http,
)

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


# Each component of a Ray node listens on a port of its own; a head node adds its GCS port.
NODE_PORTS = (
    "dashboard-agent-listen-port",
    "dashboard-agent-grpc-port",
    "runtime-env-agent-port",
    "metrics-export-port",
    "node-manager-port",
    "object-manager-port",
)


def node_port_flags(*, head: bool) -> list[str]:
    """The `ray start` flags of a node's ports; all are chosen at once (benchmarks.servers.free_ports)."""
    return [*NODE_PORTS, "port"] if head else list(NODE_PORTS)


class RayNode:
    """One `ray start --block` node (head or worker); its own ports, stopped or killed by PID. A node
    that fails to start is started once more on fresh ports; its log is in the error if that fails too."""

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
        self.root, self.head_address, self.temp_dir = root, head_address, temp_dir
        self.common = [
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
        ]
        self.port_flags = node_port_flags(head=head_address is None)
        start_on_fresh_ports(self._start_on, count=len(self.port_flags), what=f"Ray node {name}", log=self.log)

    def _start_on(self, ports: list[int]) -> None:
        named = dict(zip(self.port_flags, ports, strict=True))
        command = [*self.common, *(f"--{flag}={named[flag]}" for flag in NODE_PORTS)]
        if self.head_address is None:
            self.port = named["port"]
            command += ["--head", f"--port={self.port}", f"--temp-dir={self.temp_dir}", "--include-dashboard=false"]
        else:
            command += [f"--address={self.head_address}"]
        env = {k: v for k, v in os.environ.items() if k not in _NOT_FOR_NODES}
        env.update(RAY_AUTH_MODE="token", RAY_AUTH_TOKEN=ray_token(), PYTHONUNBUFFERED="1")
        started_at = self.log.stat().st_size if self.log.exists() else 0  # a retry appends to the log
        self.process = start_process(command, log=self.log, env=env, cwd=self.root)
        try:
            wait_for(
                lambda: "Ray runtime started" in self.log.read_text(errors="replace")[started_at:],
                timeout=120,
                what=f"Ray node {self.name} to start (log {self.log})",
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
