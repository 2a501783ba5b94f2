"""Ray is checked before anything is written; once the parent run exists, it always ends final."""

from __future__ import annotations

import signal

import pytest

from sweep.preflight import check_resources
from sweep.spec import SweepSpec, UsageError
from tests.conftest import free_port, run_cli
from tests.sweep_checks import sweep_runs
from trainables.core.data import DataSpec


def _nothing_created(cwd) -> None:
    assert sorted(p.name for p in cwd.iterdir()) == [], "the CLI left files behind"


def _one_line(result) -> str:
    lines = result.stderr.strip().splitlines()
    assert result.returncode == 2 and "Traceback" not in result.stderr and len(lines) == 1, result.stderr
    return lines[0]


def test_unreachable_address_fails_fast_and_creates_nothing(tmp_path):
    port = free_port()  # nothing listens there
    # How fast it fails is benchmarks' business; the 120 s limit only keeps a hang from stalling the suite.
    result = run_cli("sweep", "--address", f"127.0.0.1:{port}", "--samples", "1", cwd=tmp_path, timeout=120)
    line = _one_line(result)
    assert f"no Ray cluster answers at 127.0.0.1:{port}" in line and "ray start --head" in line, line
    _nothing_created(tmp_path)


def test_impossible_gpu_request_on_the_embedded_ray(tmp_path):
    # CUDA_VISIBLE_DEVICES="" makes Ray see no GPU on any machine, so the request can never be met.
    result = run_cli(
        "sweep", "--gpus-per-trial", "1", "--samples", "1", cwd=tmp_path, env={"CUDA_VISIBLE_DEVICES": ""}, timeout=180
    )
    line = _one_line(result)
    assert "no node of the embedded Ray can run a trial asking for 1 CPUs and 1 GPUs" in line, line
    assert "--gpus-per-trial" in line
    _nothing_created(tmp_path)


def _spec(**overrides) -> SweepSpec:
    return SweepSpec(family="tinynet", data=DataSpec(), name="s", **overrides)


@pytest.mark.parametrize(
    "request_, nodes, fits",
    [
        ({"cpus_per_trial": 1.0}, [{"CPU": 2.0}], True),
        ({"cpus_per_trial": 4.0}, [{"CPU": 2.0}, {"CPU": 2.0}], False),  # 4 in all, but never on one node
        ({"cpus_per_trial": 1.0, "gpus_per_trial": 1.0}, [{"CPU": 8.0}], False),
        ({"cpus_per_trial": 1.0, "gpus_per_trial": 0.25}, [{"CPU": 8.0}, {"CPU": 1.0, "GPU": 1.0}], True),
        ({"cpus_per_trial": 2.0, "gpus_per_trial": 1.0}, [{"CPU": 8.0}, {"CPU": 1.0, "GPU": 1.0}], False),
        ({"cpus_per_trial": 1.0, "gpus_per_trial": None}, [{"CPU": 1.0}], True),  # None: whatever is there
        ({"cpus_per_trial": 1.0}, [], False),
    ],
)
def test_check_resources(request_, nodes, fits):
    spec = _spec(**request_)
    if fits:
        check_resources(spec, nodes)
    else:
        with pytest.raises(UsageError, match="no node of the embedded Ray can run a trial"):
            check_resources(spec, nodes)


def test_a_failure_after_the_parent_run_exists_leaves_it_failed_with_the_reason(tmp_path):
    # The sweep's state folder cannot be made (a file has its name): a storage failure that happens
    # after the parent run is created.
    (tmp_path / "sweeps").mkdir()
    (tmp_path / "sweeps" / "blocked").write_text("not a folder")
    result = run_cli("sweep", "--name", "blocked", "--samples", "1", "--epochs", "1", cwd=tmp_path, timeout=300)
    assert result.returncode != 0
    _, parent, children = sweep_runs(f"sqlite:///{tmp_path / 'mlruns.db'}", "blocked", "scenesweep-tinynet")
    assert parent.info.status == "FAILED" and not children
    assert parent.data.tags["scenesweep.error"].startswith("FileExistsError"), parent.data.tags


@pytest.mark.slow
def test_the_embedded_ray_refuses_clients_without_the_sweeps_token(tmp_path):
    """The embedded Ray's GCS listens on every interface; a client without the sweep's own token
    (auth off, or a token of its own) is refused while the sweep runs."""
    import psutil

    from tests.conftest import TOKENLESS_CLIENTS, start_cli, try_ray_clients, wait_for

    no_token = {"RAY_AUTH_MODE": None, "RAY_AUTH_TOKEN": None, "RAY_AUTH_TOKEN_PATH": None}
    sweep = start_cli(
        *("sweep", "--data", "demo", "--samples", "1", "--epochs", "30", "--no-chance-stop", "--name", "guarded"),
        cwd=tmp_path,
        log=tmp_path / "sweep.log",
        env=no_token,
    )
    try:
        port = wait_for(
            lambda: _gcs_port(psutil.Process(sweep.pid)), timeout=120, what="the embedded GCS", process=sweep
        )
        for name, (code, out, err) in try_ray_clients(f"127.0.0.1:{port}", TOKENLESS_CLIENTS).items():
            assert code != 0 and "JOINED" not in out, (name, out[-2000:])
            assert "uthenticat" in err, (name, err[-2000:])
        assert sweep.poll() is None, (tmp_path / "sweep.log").read_text()[-3000:]
    finally:
        sweep.send_signal(signal.SIGINT)
        sweep.wait(timeout=120)


def _gcs_port(process) -> int | None:
    """The port the gcs_server that `process` started listens on (None before it does)."""
    import psutil

    for child in process.children(recursive=True):
        try:
            if child.name() == "gcs_server":
                ports = [c.laddr.port for c in child.net_connections("tcp") if c.status == psutil.CONN_LISTEN]
                return ports[0] if ports else None
        except (psutil.NoSuchProcess, psutil.AccessDenied, psutil.ZombieProcess):
            continue
    return None
