"""Faults a sweep survives, each for real on the shared cluster topology: a worker node dies, the
orchestrator is SIGKILLed or Ctrl-C'd and resumed, the tracking server is down or restarts, every
trial fails. Tests wait on conditions (MLflow records, processes), never on fixed sleeps."""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

import pytest
from mlflow.tracking import MlflowClient

from tests.cluster.conftest import SMALL
from tests.cluster.test_cluster_sweep import DIVERGES_WITHOUT_LR_FINDER, pins
from tests.conftest import MlflowServer, free_port, run_cli, start_cli, wait_for
from tests.sweep_checks import assert_sweep_recorded, sweep_runs

pytestmark = pytest.mark.slow

EXPERIMENT = "faults"
OUTAGE_SECONDS = 10
QUICK = [*SMALL, "--fix", "lr_finder=false", "--fix", "optimizer=adam", "--fix", "lr=0.003", "--fix", "batchnorm=true"]


def trials(uri: str, sweep: str) -> list[dict]:
    """The sweep's trial runs as they stand: id, status, epochs logged so far (steps of val_accuracy)."""
    client = MlflowClient(uri)
    experiment = client.get_experiment_by_name(EXPERIMENT)
    if experiment is None:
        return []
    runs = client.search_runs(
        [experiment.experiment_id],
        filter_string=f"tags.`scenesweep.sweep` = '{sweep}' AND tags.`scenesweep.role` = 'trial'",
    )
    return [
        {
            "run": run,
            "id": run.data.tags["scenesweep.trial_id"],
            "status": run.info.status,
            "steps": [m.step for m in client.get_metric_history(run.info.run_id, "val_accuracy")],
        }
        for run in runs
    ]


def mid_training(uri: str, sweep: str, *, epochs: int, node: str | None = None) -> bool:
    """A trial (on `node`, if given) is RUNNING with an epoch (and its checkpoint) done and more to go."""
    return any(
        t["status"] == "RUNNING"
        and 1 <= len(t["steps"]) < epochs
        and node in (None, t["run"].data.tags.get("scenesweep.node"))
        for t in trials(uri, sweep)
    )


def sweep_args(topology, storage: Path, name: str, *, samples: int, epochs: int) -> list[str]:
    return [
        "--data",
        "demo",
        "--samples",
        str(samples),
        "--epochs",
        str(epochs),
        "--scheduler",
        "fifo",
        "--name",
        name,
        "--experiment",
        EXPERIMENT,
        "--no-chance-stop",  # every trial runs its epochs: the faults land mid-training, the checks count them
        *topology.cluster_args(storage),
    ]


def finish(process, log: Path, *, timeout: float = 600) -> str:
    try:
        process.wait(timeout=timeout)
    except BaseException:
        process.kill()
        process.wait()
        raise
    return log.read_text(errors="replace")


def assert_one_run_per_trial_and_none_open(uri: str, sweep: str) -> list[dict]:
    recorded = trials(uri, sweep)
    ids = [t["id"] for t in recorded]
    assert len(ids) == len(set(ids)), ids
    assert not [t for t in recorded if t["status"] in ("RUNNING", "SCHEDULED")]
    for t in recorded:
        assert sorted(t["steps"]) == sorted(set(t["steps"])), (t["id"], t["steps"])  # no epoch logged twice
    return recorded


def test_worker_node_killed_mid_trial(topology, tmp_path):
    name, epochs = "fault-node", 6
    log = tmp_path / "sweep.log"
    sweep = start_cli(
        "sweep",
        *sweep_args(topology, tmp_path / "sweeps", name, samples=2, epochs=epochs),
        *QUICK,
        cwd=tmp_path,
        log=log,
        env=topology.mlflow.client_env,
    )
    try:
        # One CPU per node and two trials at once: one of them runs on the worker node.
        worker = topology.ray.workers[-1]
        wait_for(
            lambda: mid_training(topology.uri, name, epochs=epochs, node=worker.ip),
            timeout=300,
            what=f"a trial mid-training on {worker.ip}",
            process=sweep,
            interval=0.2,
        )
        worker.kill()
        output = finish(sweep, log)
    finally:
        topology.ray.add_worker()  # the next tests get a two-node cluster again
    assert sweep.returncode == 0, output[-4000:]
    assert_sweep_recorded(topology.uri, name, experiment=EXPERIMENT, trials=2, epochs=epochs)
    recorded = assert_one_run_per_trial_and_none_open(topology.uri, name)
    assert [t["status"] for t in recorded] == ["FINISHED", "FINISHED"]
    retried = [t["run"].data.tags for t in recorded if t["run"].data.tags["scenesweep.attempt"] != "1"]
    assert len(retried) == 1, [t["run"].data.tags for t in recorded]
    assert 1 <= int(retried[0]["scenesweep.resumed_from_epoch"]) < epochs  # from its checkpoint, not from scratch
    assert retried[0]["scenesweep.node"] != worker.ip  # finished on a live node


