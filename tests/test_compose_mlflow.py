"""docker-compose.yml's mlflow service, started outside Docker as compose would start it: its entrypoint,
command and environment from `docker-compose config` with a filled .env, on top of the image's ENV, as
uid:gid 1000:1000, its working directory an empty auth directory like the fresh `mlflow-auth` volume.
PostgreSQL (with password authentication) and moto's S3 stand in for the postgres and minio services;
only their addresses, the port and /app (this checkout) are translated. The mlflow-users set-up then
runs the same way, twice, and the account it creates does what a sweep does."""

from __future__ import annotations

import os
import secrets
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path
from urllib.parse import quote

import pytest
import requests

from tests.compose import filled_env, image_env, resolved
from tests.conftest import ROOT, free_port, missing, wait_for_http
from tests.topology import Postgres, S3Server, Unavailable, descendants, stop_tree

pytestmark = pytest.mark.slow

# What a user's .env may hold: URL-reserved characters in the PostgreSQL password (the entrypoint must
# percent-encode it), URL-safe MinIO keys (.env.example asks for them), 12+ characters for MLflow users.
PASSWORDS = {
    "POSTGRES_PASSWORD": f"pg/p@ss:w%rd+{secrets.token_hex(4)}",
    "MINIO_ROOT_PASSWORD": secrets.token_urlsafe(18),
    "MLFLOW_ADMIN_PASSWORD": f"admin-{secrets.token_urlsafe(12)}",
    "MLFLOW_FLASK_SERVER_SECRET_KEY": secrets.token_hex(16),
    "MLFLOW_SWEEP_PASSWORD": f"sweep-{secrets.token_urlsafe(12)}",
}


def as_user(uid: int, gid: int) -> list[str]:
    """The prefix that runs a command as uid:gid with no supplementary groups. DAC_READ_SEARCH lets it
    read and enter directories only root may (this interpreter can live under /root); it grants no
    write, so writing the auth directory is checked exactly as in the container."""
    if os.geteuid() == uid:
        return []
    if os.geteuid() != 0 or shutil.which("setpriv") is None:
        missing(f"running the mlflow service as uid {uid} needs root and setpriv (util-linux)")
    caps = ["--inh-caps=+dac_read_search", "--ambient-caps=+dac_read_search"]
    return ["setpriv", f"--reuid={uid}", f"--regid={gid}", "--clear-groups", *caps]


def owned_dir(path: Path, uid: int, gid: int, mode: int = 0o700) -> Path:
    path.mkdir(mode=mode, exist_ok=True)
    os.chown(path, uid, gid)
    return path


def postgres_service(service: dict) -> Postgres:
    """A PostgreSQL cluster set up as the postgres image sets up its own from the service's environment:
    POSTGRES_USER with POSTGRES_PASSWORD, owning POSTGRES_DB; that user must log in with its password."""
    import psycopg
    from psycopg import sql

    env = service["environment"]
    try:
        postgres = Postgres(database=env["POSTGRES_DB"])
    except Unavailable as exc:
        missing(str(exc))
    try:
        with psycopg.connect(postgres.uri, autocommit=True) as connection:
            role = sql.Identifier(env["POSTGRES_USER"])
            password = sql.Literal(env["POSTGRES_PASSWORD"])
            connection.execute(sql.SQL("CREATE ROLE {} LOGIN PASSWORD {}").format(role, password))
            connection.execute(
                sql.SQL("ALTER DATABASE {} OWNER TO {}").format(sql.Identifier(env["POSTGRES_DB"]), role)
            )
            hba = postgres.data / "pg_hba.conf"  # the first matching line wins: password, not trust, for this user
            hba.write_text(f"host all {env['POSTGRES_USER']} 127.0.0.1/32 scram-sha-256\n{hba.read_text()}")
            connection.execute("SELECT pg_reload_conf()")
    except BaseException:
        postgres.stop()
        raise
    return postgres


class OnThisHost:
    """Translates a container's argv and environment to this host: service addresses to the stand-ins,
    /app to this checkout, `python` to this interpreter, the server's bind address and port. Each rule
    must be used, so a renamed address in docker-compose.yml fails here instead of passing unchecked."""

    def __init__(self, rules: dict[str, str]):
        self.rules = rules
        self.used: set[str] = set()

    def __call__(self, text: str) -> str:
        if text == "python":
            return sys.executable
        for old, new in self.rules.items():
            if old in text:
                self.used.add(old)
                text = text.replace(old, new)
        return text

    def command(self, service: dict) -> list[str]:
        return [self(word) for word in [*service.get("entrypoint", []), *service.get("command", [])]]

    def environment(self, service: dict, home: Path) -> dict[str, str]:
        """A container's environment: the image's ENV, then the service's; PATH and HOME as Docker sets them."""
        path = f"{Path(sys.executable).parent}:/usr/local/bin:/usr/bin:/bin"
        env = {"PATH": path, "HOME": str(home), "LANG": "C.UTF-8", **image_env(), **service.get("environment", {})}
        return {name: self(str(value)) for name, value in env.items()}


def run_set_up(service: dict, host: OnThisHost, *, cwd: Path, user: list[str]) -> subprocess.CompletedProcess:
    return subprocess.run(
        [*user, *host.command(service)],
        env=host.environment(service, cwd),
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=120,
        stdin=subprocess.DEVNULL,
    )


