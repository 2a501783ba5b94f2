"""docker-compose.yml as Docker reads it: a user's filled .env, `docker-compose config`'s resolution
of the file, and the ENV every container of the scenesweep image starts with."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import yaml

from tests.conftest import ROOT, missing

COMPOSE = ROOT / "docker-compose.yml"
DOCKERFILE = ROOT / "Dockerfile"
# Every secret .env.example leaves empty for the user to set.
SECRETS = (
    "POSTGRES_PASSWORD",
    "MINIO_ROOT_PASSWORD",
    "MLFLOW_ADMIN_PASSWORD",
    "MLFLOW_FLASK_SERVER_SECRET_KEY",
    "MLFLOW_SWEEP_PASSWORD",
)


def filled_env(path: Path, values: dict[str, str] | None = None) -> Path:
    """.env.example with every secret set (to `values[name]`, else a filler), written to `path`."""
    text = (ROOT / ".env.example").read_text()
    for name in SECRETS:
        assert re.search(rf"^{name}=$", text, re.MULTILINE), f".env.example must leave {name} empty"
        value = (values or {}).get(name, f"filled-{name.lower()}-0123456789")
        text = re.sub(rf"^{name}=$", lambda _, line=f"{name}={value}": line, text, flags=re.MULTILINE)
    path.write_text(text)
    return path


def docker_compose() -> str:
    found = shutil.which("docker-compose")
    if found is None:
        missing("docker-compose is not installed (make test-all installs it with apt-get when run as root)")
    return found


def run_config(env_file: Path | None) -> subprocess.CompletedProcess:
    command = [docker_compose(), "-f", str(COMPOSE)]
    if env_file is not None:
        command += ["--env-file", str(env_file)]
    return subprocess.run(
        [*command, "config"],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=120,
        stdin=subprocess.DEVNULL,
        env={"PATH": "/usr/bin:/bin:/usr/local/bin", "HOME": "/tmp"},
    )


def resolved(env_file: Path) -> dict:
    """The file with .env substituted, anchors merged and paths made absolute, as compose runs it."""
    result = run_config(env_file)
    assert result.returncode == 0, result.stderr
    return yaml.safe_load(result.stdout)


def image_env() -> dict[str, str]:
    """The Dockerfile's ENV settings (NAME=value pairs, continuation lines joined)."""
    text = re.sub(r"\\\n", " ", DOCKERFILE.read_text())
    pairs = [pair for line in re.findall(r"^ENV\s+(.+)$", text, re.MULTILINE) for pair in line.split()]
    return dict(pair.split("=", 1) for pair in pairs)


def argv_of(service: dict) -> list[str]:
    """What a service's container runs, plus its health check: every command line it ever has."""
    parts = []
    for key in ("entrypoint", "command"):
        value = service.get(key, [])
        parts += [value] if isinstance(value, str) else value
    check = service.get("healthcheck", {}).get("test", [])
    parts += [check] if isinstance(check, str) else check
    return [str(part) for part in parts]
