"""One docker-compose-like topology for all cluster tests: PostgreSQL, S3 (moto), MLflow with basic
auth on both, and a Ray cluster of a head and a worker node. Started once, stopped by PID."""

from __future__ import annotations

import os
import secrets
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.conftest import missing
from tests.topology import AuthMlflowServer, Postgres, RayCluster, S3Server, Unavailable

SMALL = [
    "--fix",
    "input_size=32",
    "--fix",
    "base_width=8",
    "--fix",
    "blocks=3",
    "--fix",
    "kernel_size=3",
    "--fix",
    "convs_per_block=1",
]


@dataclass
class Topology:
    postgres: Postgres
    s3: S3Server
    mlflow: AuthMlflowServer
    ray: RayCluster

    @property
    def uri(self) -> str:
        return self.mlflow.uri

    @property
    def password(self) -> str:
        return self.mlflow.password

    def cluster_args(self, storage: Path) -> list[str]:
        """Where a sweep runs and tracks, as a user on the cluster passes it."""
        return ["--address", self.ray.address, "--tracking-uri", self.uri, "--storage", str(storage)]


@pytest.fixture(scope="session")
def topology(tmp_path_factory):
    root = tmp_path_factory.mktemp("topology")
    with ExitStack() as stack:
        try:
            postgres = Postgres()
        except Unavailable as exc:
            missing(str(exc))
        stack.callback(postgres.stop)
        s3 = S3Server(_folder(root, "s3"))
        stack.callback(s3.stop)
        mlflow = AuthMlflowServer(
            _folder(root, "mlflow"), postgres=postgres, s3=s3, password=f"scenesweep-{secrets.token_hex(12)}"
        )
        stack.callback(mlflow.stop)
        ray = RayCluster(_folder(root, "ray"), workers=1)
        stack.callback(ray.stop)
        # This process reads MLflow back as the user does: credentials in its environment only.
        saved = {k: os.environ.get(k) for k in mlflow.client_env}
        os.environ.update(mlflow.client_env)
        stack.callback(_restore_env, saved)
        yield Topology(postgres=postgres, s3=s3, mlflow=mlflow, ray=ray)


def _folder(root: Path, name: str) -> Path:
    path = root / name
    path.mkdir()
    return path


def _restore_env(saved: dict) -> None:
    for key, value in saved.items():
        if value is None:
            os.environ.pop(key, None)
        else:
            os.environ[key] = value