def test_orchestrator_sigkilled_then_resumed_keeps_tpe(topology, tmp_path):
    # 6: the two starts run their course together; the proposals after them are early in training
    # beside a finished trial.
    name, samples, epochs = "fault-sigkill", 6, 6
    storage, log = tmp_path / "sweeps", tmp_path / "sweep.log"
    sweep = start_cli(
        "sweep",
        *sweep_args(topology, storage, name, samples=samples, epochs=epochs),
        "--seed",
        "2",
        *QUICK,
        cwd=tmp_path,
        log=log,
        env=topology.mlflow.client_env,
    )

    def one_done_one_running() -> bool:
        # Tune snapshots the searcher on its own schedule: wait until a snapshot holds a finished
        # trial (MLflow can say FINISHED before it does), so the resume has TPE history to keep.
        # The running one well before its last epoch: trials are quick, and one on its last epoch
        # could end on its own before the kill lands.
        recorded = trials(topology.uri, name)
        return saved_finished_trials(storage / name) >= 1 and any(
            t["status"] == "RUNNING" and t["steps"] and max(t["steps"]) <= epochs - 3 for t in recorded
        )

    wait_for(one_done_one_running, timeout=300, what="a finished and a running trial", process=sweep)
    os.kill(sweep.pid, signal.SIGKILL)
    finish(sweep, log)
    assert any(t["status"] == "RUNNING" for t in trials(topology.uri, name))  # left open by the dead driver

    resumed = run_cli(
        "resume", name, *topology.cluster_args(storage), cwd=tmp_path, env=topology.mlflow.client_env, timeout=600
    )
    assert resumed.returncode == 0, resumed.stdout[-4000:] + resumed.stderr[-4000:]
    restored = next(line for line in resumed.stdout.splitlines() if "restored with" in line)
    assert "Optuna TPESampler restored with" in restored and " 0 finished" not in restored, restored
    recorded = assert_one_run_per_trial_and_none_open(topology.uri, name)
    finished = [t for t in recorded if t["status"] == "FINISHED"]
    assert len(finished) == samples and all(sorted(t["steps"]) == list(range(1, epochs + 1)) for t in finished)
    # Runs of trials Tune lost with its snapshot (re-suggested under new ids) are closed, not left RUNNING.
    assert all(t["status"] == "KILLED" for t in recorded if t not in finished)
    _, parent, _ = sweep_runs(topology.uri, name, EXPERIMENT)
    assert parent.info.status == "FINISHED"
    study = restored_study(storage / name)
    assert type(study.sampler).__name__ == "TPESampler"
    # One study across both drivers; a trial Tune lost with its snapshot may have completed in the
    # study before the kill and again under its new id, and none is left RUNNING.
    assert samples <= sum(t.state.name == "COMPLETE" for t in study.trials) <= samples + 1
    assert not [t for t in study.trials if t.state.name == "RUNNING"]


def saved_finished_trials(path: Path) -> int:
    """Finished trials in the sweep's study once Tune has saved state to resume from (0 before)."""
    if not list(path.glob("searcher-state-*.pkl")):
        return 0
    try:
        return sum(t.state.is_finished() for t in restored_study(path).trials)
    except KeyError:  # the study is not created yet (optuna.load_study); any other error is a real one
        return 0


def restored_study(path: Path):
    """The sweep's Optuna study, found the way resume finds it (its saved spec names the storage)."""
    import json

    from sweep.spec import SPEC_FILE, SweepSpec
    from sweep.tuner import restored_study as sweep_study

    return sweep_study(SweepSpec.from_dict(json.loads((path / SPEC_FILE).read_text())))


