"""The cluster runs with Ray's token authentication: a driver without the cluster's token is
refused, and a sweep pointed at it says so in one line (exit 2) before anything is recorded."""

from __future__ import annotations

import pytest

from tests.conftest import TOKENLESS_CLIENTS, run_cli, try_ray_clients

pytestmark = pytest.mark.slow

WITHOUT_TOKEN = {"RAY_AUTH_MODE": None, "RAY_AUTH_TOKEN": None, "RAY_AUTH_TOKEN_PATH": None}


def test_a_driver_without_the_clusters_token_is_refused(topology):
    for name, (code, out, err) in try_ray_clients(topology.ray.address, TOKENLESS_CLIENTS).items():
        assert code != 0 and "JOINED" not in out, (name, out[-2000:])
        assert "AuthenticationError" in err, (name, err[-2000:])


def test_a_sweep_without_the_token_stops_with_one_line_and_records_nothing(topology, tmp_path):
    result = run_cli(
        *("sweep", "--data", "demo", "--samples", "1", "--name", "tokenless"),
        *topology.cluster_args(tmp_path / "sweeps"),
        cwd=tmp_path,
        env={**topology.mlflow.client_env, **WITHOUT_TOKEN},
        timeout=180,
    )
    lines = result.stderr.strip().splitlines()
    assert result.returncode == 2 and len(lines) == 1 and "Traceback" not in result.stderr, result.stderr[-3000:]
    assert "requires its authentication token" in lines[0] and "RAY_AUTH_TOKEN" in lines[0], lines[0]
    assert sorted(p.name for p in tmp_path.iterdir()) == []
