"""Bad input through the real CLI: one line on stderr, exit code 2, no traceback, nothing started."""

import pytest

from tests.conftest import free_port, run_cli


def _bovw_sweep(tmp_path):
    from sweep.spec import SweepSpec
    from trainables.core.data import DataSpec

    SweepSpec(family="bovw", data=DataSpec(), name="old-bovw", storage=str(tmp_path / "sweeps")).save()
    return ["--warm-start", "old-bovw"]


def _existing_sweep(tmp_path):
    (tmp_path / "sweeps" / "taken").mkdir(parents=True)
    (tmp_path / "sweeps" / "taken" / "scenesweep.json").write_text("{}")
    return ["--name", "taken"]


CASES = [
    (["--data", "no/such/folder"], "does not exist"),
    (["--samples", "0"], "--samples 0 must be at least 1"),
    (["--epochs", "-1"], "--epochs -1 must be at least 1"),
    (["--gpus-per-trial", "-0.5"], "--gpus-per-trial -0.5 must be 0 or more"),
    (["--cpus-per-trial", "0"], "--cpus-per-trial 0 must be more than 0"),
    (["--name", "bad name!"], "is not a valid sweep name"),
    (["--fix", "depth=2"], "has no parameter 'depth'"),
    (["--trial-timeout", "0"], "--trial-timeout 0 must be a positive number of seconds"),
    (["--per-class", "500"], "--per-class 500 is larger than class"),
    (["--tracking-uri", "http://127.0.0.1:{port}"], "cannot reach the MLflow tracking server"),
    (["--address", "10.1.2.3:6379"], "cannot write to the local store"),
    ("existing", "already exists"),
    (["--space", "bovw", "--fix", "descriptor=surf"], "SURF is patented (non-free) and is not in the pip builds"),
    (["--space", "bovw", "--cv-folds", "1"], "--cv-folds 1 must be at least 2"),
    (["--budget", "0"], "--budget '0' must be more than zero"),
    (["--budget", "abc"], "--budget 'abc' is not a duration; write it like 90s, 30m or 2h"),
    (["--budget", "10m", "--samples", "-1"], "--samples -1 must be at least 0"),
    (["--warm-start", "nothing-here"], "--warm-start nothing-here: no sweep of that name in"),
    ("bovw", "--warm-start old-bovw: that sweep searched bovw, not tinynet"),
    (["--enqueue", "missing.json"], "--enqueue missing.json: cannot read it"),
    (["--objective", "accuracy,flops"], "--objective accuracy,flops: no metric 'flops'; choose from"),
    (["--objective", "accuracy,params", "--scheduler", "asha"], "runs under FIFO"),
    (["--study-storage", "not a url"], "--study-storage 'not a url' is not an Optuna RDB URL"),
]


@pytest.mark.parametrize("args, message", CASES, ids=[c[1][:30] for c in CASES])
def test_sweep_rejects_bad_input(tmp_path, args, message):
    if args == "existing":
        args = _existing_sweep(tmp_path)
    elif args == "bovw":
        args = _bovw_sweep(tmp_path)
    args = [a.format(port=free_port()) for a in args]
    result = run_cli("sweep", *args, cwd=tmp_path, timeout=120)
    assert result.returncode == 2, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in result.stderr, result.stderr
    assert lines[0].startswith("scenesweep: error: ") and message in lines[0]
    assert not (tmp_path / "mlruns.db").exists() or args[:2] == ["--name", "taken"]


@pytest.mark.parametrize("command", [["status", "nothing-here"], ["best", "nothing-here"], ["resume", "nothing-here"]])
def test_unknown_sweep_is_a_clear_error(tmp_path, command):
    result = run_cli(*command, cwd=tmp_path, timeout=120)
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert "no sweep named 'nothing-here'" in result.stderr


def test_argparse_errors_exit_2(tmp_path):
    result = run_cli("sweep", "--space", "resnet", cwd=tmp_path, timeout=60)
    assert result.returncode == 2 and "invalid choice: 'resnet'" in result.stderr