def test_ctrl_c_kills_running_trials_and_resume_finishes(topology, tmp_path):
    name, epochs = "fault-sigint", 6
    storage, log = tmp_path / "sweeps", tmp_path / "sweep.log"
    sweep = start_cli(
        "sweep",
        *sweep_args(topology, storage, name, samples=2, epochs=epochs),
        *QUICK,
        cwd=tmp_path,
        log=log,
        env=topology.mlflow.client_env,
    )
    wait_for(
        lambda: mid_training(topology.uri, name, epochs=epochs),
        timeout=300,
        what="a trial mid-training",
        process=sweep,
        interval=0.2,
    )
    os.kill(sweep.pid, signal.SIGINT)
    output = finish(sweep, log, timeout=180)
    assert sweep.returncode == 130, output[-4000:]
    assert f"continue with: scenesweep resume {name}\n" in output  # its --storage is the default, ./sweeps
    stopped = [t for t in trials(topology.uri, name) if t["status"] == "KILLED"]
    assert stopped and all(t["run"].data.tags["scenesweep.error"] == "sweep interrupted" for t in stopped)
    assert not [t for t in stopped if "scenesweep.pruned" in t["run"].data.tags]  # interrupted, not pruned
    assert_one_run_per_trial_and_none_open(topology.uri, name)

    resumed = run_cli("resume", name, *topology.cluster_args(storage), cwd=tmp_path, env=topology.mlflow.client_env)
    assert resumed.returncode == 0, resumed.stdout[-4000:] + resumed.stderr[-4000:]
    assert_sweep_recorded(topology.uri, name, experiment=EXPERIMENT, trials=2, epochs=epochs)
    recorded = assert_one_run_per_trial_and_none_open(topology.uri, name)
    assert [t["status"] for t in recorded] == ["FINISHED"] * 2
    assert all("scenesweep.error" not in t["run"].data.tags for t in recorded)


def test_tracking_server_down_at_start_stops_before_any_trial(topology, tmp_path):
    dead = f"http://127.0.0.1:{free_port()}"
    result = run_cli(
        "sweep",
        "--data",
        "demo",
        "--name",
        "no-server",
        "--address",
        topology.ray.address,
        "--tracking-uri",
        dead,
        "--storage",
        str(tmp_path / "sweeps"),
        cwd=tmp_path,
        timeout=120,
    )
    assert result.returncode == 2 and "Traceback" not in result.stderr, result.stderr
    assert result.stderr.startswith(f"scenesweep: error: cannot reach the MLflow tracking server at {dead}")
    assert not (tmp_path / "sweeps").exists()


def test_tracking_server_restarted_mid_sweep(topology, tmp_path):
    """Workers' MLflow calls retry with bounded backoff across the outage; nothing is lost."""
    name, epochs = "fault-outage", 4
    (tmp_path / "mlflow").mkdir()
    server = MlflowServer(tmp_path / "mlflow")  # its own server: the outage must not touch other tests
    log = tmp_path / "sweep.log"
    try:
        args = sweep_args(topology, tmp_path / "sweeps", name, samples=2, epochs=epochs)
        args[args.index("--tracking-uri") + 1] = server.uri
        sweep = start_cli("sweep", *args, *QUICK, cwd=tmp_path, log=log)
        # A trial has logged an epoch and has more to go: the outage comes now, and lasts at least two of
        # its epochs (as measured), so its next epochs are due while the server is down.
        wait_for(
            lambda: mid_training(server.uri, name, epochs=epochs),
            timeout=300,
            what="a trial mid-training",
            process=sweep,
            interval=0.2,
        )
        caught = [t for t in trials(server.uri, name) if t["status"] == "RUNNING" and len(t["steps"]) < epochs]
        epoch_seconds = max(t["run"].data.metrics.get("epoch_seconds", 0.0) for t in caught if t["steps"])
        server.stop()
        time.sleep(max(OUTAGE_SECONDS, 2 * epoch_seconds))  # the outage itself: not waiting on anything
        server.start()
        output = finish(sweep, log)
        assert sweep.returncode == 0, output[-4000:]
        assert_sweep_recorded(server.uri, name, experiment=EXPERIMENT, trials=2, epochs=epochs)
        recorded = assert_one_run_per_trial_and_none_open(server.uri, name)
        assert [t["status"] for t in recorded] == ["FINISHED"] * 2
        # Order, not timing: the trials caught mid-training by the outage ended with every epoch logged.
        steps = {t["id"]: sorted(set(t["steps"])) for t in trials(server.uri, name)}
        assert caught and all(steps[t["id"]][:epochs] == list(range(1, epochs + 1)) for t in caught), steps
    finally:
        server.stop()


def test_every_trial_failing_fails_the_sweep_with_its_errors(topology, tmp_path):
    name = "fault-all-fail"
    result = run_cli(
        "sweep",
        *sweep_args(topology, tmp_path / "sweeps", name, samples=2, epochs=2),
        *pins({**DIVERGES_WITHOUT_LR_FINDER, "lr_finder": False}),
        cwd=tmp_path,
        env=topology.mlflow.client_env,
    )
    assert result.returncode == 1, result.stdout[-3000:] + result.stderr[-3000:]
    assert "scenesweep: error: no trial finished; distinct errors:" in result.stderr
    assert "  2 x training diverged: train loss is nan at epoch 1 (lr 0.3)" in result.stderr
    _, parent, children = sweep_runs(topology.uri, name, EXPERIMENT)
    assert parent.info.status == "FAILED" and [c.info.status for c in children] == ["FAILED", "FAILED"]
