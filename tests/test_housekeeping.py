"""`list`, `status`, `best` beside a sweep's storage, pasteable hints and read-only commands, through the real
CLI on a real sqlite store holding sweeps recorded the way a sweep records them (no Ray: the runs are the data)."""

from __future__ import annotations

import json
import time

import pytest
from mlflow.tracking import MlflowClient

from tests.conftest import run_cli
from tracking.live import TAG_HEARTBEAT
from tracking.runs import TAG_PARENT, TAG_ROLE, TAG_TRIAL_ID, get_or_create_experiment, log_params, start_sweep_run


def record_sweep(uri: str, name: str, *, values: list[float], status: str = "FINISHED", heartbeat: float | None = None):
    """A parent run with finished trial runs under it, as `scenesweep sweep` leaves them."""
    client = MlflowClient(uri)
    experiment_id = get_or_create_experiment(client, "scenesweep-tinynet", uri, family="tinynet")
    target = start_sweep_run(
        client, uri=uri, experiment_id=experiment_id, sweep=name, family="tinynet", search="tpe", params={}
    )
    for index, value in enumerate(values):
        tags = {TAG_PARENT: target.parent_run_id, TAG_TRIAL_ID: f"t{index}", TAG_ROLE: "trial"}
        run = client.create_run(experiment_id, run_name=f"tinynet_t{index}", tags=tags)
        log_params(client, run.info.run_id, {"lr": 0.01 * (index + 1), "blocks": 2 + index})
        client.log_metric(run.info.run_id, "val_accuracy", value)
        client.log_metric(run.info.run_id, "test_accuracy", value - 0.05)
        client.set_terminated(run.info.run_id)
    if values:
        client.log_metric(target.parent_run_id, "best_val_accuracy", max(values), step=len(values))
    if heartbeat is not None:
        client.set_tag(target.parent_run_id, TAG_HEARTBEAT, str(int(heartbeat)))
    if status != "RUNNING":
        client.set_terminated(target.parent_run_id, status=status)
    return target


@pytest.fixture(scope="module")
def workdir(tmp_path_factory):
    """A folder where sweeps ran against a non-default store: ./sweeps/NAME/scenesweep.json names it."""
    root = tmp_path_factory.mktemp("beside-storage")
    uri = f"sqlite:///{root / 'elsewhere' / 'store.db'}"
    (root / "elsewhere").mkdir()
    record_sweep(uri, "s1", values=[0.5, 0.75])
    record_sweep(uri, "crashed", values=[0.6], status="RUNNING", heartbeat=time.time() - 3600)
    record_sweep(uri, "going", values=[], status="RUNNING", heartbeat=time.time())
    for name in ("s1", "crashed", "going"):
        (root / "sweeps" / name).mkdir(parents=True)
        (root / "sweeps" / name / "scenesweep.json").write_text(json.dumps({"tracking_uri": uri}))
    return root, uri


def test_status_and_best_beside_the_storage_use_the_sweeps_own_store(workdir):
    root, uri = workdir
    status = run_cli("status", "s1", cwd=root, timeout=120)
    assert status.returncode == 0, status.stderr
    assert "2 trials" in status.stdout and "best: t1 val_accuracy 0.7500" in status.stdout
    best = run_cli("best", "s1", cwd=root, timeout=120)
    assert best.returncode == 0, best.stderr
    assert f"promote it: scenesweep promote s1 --tracking-uri {uri}" in best.stdout  # works when pasted anywhere
    assert not (root / "mlruns.db").exists()


def test_list_shows_every_sweep_with_its_state_and_best(workdir):
    root, uri = workdir
    listed = run_cli("list", "--tracking-uri", uri, cwd=root, timeout=120)
    assert listed.returncode == 0, listed.stderr
    lines = listed.stdout.splitlines()
    assert lines[0].split() == ["sweep", "family", "state", "trials", "best", "started"]
    rows = {line.split()[0]: line for line in lines[1:]}
    assert set(rows) == {"s1", "crashed", "going"}
    assert "FINISHED" in rows["s1"] and "val_accuracy 0.7500" in rows["s1"]
    assert "DRIVER GONE" in rows["crashed"] and "RUNNING" in rows["going"]


def test_status_tells_a_sweep_whose_driver_is_gone_from_a_running_one(workdir):
    root, _ = workdir
    crashed = run_cli("status", "crashed", cwd=root, timeout=120)
    assert "RUNNING but its driver is gone: no heartbeat for 1h0" in crashed.stdout
    assert "; continue it with: scenesweep resume crashed" in crashed.stdout
    going = run_cli("status", "going", cwd=root, timeout=120)
    assert going.returncode == 0 and "RUNNING)" in going.stdout and "driver is gone" not in going.stdout


@pytest.mark.parametrize(
    "args",
    [
        ["list"],
        ["status", "nope"],
        ["best", "nope"],
        ["predict", "x.jpg", "--model", "models:/scenesweep-tinynet@champion"],
    ],
    ids=lambda args: args[0],
)
def test_read_only_commands_never_create_a_tracking_store(tmp_path, args):
    result = run_cli(*args, cwd=tmp_path, timeout=120)
    assert result.returncode == 2, result.stdout + result.stderr
    assert "no tracking store at" in result.stderr and "Traceback" not in result.stderr
    assert list(tmp_path.iterdir()) == []  # no mlruns.db, no mlartifacts


def test_a_missing_sweep_points_at_list_with_the_store_it_searched(workdir):
    root, uri = workdir
    result = run_cli("status", "nope", "--tracking-uri", uri, cwd=root, timeout=120)
    assert result.returncode == 2
    assert f"list the sweeps there with: scenesweep list --tracking-uri {uri}" in result.stderr
