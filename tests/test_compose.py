"""docker-compose.yml, read as Docker would: validated by `docker-compose config` and checked for the
properties a shared GPU cluster needs. No Docker engine runs here, so nothing is started."""

from __future__ import annotations

import re

import pytest
import yaml

from tests.compose import COMPOSE, DOCKERFILE, SECRETS, filled_env, image_env, resolved, run_config
from tests.conftest import ROOT

# Values only a secret would have: long random-looking tokens or anything named like a secret.
SECRETISH = re.compile(r"(password|secret|token|key)", re.IGNORECASE)
RAY_SERVICES = ("ray-head", "ray-worker", "orchestrator")


@pytest.fixture(scope="module")
def compose() -> dict:
    return yaml.safe_load(COMPOSE.read_text())


@pytest.fixture(scope="module")
def env_file(tmp_path_factory):
    return filled_env(tmp_path_factory.mktemp("compose") / ".env")


def host_of(port: str) -> str:
    """The host address of a 'HOST:PUBLISHED:TARGET' port, HOST possibly a ${VAR:-default}."""
    match = re.match(r"^(\$\{[^}]+\}|[^:]+):[^:]+:[^:]+$", port)
    assert match, f"port {port!r} does not name the address it binds"
    return match.group(1)


def test_docker_compose_config_accepts_the_file(env_file):
    config = resolved(env_file)
    assert set(config["services"]) == {
        "postgres",
        "minio",
        "create-bucket",
        "mlflow",
        "ray-head",
        "ray-worker",
        "orchestrator",
    }
    for service in config["services"].values():
        for port in service.get("ports", []):  # resolved from BIND_ADDRESS's default
            host = port.get("host_ip") if isinstance(port, dict) else host_of(port)
            assert host == "127.0.0.1", port
    assert config["services"]["mlflow"]["environment"]["MLFLOW_AUTH_ADMIN_PASSWORD"] == (
        "filled-mlflow_admin_password-0123456789"  # secrets come from the env file
    )
    assert config["secrets"]["ray_token"]["file"] == str(ROOT / "secrets" / "ray_token")


@pytest.mark.parametrize("name", SECRETS)
def test_a_missing_secret_stops_compose_with_its_name(env_file, tmp_path, name):
    partial = tmp_path / ".env"
    partial.write_text(re.sub(rf"^{name}=.*$", f"{name}=", env_file.read_text(), flags=re.MULTILINE))
    result = run_config(partial)
    assert result.returncode != 0
    assert f"set {name} in .env" in result.stderr


def test_every_image_is_pinned_to_a_release(compose):
    version = re.search(r'^version = "(.+)"$', (ROOT / "pyproject.toml").read_text(), re.MULTILINE).group(1)
    for name, service in compose["services"].items():
        repository, _, tag = service["image"].partition(":")
        assert tag and tag != "latest", (name, service["image"])
        if "build" in service:  # the image built here carries the package's version
            assert (repository, tag) == ("scenesweep", version), name
        else:  # an exact release (16.4, RELEASE.2024-12-18T13-15-44Z), never a moving major like 16
            assert re.fullmatch(r"\d+\.\d+(\.\d+)?|RELEASE\.\d{4}-\d\d-\d\dT\d\d-\d\d-\d\dZ", tag), (name, tag)
    base = re.search(r"^FROM (\S+)$", DOCKERFILE.read_text(), re.MULTILINE).group(1)
    assert re.fullmatch(r"python:3\.11\.\d+-slim-\w+", base), base  # patch release and Debian release


def test_ray_nodes_and_the_driver_use_token_auth_from_a_secret_file(compose):
    assert image_env()["RAY_AUTH_MODE"] == "token"  # the image's default; no service may turn it off
    for name, service in compose["services"].items():
        env = service.get("environment", {})
        assert "RAY_AUTH_MODE" not in env and "RAY_AUTH_TOKEN" not in env, name
    for name in RAY_SERVICES:
        service = compose["services"][name]
        assert service["secrets"] == ["ray_token"], name
        assert service["environment"]["RAY_AUTH_TOKEN_PATH"] == "/run/secrets/ray_token", name
    assert compose["secrets"] == {"ray_token": {"file": "./secrets/ray_token"}}
    assert "/secrets/" in (ROOT / ".gitignore").read_text().splitlines()
    assert 'secrets.token_hex(32))" > secrets/ray_token' in (ROOT / ".env.example").read_text()


def test_every_published_port_is_bound_to_localhost_by_default(compose):
    published = [(name, port) for name, service in compose["services"].items() for port in service.get("ports", [])]
    assert {name for name, _ in published} >= {"mlflow", "ray-head"}
    for name, port in published:
        host = host_of(str(port))
        assert host in ("127.0.0.1", "${BIND_ADDRESS:-127.0.0.1}"), (name, port)
    assert re.search(r"^BIND_ADDRESS=127\.0\.0\.1$", (ROOT / ".env.example").read_text(), re.MULTILINE)


