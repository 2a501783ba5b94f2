"""docker-compose.yml, read as Docker would: validated by `docker-compose config` and checked for the
properties a shared GPU cluster needs. No Docker engine runs here, so nothing is started here
(tests/test_compose_mlflow.py starts the mlflow service's command outside Docker)."""

from __future__ import annotations

import importlib.util
import re

import pytest
import yaml
from sqlalchemy.engine import make_url

from tests.compose import COMPOSE, DOCKERFILE, SECRETS, argv_of, filled_env, image_env, resolved, run_config
from tests.conftest import ROOT

# Values only a secret would have: long random-looking tokens or anything named like a secret.
SECRETISH = re.compile(r"(password|secret|token|key)", re.IGNORECASE)
RAY_SERVICES = ("ray-head", "ray-worker", "orchestrator")
ONE_SHOTS = ("create-bucket", "mlflow-users")


def load_script(name: str):
    """A docker/ script as a module (docker/ is not a package: the image runs the files)."""
    spec = importlib.util.spec_from_file_location(name, ROOT / "docker" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


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
        "mlflow-users",
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
    assert config["services"]["orchestrator"]["environment"]["MLFLOW_TRACKING_PASSWORD"] == (
        "filled-mlflow_sweep_password-0123456789"
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


def test_no_secret_on_any_command_line(compose, env_file):
    """Commands, entrypoints and health checks are world-readable (`ps`, `docker inspect`): no secret,
    no reference to one, goes there; secrets reach processes through the environment or files."""
    for name, service in compose["services"].items():
        for word in argv_of(service):
            assert not re.search(r"\$\$?\{?\w*(PASSWORD|SECRET|TOKEN|KEY)", word), (name, word)
            assert "://" not in word or "@" not in word, (name, word)  # no user:password@ URL either
    values = [f"filled-{name.lower()}-0123456789" for name in SECRETS]
    for name, service in resolved(env_file)["services"].items():
        for word in argv_of(service):
            assert not any(value in word for value in values), (name, word)


def test_the_mlflow_server_gets_its_postgres_uri_from_the_environment(compose):
    mlflow = compose["services"]["mlflow"]
    assert mlflow["entrypoint"] == ["python", "/app/docker/mlflow_server.py"]
    assert "--artifacts-destination=s3://mlflow/artifacts" in mlflow["command"]
    assert "--app-name=basic-auth" in mlflow["command"]
    assert not any(word.startswith("--backend-store-uri") for word in mlflow["command"])
    postgres = compose["services"]["postgres"]["environment"]
    env = mlflow["environment"]
    assert (env["POSTGRES_USER"], env["POSTGRES_DB"]) == (postgres["POSTGRES_USER"], postgres["POSTGRES_DB"])
    assert env["POSTGRES_PASSWORD"] == postgres["POSTGRES_PASSWORD"] and env["POSTGRES_ADDRESS"] == "postgres:5432"
    assert env["MLFLOW_S3_ENDPOINT_URL"] == "http://minio:9000"


@pytest.mark.parametrize("password", ["plain-password-0123", "p@ss/w:rd%2F+?#&=", "ünïcødé passwörd"])
def test_the_backend_store_uri_carries_any_password(password):
    server = load_script("mlflow_server")
    env = {
        "POSTGRES_USER": "mlflow",
        "POSTGRES_PASSWORD": password,
        "POSTGRES_ADDRESS": "db:5432",
        "POSTGRES_DB": "mlflow",
    }
    url = make_url(server.backend_store_uri(env))
    assert (url.username, url.password, url.host, url.port, url.database) == ("mlflow", password, "db", 5432, "mlflow")


def test_the_mlflow_entrypoint_names_a_missing_variable(monkeypatch):
    server = load_script("mlflow_server")
    monkeypatch.setattr("sys.argv", ["mlflow_server.py"])
    for name in server.PARTS:
        monkeypatch.setenv(name, "x")
    monkeypatch.delenv("POSTGRES_ADDRESS")
    with pytest.raises(SystemExit, match="set POSTGRES_ADDRESS in the service's environment"):
        server.main()


def test_the_auth_directory_exists_in_the_image_owned_by_the_server_user(compose):
    """A fresh named volume takes the owner and mode of the image's directory it is mounted on: the
    directory must exist in the image, owned by the uid the server runs as, or basic_auth.db can't be written."""
    mlflow = compose["services"]["mlflow"]
    auth = mlflow["working_dir"]
    assert f"mlflow-auth:{auth}" in mlflow["volumes"] and mlflow["user"] == "1000:1000"
    dockerfile = DOCKERFILE.read_text()
    assert "useradd --create-home --uid 1000 scenesweep" in dockerfile
    assert f"install -d -o scenesweep -g scenesweep -m 700 {auth}" in dockerfile
    assert dockerfile.index("useradd") < dockerfile.index(f"-m 700 {auth}") < dockerfile.index("USER scenesweep")


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


def test_the_orchestrator_logs_in_as_the_non_admin_account_the_set_up_creates(compose):
    users = compose["services"]["mlflow-users"]
    orchestrator = compose["services"]["orchestrator"]
    assert users["entrypoint"] == ["python", "/app/docker/mlflow_users.py"]
    assert users["environment"]["MLFLOW_TRACKING_USERNAME"] == "admin"
    assert users["environment"]["MLFLOW_TRACKING_URI"] == orchestrator["environment"]["MLFLOW_TRACKING_URI"]
    sweep_user = users["environment"]["MLFLOW_SWEEP_USERNAME"]
    assert sweep_user != "admin" and orchestrator["environment"]["MLFLOW_TRACKING_USERNAME"] == sweep_user
    password = "${MLFLOW_SWEEP_PASSWORD:?set MLFLOW_SWEEP_PASSWORD in .env (12+ characters)}"
    assert (
        users["environment"]["MLFLOW_SWEEP_PASSWORD"]
        == orchestrator["environment"]["MLFLOW_TRACKING_PASSWORD"]
        == password
    )
    assert "MLFLOW_ADMIN_PASSWORD" not in str(orchestrator)


class FakeAuthClient:
    """AuthServiceClient's user calls, recorded; `existing` users make create_user fail as MLflow does."""

    def __init__(self, existing=(), error="RESOURCE_ALREADY_EXISTS"):
        self.existing, self.error, self.calls = set(existing), error, []

    def create_user(self, username, password):
        from mlflow.exceptions import RestException

        self.calls.append(("create", username, password))
        if username in self.existing:
            raise RestException({"error_code": self.error, "message": "no"})

    def update_user_password(self, username, password):
        self.calls.append(("password", username, password))

    def update_user_admin(self, username, is_admin):
        self.calls.append(("admin", username, is_admin))


@pytest.mark.parametrize(
    ("existing", "outcome", "calls"),
    [
        ((), "created", [("create", "sweeper", "pw")]),
        (
            ("sweeper",),
            "already there: password set from .env",
            [("create", "sweeper", "pw"), ("password", "sweeper", "pw"), ("admin", "sweeper", False)],
        ),
    ],
)
def test_the_set_up_creates_the_account_or_resets_it(existing, outcome, calls):
    client = FakeAuthClient(existing)
    assert load_script("mlflow_users").ensure_user(client, "sweeper", "pw") == outcome
    assert client.calls == calls


def test_the_set_up_stops_on_any_other_error():
    from mlflow.exceptions import RestException

    with pytest.raises(RestException):
        load_script("mlflow_users").ensure_user(FakeAuthClient({"sweeper"}, error="PERMISSION_DENIED"), "sweeper", "pw")


def test_the_set_up_refuses_to_demote_the_admin(monkeypatch):
    for name, value in {
        "MLFLOW_TRACKING_URI": "http://127.0.0.1:1",
        "MLFLOW_TRACKING_USERNAME": "admin",
        "MLFLOW_TRACKING_PASSWORD": "x" * 12,
        "MLFLOW_SWEEP_USERNAME": "admin",
        "MLFLOW_SWEEP_PASSWORD": "y" * 12,
    }.items():
        monkeypatch.setenv(name, value)
    with pytest.raises(SystemExit, match="must not be the admin"):
        load_script("mlflow_users").main()


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
            expected = "service_completed_successfully" if dependency in ONE_SHOTS else "service_healthy"
            assert condition == {"condition": expected}, (name, dependency)
    for name in ONE_SHOTS:
        assert services[name]["restart"] == "no", name
    assert set(services["mlflow"]["depends_on"]) == {"postgres", "create-bucket"}
    assert set(services["mlflow-users"]["depends_on"]) == {"mlflow"}
    assert set(services["orchestrator"]["depends_on"]) == {"ray-head", "mlflow", "mlflow-users"}


def test_the_bucket_is_created_with_keys_from_the_environment(compose):
    bucket = compose["services"]["create-bucket"]
    assert bucket["entrypoint"] == ["mc"] and bucket["command"] == ["mb", "--ignore-existing", "store/mlflow"]
    assert bucket["environment"]["MC_HOST_store"] == (
        "http://${MINIO_ROOT_USER:?set MINIO_ROOT_USER in .env}:"
        "${MINIO_ROOT_PASSWORD:?set MINIO_ROOT_PASSWORD in .env}@minio:9000"
    )


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
