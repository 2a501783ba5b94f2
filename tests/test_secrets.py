"""No secret at rest: a password given in a URI, on the command line or in the environment, appears in
nothing a sweep stores: MLflow's runs, params, tags, descriptions and artifacts, Tune's pickles and
JSON, the study, scenesweep.json, the logs."""

from __future__ import annotations

import secrets
from pathlib import Path

import pytest

from benchmarks.servers import MlflowServer
from tests.conftest import run_cli
from tests.sweep_checks import sweep_runs

pytestmark = pytest.mark.slow

SMALL = ["--fix", "input_size=32", "--fix", "base_width=8", "--fix", "blocks=3", "--fix", "convs_per_block=1"]


def files_holding(root: Path, secret: bytes) -> list[str]:
    return sorted(
        str(path.relative_to(root)) for path in root.rglob("*") if path.is_file() and secret in path.read_bytes()
    )


@pytest.mark.parametrize("given_in", ["flag", "environment"])
def test_a_password_in_the_tracking_uri_is_stored_nowhere(tmp_path, given_in):
    password = f"pw-{secrets.token_hex(8)}"
    (tmp_path / "server").mkdir()
    server = MlflowServer(tmp_path / "server")  # no auth app: it ignores the credentials, the client sends them
    try:
        uri = server.uri.replace("http://", f"http://alice:{password}@")
        work = tmp_path / "work"
        work.mkdir()
        args = ["--data", "demo", "--samples", "1", "--epochs", "1", "--name", "secret", *SMALL]
        if given_in == "flag":
            result = run_cli("sweep", "--tracking-uri", uri, *args, cwd=work)
        else:
            result = run_cli("sweep", *args, cwd=work, env={"MLFLOW_TRACKING_URI": uri})
        assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
        assert password not in result.stdout + result.stderr
        _, parent, children = sweep_runs(server.uri, "secret", "scenesweep-tinynet")
        assert len(children) == 1
        if given_in == "flag":  # the command line is recorded, masked
            assert "alice:***@" in parent.data.tags["mlflow.note.content"]
    finally:
        server.stop()
    # Every byte the sweep and the server wrote: the sweep folder (Tune's state, the study, the spec),
    # the server's database and artifact store, and its log.
    assert files_holding(tmp_path, password.encode()) == []
