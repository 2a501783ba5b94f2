"""Credentials in a tracking URI: masked in every message, never stored, sent from the environment."""

from __future__ import annotations

import json
import os

import pytest

from orchestrator import build_parser
from sweep.spec import SPEC_FILE, spec_from_args
from tests.conftest import free_port, run_cli
from tracking.uris import masked, without_credentials


@pytest.mark.parametrize(
    "uri, shown, stored",
    [
        ("http://alice:s3cret@host:5000/x", "http://alice:***@host:5000/x", "http://host:5000/x"),
        ("https://alice@host", "https://alice@host", "https://host"),
        (
            "postgresql://alice:p%40ss@db:5432/mlflow",
            "postgresql://alice:***@db:5432/mlflow",
            "postgresql://db:5432/mlflow",
        ),
        ("http://127.0.0.1:5000", "http://127.0.0.1:5000", "http://127.0.0.1:5000"),
        ("sqlite:////tmp/a@b/mlruns.db", "sqlite:////tmp/a@b/mlruns.db", "sqlite:////tmp/a@b/mlruns.db"),
    ],
)
def test_masked_and_without_credentials(uri, shown, stored):
    assert masked(uri) == shown
    assert without_credentials(uri) == stored


def test_a_sweep_stores_no_credentials_and_sends_them_from_the_environment(tmp_path, monkeypatch):
    monkeypatch.setenv("MLFLOW_TRACKING_USERNAME", "nobody")  # restored after the test
    monkeypatch.setenv("MLFLOW_TRACKING_PASSWORD", "nothing")
    args = build_parser().parse_args(
        ["sweep", "--name", "s", "--storage", str(tmp_path), "--tracking-uri", "http://alice:s3cret@127.0.0.1:5000"]
    )
    spec = spec_from_args(args)
    assert spec.tracking_uri == "http://127.0.0.1:5000"

    assert (os.environ["MLFLOW_TRACKING_USERNAME"], os.environ["MLFLOW_TRACKING_PASSWORD"]) == ("alice", "s3cret")
    spec.save()
    saved = (tmp_path / "s" / SPEC_FILE).read_text()
    assert "s3cret" not in saved and json.loads(saved)["tracking_uri"] == "http://127.0.0.1:5000"
    assert "s3cret" not in json.dumps(spec.tracking_params())


@pytest.mark.parametrize(
    "command",
    [
        ["status", "s", "--tracking-uri", "http://alice:s3cret@127.0.0.1:{port}"],
        ["best", "s", "--tracking-uri", "postgresql://alice:s3cret@127.0.0.1:{port}/mlflow"],
        ["sweep", "--tracking-uri", "http://alice:s3cret@127.0.0.1:{port}"],
        ["ui", "--tracking-uri", "mysql://alice:s3cret@127.0.0.1:{port}/mlflow", "--port", "70000"],
    ],
)
def test_errors_never_show_a_password(tmp_path, command):
    port = free_port()
    result = run_cli(*[part.format(port=port) for part in command], cwd=tmp_path, timeout=120)
    assert result.returncode == 2, result.stderr
    assert "s3cret" not in result.stdout + result.stderr
    assert "127.0.0.1" in result.stderr or "--port" in result.stderr


def test_the_ui_hint_for_a_server_hides_the_password(tmp_path):
    result = run_cli("ui", "--tracking-uri", "http://alice:s3cret@127.0.0.1:5000", cwd=tmp_path, timeout=120)
    assert result.returncode == 0 and "s3cret" not in result.stdout + result.stderr
    assert "open http://127.0.0.1:5000" in result.stdout


@pytest.mark.parametrize("before", ["set in this process", "from the environment", "unset"])
def test_fluent_store_points_mlflow_at_the_store_for_the_block_then_back_as_it_was(before, tmp_path, monkeypatch):
    import mlflow

    from tracking.uris import fluent_store

    elsewhere, store = f"sqlite:///{tmp_path / 'elsewhere.db'}", f"sqlite:///{tmp_path / 'store.db'}"
    monkeypatch.chdir(tmp_path)  # MLflow's own default resolves here
    for name in ("MLFLOW_TRACKING_URI", "MLFLOW_REGISTRY_URI"):
        monkeypatch.delenv(name, raising=False)
    mlflow.set_tracking_uri(None)
    mlflow.set_registry_uri(None)
    if before == "set in this process":
        mlflow.set_tracking_uri(elsewhere)
    elif before == "from the environment":
        monkeypatch.setenv("MLFLOW_TRACKING_URI", elsewhere)
    pointed = (mlflow.get_tracking_uri(), mlflow.get_registry_uri())
    environment = {name: os.environ.get(name) for name in ("MLFLOW_TRACKING_URI", "MLFLOW_REGISTRY_URI")}
    try:
        with fluent_store(store):
            assert (mlflow.get_tracking_uri(), mlflow.get_registry_uri()) == (store, store)
        assert (mlflow.get_tracking_uri(), mlflow.get_registry_uri()) == pointed
        assert {name: os.environ.get(name) for name in environment} == environment
        if before != "set in this process":  # nothing pinned: MLflow still follows the environment
            monkeypatch.setenv("MLFLOW_TRACKING_URI", store)
            assert mlflow.get_tracking_uri() == store
    finally:
        mlflow.set_tracking_uri(None)