def command_lines(pid: int) -> Iterator[str]:
    for each in [pid, *descendants(pid)]:
        try:
            yield Path(f"/proc/{each}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue  # exited meanwhile


def test_the_mlflow_service_starts_on_an_empty_auth_volume_and_sets_up_the_sweep_account(tmp_path, monkeypatch):
    config = resolved(filled_env(tmp_path / ".env", PASSWORDS))["services"]
    mlflow, users = config["mlflow"], config["mlflow-users"]
    uid, gid = (int(part) for part in mlflow["user"].split(":"))
    user = as_user(uid, gid)
    with ExitStack() as stack:
        # Under the system temp dir, owned by the server's user: pytest's own folders are private to root.
        root = owned_dir(Path(tempfile.mkdtemp(prefix="scenesweep-compose-")), uid, gid)
        stack.callback(shutil.rmtree, root, ignore_errors=True)
        home = owned_dir(root / "home", uid, gid)
        auth = owned_dir(home / "auth", uid, gid)  # the image's directory, copied into the fresh volume
        postgres = postgres_service(config["postgres"])
        stack.callback(postgres.stop)
        (root / "s3").mkdir()
        s3 = S3Server(root / "s3", bucket="mlflow")  # the bucket: create-bucket's work
        stack.callback(s3.stop)
        port = free_port()
        uri = f"http://127.0.0.1:{port}"
        host = OnThisHost(
            {
                "postgres:5432": f"127.0.0.1:{postgres.port}",
                "http://minio:9000": s3.endpoint,
                "http://mlflow:5000": uri,
                "/app/": f"{ROOT}/",
                "--host=0.0.0.0": "--host=127.0.0.1",
                "--port=5000": f"--port={port}",
            }
        )
        log = root / "mlflow.log"
        with open(log, "wb") as handle:
            server = subprocess.Popen(
                [*user, *host.command(mlflow)],
                env=host.environment(mlflow, home),
                cwd=auth,
                stdout=handle,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
            )
        stack.callback(stop_tree, server)
        try:
            wait_for_http(f"{uri}/health", timeout=120, process=server)
        except (RuntimeError, TimeoutError) as exc:
            pytest.fail(f"{exc}; its log:\n{log.read_text(errors='replace')[-4000:]}")

        database = auth / "basic_auth.db"
        assert database.is_file() and database.stat().st_uid == uid
        secret_values = [*PASSWORDS.values(), quote(PASSWORDS["POSTGRES_PASSWORD"], safe="")]
        for line in command_lines(server.pid):  # every process of the server: what `ps` shows anyone
            assert not any(value in line for value in secret_values), line
        assert not any(value in log.read_text(errors="replace") for value in secret_values)

        admin = ("admin", PASSWORDS["MLFLOW_ADMIN_PASSWORD"])
        current = f"{uri}/api/2.0/mlflow/users/current"
        assert requests.get(current, timeout=30).status_code == 401
        assert requests.get(current, auth=admin, timeout=30).json()["user"]["is_admin"] is True

        first = run_set_up(users, host, cwd=home, user=user)
        assert first.returncode == 0, first.stdout + first.stderr
        assert "'scenesweep' created; not an admin" in first.stdout
        again = run_set_up(users, host, cwd=home, user=user)  # a second `docker compose up`
        assert again.returncode == 0, again.stdout + again.stderr
        assert "already there" in again.stdout
        assert host.used == set(host.rules), f"rules never applied: {set(host.rules) - host.used}"

        sweep_env = config["orchestrator"]["environment"]
        sweep = (sweep_env["MLFLOW_TRACKING_USERNAME"], sweep_env["MLFLOW_TRACKING_PASSWORD"])
        assert sweep == ("scenesweep", PASSWORDS["MLFLOW_SWEEP_PASSWORD"])
        denied = requests.post(
            f"{uri}/api/2.0/mlflow/users/create", json={"username": "x", "password": "y" * 12}, auth=sweep, timeout=30
        )
        assert denied.status_code == 403  # not an admin
        check_a_sweep_can_track(uri, sweep, s3, monkeypatch, tmp_path)


def check_a_sweep_can_track(uri: str, credentials: tuple[str, str], s3: S3Server, monkeypatch, tmp_path) -> None:
    """As the orchestrator's account: a new experiment, a run with a metric and a proxied artifact (it
    lands in S3), a registered model; what a sweep and `promote` do, with no grant beyond being the creator."""
    from mlflow import MlflowClient

    monkeypatch.setenv("MLFLOW_TRACKING_USERNAME", credentials[0])
    monkeypatch.setenv("MLFLOW_TRACKING_PASSWORD", credentials[1])
    client = MlflowClient(tracking_uri=uri, registry_uri=uri)
    experiment = client.create_experiment("scenesweep-compose-check")
    run = client.create_run(experiment)
    client.log_metric(run.info.run_id, "val_accuracy", 0.5, step=1)
    (tmp_path / "note.txt").write_text("proxied to S3")
    client.log_artifact(run.info.run_id, str(tmp_path / "note.txt"))
    client.set_terminated(run.info.run_id)
    client.create_registered_model("scenesweep-compose-check")
    assert client.get_metric_history(run.info.run_id, "val_accuracy")[0].value == 0.5
    assert any(key.endswith(f"{run.info.run_id}/artifacts/note.txt") for key in s3.keys("artifacts/"))