def test_services_have_health_checks_and_wait_for_healthy_dependencies(compose):
    services = compose["services"]
    for name in ("postgres", "minio", "mlflow", "ray-head", "ray-worker"):
        assert services[name].get("healthcheck", {}).get("test"), name
    for name, service in services.items():
        for dependency, condition in service.get("depends_on", {}).items():
            expected = "service_completed_successfully" if dependency == "create-bucket" else "service_healthy"
            assert condition == {"condition": expected}, (name, dependency)
    assert set(services["mlflow"]["depends_on"]) == {"postgres", "create-bucket"}
    assert set(services["orchestrator"]["depends_on"]) == {"ray-head", "mlflow"}


def test_mlflow_uses_postgres_s3_and_basic_auth(compose):
    mlflow = compose["services"]["mlflow"]
    command = " ".join(mlflow["command"])
    assert '--backend-store-uri "postgresql://' in command and "@postgres:5432/mlflow" in command
    assert "--artifacts-destination s3://mlflow/artifacts" in command and "--app-name basic-auth" in command
    assert mlflow["environment"]["MLFLOW_S3_ENDPOINT_URL"] == "http://minio:9000"
    assert "mc mb --ignore-existing store/mlflow" in compose["services"]["create-bucket"]["command"][0]


def test_ray_workers_reserve_a_gpu_scale_and_share_memory(compose):
    worker = compose["services"]["ray-worker"]
    devices = worker["deploy"]["resources"]["reservations"]["devices"]
    assert devices == [{"driver": "nvidia", "count": 1, "capabilities": ["gpu"]}]
    assert "container_name" not in worker and "ports" not in worker  # --scale ray-worker=N needs neither
    assert "--address=ray-head:6379" in worker["command"]
    head = compose["services"]["ray-head"]
    assert "--ray-client-server-port=10001" in head["command"] and "--dashboard-port=8265" in head["command"]
    for name in RAY_SERVICES:
        assert compose["services"][name]["shm_size"] == "${RAY_SHM_SIZE:-8gb}", name
        assert "sweeps:/work/sweeps" in compose["services"][name]["volumes"], name  # one checkpoint path on every node


def test_orchestrator_runs_the_cli_on_the_cluster(compose):
    orchestrator = compose["services"]["orchestrator"]
    assert orchestrator["profiles"] == ["cli"] and orchestrator["init"] is True
    assert orchestrator["entrypoint"] == ["/app/docker/orchestrator.sh"]
    script = (ROOT / "docker" / "orchestrator.sh").read_text()
    assert 'exec python /app/orchestrator.py "$@"' in script
    env = orchestrator["environment"]
    assert env["RAY_ADDRESS"] == "ray-head:6379" and env["MLFLOW_TRACKING_URI"] == "http://mlflow:5000"


def test_no_literal_secrets(compose):
    """Every secret-looking value is a ${VAR:?...} reference to .env, with no default."""

    def walk(node, path=""):
        if isinstance(node, dict):
            for key, value in node.items():
                yield from walk(value, f"{path}.{key}")
        elif isinstance(node, list):
            for index, value in enumerate(node):
                yield from walk(value, f"{path}[{index}]")
        else:
            yield path, str(node)

    for path, value in walk(compose):
        key = re.sub(r"\[\d+\]$", "", path.rsplit(".", 1)[-1])
        # `secrets:` lists names of secret files, RAY_AUTH_TOKEN_PATH where one is mounted: no values
        if SECRETISH.search(key) and key not in ("secrets", "RAY_AUTH_TOKEN_PATH"):
            assert re.fullmatch(r"\$\{[A-Z_]+:\?[^}]+\}", value), (path, value)
        for reference in re.findall(r"\$\{([A-Z_]*(?:PASSWORD|SECRET|KEY)[A-Z_]*)([^}]*)\}", value):
            assert reference[1].startswith(":?"), (path, value)  # required, never defaulted
    for name in SECRETS:
        assert f"${{{name}:?" in COMPOSE.read_text(), name
    assert not [name for name in image_env() if SECRETISH.search(name)]  # the image sets no secret
    assert not re.search(r"^ARG", DOCKERFILE.read_text(), re.MULTILINE)  # nor takes one at build time


def test_the_image_installs_cuda_torch_ray_and_the_server_extras():
    dockerfile = DOCKERFILE.read_text()
    assert 'pip install ".[server]" "ray[default,client]>=2.60,<2.61"' in dockerfile
    assert "torch==" in (ROOT / "pyproject.toml").read_text()  # PyPI's Linux torch wheels are the CUDA build
