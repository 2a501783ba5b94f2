"""Shared test fixtures: real data when present, a real MLflow server, the real CLI."""

from __future__ import annotations

import os
import secrets
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from benchmarks.servers import MlflowServer, cli_env, free_port, wait_for, wait_for_http  # noqa: F401

ROOT = Path(__file__).resolve().parents[1]
# The paper's data, 64x64 (see shared/data/mit_split_64/README.md); $MIT_SPLIT_64 points elsewhere.
# Without it: beside the checkout (/work/main -> /work/shared) or beside the worktrees' folder
# (/work/wt/NAME -> /work/shared).
_CANDIDATES = [ROOT.parent / "shared" / "data" / "mit_split_64", ROOT.parents[1] / "shared" / "data" / "mit_split_64"]
MIT_SPLIT_64 = Path(
    os.environ.get("MIT_SPLIT_64") or next((c for c in _CANDIDATES if (c / "train").is_dir()), _CANDIDATES[0])
)

# Every Ray the tests start, embedded or `ray start`, refuses clients without this run's token.
os.environ.setdefault("RAY_AUTH_MODE", "token")
os.environ.setdefault("RAY_AUTH_TOKEN", secrets.token_hex(32))
os.environ.setdefault("MLFLOW_LOGGING_LEVEL", "WARNING")
os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")


# Tiers by place (pyproject.toml's markers): `pytest -m cluster`, `-m browser`, `-m bench`.
_TIER_OF = {"tests/cluster/": "cluster", "tests/test_compose_mlflow.py": "cluster", "tests/test_browser.py": "browser"}
_TIER_OF["tests/test_benchmarks.py"] = "bench"


def pytest_collection_modifyitems(config, items):
    for item in items:
        where = Path(str(item.path)).relative_to(ROOT).as_posix()
        for prefix, tier in _TIER_OF.items():
            if where.startswith(prefix):
                item.add_marker(getattr(pytest.mark, tier))
                item.add_marker(pytest.mark.slow)


def missing(what: str):
    """A test cannot run because `what` is missing here: skip it, except in CI (CI=true), where a
    missing PostgreSQL, docker-compose or dataset fails the run instead of vanishing from it."""
    if os.environ.get("CI", "").lower() in ("1", "true", "yes"):
        pytest.fail(f"{what} (CI=true: what a test needs must be there)", pytrace=False)
    pytest.skip(what)


@pytest.fixture(scope="session")
def mit_split_64() -> Path:
    if not (MIT_SPLIT_64 / "train").is_dir():
        missing(f"real data not present at {MIT_SPLIT_64}")
    return MIT_SPLIT_64


@pytest.fixture(scope="module")
def local_ray():
    """An embedded Ray for the tests of one module (in-process tasks, actors and sweeps)."""
    import ray

    ray.init(address="local", num_cpus=2, include_dashboard=False, log_to_driver=False)
    try:
        yield ray
    finally:
        ray.shutdown()


@pytest.fixture(scope="session")
def demo_dataset():
    from trainables.core.data import DataSpec, load_dataset

    return load_dataset(DataSpec())


@pytest.fixture
def busy_port():
    """A loopback port something is listening on (for commands that must refuse it)."""
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", free_port()))  # one no server of this run is given
        taken.listen()
        yield taken.getsockname()[1]


@pytest.fixture(scope="session")
def mlflow_server(tmp_path_factory):
    server = MlflowServer(tmp_path_factory.mktemp("mlflow-server"))
    yield server
    server.stop()


def run_cli(*args: str, cwd: Path, env: dict | None = None, timeout: float = 900) -> subprocess.CompletedProcess:
    """Run `python orchestrator.py ARGS` the way a user does, from `cwd`, with no standard input."""
    return subprocess.run(
        [sys.executable, str(ROOT / "orchestrator.py"), *args],
        cwd=cwd,
        env=cli_env(env),
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def start_cli(*args: str, cwd: Path, log: Path, env: dict | None = None) -> subprocess.Popen:
    """`python orchestrator.py ARGS` in the background, in its own session (signals reach only it), output to `log`."""
    with open(log, "wb") as handle:
        return subprocess.Popen(
            [sys.executable, str(ROOT / "orchestrator.py"), *args],
            cwd=cwd,
            env=cli_env(env),
            stdin=subprocess.DEVNULL,
            stdout=handle,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )


@pytest.fixture(scope="session")
def inception_weights_file(tmp_path_factory) -> Path:
    """A randomly initialised torchvision inception_v3 state dict (ImageNet head and aux head), as a user
    or torchvision's cache would hold one; ~100 MB, written once per session."""
    import torch
    import torchvision

    path = tmp_path_factory.mktemp("inception-weights") / "inception_v3_random.pth"
    torch.manual_seed(0)
    torch.save(torchvision.models.inception_v3(weights=None, aux_logits=True, init_weights=True).state_dict(), path)
    return path


# A Ray client without the cluster's token (auth off), and one with a token of its own.
TOKENLESS_CLIENTS = {
    "no-auth": {"RAY_AUTH_MODE": "disabled"},
    "wrong-token": {"RAY_AUTH_MODE": "token", "RAY_AUTH_TOKEN": "f" * 64},
}


def try_ray_clients(address: str, clients: dict[str, dict]) -> dict[str, tuple[int, str, str]]:
    """Each client `ray.init(address)` at once (Ray retries a refused token for 20 s): name ->
    (exit code, stdout, stderr). A client that joins prints JOINED."""
    base = cli_env({"RAY_AUTH_MODE": None, "RAY_AUTH_TOKEN": None, "RAY_AUTH_TOKEN_PATH": None})
    script = f"import ray; ray.init(address={address!r}); print('JOINED')"
    running = {
        name: subprocess.Popen(
            [sys.executable, "-c", script],
            env={**base, **env},
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for name, env in clients.items()
    }
    results = {}
    for name, process in running.items():
        out, err = process.communicate(timeout=120)
        results[name] = (process.returncode, out, err)
    return results
