"""Bad input through the real CLI, every subcommand: one line on stderr, exit code 2, no traceback,
nothing left RUNNING, and no file or database created in the working directory."""

from __future__ import annotations

import numpy as np
import pytest

from tests.conftest import free_port, run_cli
from trainables.core.images import encode_png

IMAGE = "scene.png"


def _store(cwd):
    """An existing, empty local tracking store (what `status` of an unknown sweep reads)."""
    from mlflow.tracking import MlflowClient

    MlflowClient(f"sqlite:///{cwd / 'mlruns.db'}").search_experiments()


def _existing_sweep(cwd):
    (cwd / "sweeps" / "taken").mkdir(parents=True)
    (cwd / "sweeps" / "taken" / "scenesweep.json").write_text("{}")


def _image(cwd):
    (cwd / IMAGE).write_bytes(encode_png(np.full((32, 32, 3), 128, np.uint8)))


def _bovw_sweep(cwd):
    """A saved sweep of another family, for --warm-start to refuse."""
    from sweep.spec import SweepSpec
    from trainables.core.data import DataSpec

    SweepSpec(family="bovw", data=DataSpec(), name="old-bovw", storage=str(cwd / "sweeps")).save()


SETUPS = {"store": _store, "existing": _existing_sweep, "image": _image, "bovw": _bovw_sweep}

# (command line, what the one line says, set-up); {port} is a free port, {busy} one that is listening.
CASES = [
    # sweep: flags
    ("sweep --data no/such/folder", "does not exist", None),
    ("sweep --samples 0", "--samples 0 must be at least 1", None),
    ("sweep --epochs -1", "--epochs -1 must be at least 1", None),
    ("sweep --gpus-per-trial -0.5", "--gpus-per-trial -0.5 must be 0 or more", None),
    ("sweep --gpus-per-trial 1.5", "above 1 it must be a whole number", None),
    ("sweep --cpus-per-trial 0", "--cpus-per-trial 0 must be more than 0", None),
    ("sweep --max-concurrent -1", "--max-concurrent -1 must be 0 (no limit) or more", None),
    ("sweep --name bad/name", "is not a valid sweep name", None),
    ("sweep --fix depth=2", "has no parameter 'depth'", None),
    ("sweep --fix input_size", "KEY=VALUE", None),
    ("sweep --trial-timeout 0", "--trial-timeout 0 must be a positive number of seconds", None),
    ("sweep --image-size 4", "--image-size 4 is out of range", None),
    ("sweep --val-fraction 0.95", "--val-fraction 0.95 must be between 0 and 0.9", None),
    ("sweep --per-class 0", "--per-class 0 must be a positive number", None),
    ("sweep --space bovw --cv-folds 1", "--cv-folds 1 must be at least 2", None),
    ("sweep --space tinynet --cv-folds 3", "--cv-folds applies to --space", None),
    ("sweep --space bovw --fix descriptor=surf", "SURF is patented (non-free)", None),
    ("sweep --name taken", "already exists", "existing"),
    ("sweep --samples many", "invalid int value: 'many'", None),
    ("sweep --per-class 500", "--per-class 500 is larger than class", None),
    # sweep: search
    ("sweep --budget 0", "--budget '0' must be more than zero", None),
    ("sweep --budget abc", "--budget 'abc' is not a duration; write it like 90s, 30m or 2h", None),
    ("sweep --budget 10m --samples -1", "--samples -1 must be at least 0", None),
    ("sweep --warm-start nothing-here", "--warm-start nothing-here: no sweep of that name in", None),
    ("sweep --warm-start old-bovw", "--warm-start old-bovw: that sweep searched bovw, not tinynet", "bovw"),
    ("sweep --enqueue missing.json", "--enqueue missing.json: cannot read it", None),
    ("sweep --objective accuracy,flops", "--objective accuracy,flops: no metric 'flops'; choose from", None),
    ("sweep --objective accuracy,params --scheduler asha", "runs under FIFO", None),
    # sweep: the sampler and scheduler tables (sweep/samplers.py, sweep/schedulers.py)
    ("sweep --search bayes", "invalid choice: 'bayes' (choose from 'tpe', 'gp', 'cmaes'", None),
    ("sweep --scheduler pbt", "invalid choice: 'pbt' (choose from 'auto', 'asha', 'hyperband'", None),
    ("sweep --search cmaes", "--search cmaes cannot search categorical parameters (activation,", None),
    ("sweep --search cmaes --objective accuracy,params", "--search cmaes optimises one objective; for", None),
    ("sweep --objective accuracy,params --scheduler hyperband", "runs under FIFO (hyperband stops", None),
    ("sweep --objective accuracy,params --scheduler median", "runs under FIFO (median stops", None),
    ("sweep --space bovw --scheduler asha", "--scheduler asha judges per-epoch results and bovw", None),
    ("sweep --study-storage notaurl", "--study-storage 'notaurl' is not an Optuna RDB URL", None),
    ("sweep --space resnet", "invalid choice: 'resnet'", None),
    # sweep: where it runs and tracks
    ("sweep --tracking-uri http://127.0.0.1:{port}", "cannot reach the MLflow tracking server", None),
    ("sweep --tracking-uri ftp://127.0.0.1/x", "unsupported tracking URI", None),
    ("sweep --tracking-uri postgresql://u:pw@127.0.0.1:{port}/db", "cannot reach the tracking database", None),
    ("sweep --address 10.1.2.3:6379", "cannot write to the local store", None),
    ("sweep --address 127.0.0.1:{port}", "no Ray cluster answers at 127.0.0.1:", None),
    # resume
    ("resume nothing-here", "no sweep named 'nothing-here'", None),
    ("resume", "the following arguments are required: sweep", None),
    # status, best, promote: read-only, never create a store
    ("status nothing-here", "no tracking store at", None),
    ("status nothing-here", "no sweep named 'nothing-here'", "store"),
    ("status nothing-here --tracking-uri sqlite:///elsewhere/mlruns.db", "no tracking store at", None),
    ("best nothing-here", "no tracking store at", None),
    ("best nothing-here", "no sweep named 'nothing-here'", "store"),
    ("best nothing-here --top 0", "--top 0 must be at least 1", None),
    ("promote nothing-here", "no tracking store at", None),
    ("promote nothing-here", "no sweep named 'nothing-here'", "store"),
    # predict, serve, explain: a model that is not there
    ("predict " + IMAGE + " --model no/such/model", "is neither a model URI nor a folder", "image"),
    ("predict " + IMAGE + " --model models:/nothing@champion", "no tracking store at", "image"),
    ("predict " + IMAGE + " --model no/such/model --top 0", "--top 0 must be at least 1", "image"),
    ("predict " + IMAGE, "the following arguments are required: --model", "image"),
    ("serve --model no/such/model --port {port}", "is neither a model URI nor a folder", None),
    ("serve --model models:/nothing@champion --port {port}", "no tracking store at", None),
    ("serve --model no/such/model --port 70000", "--port 70000 is out of range", None),
    ("serve --model no/such/model --port {busy}", "cannot listen on 127.0.0.1:", None),
    ("explain missing.png --model no/such/model --out out.png", "image missing.png does not exist", None),
    ("explain " + IMAGE + " --model no/such/model --out out.txt", "name a .png (or .jpg) file", "image"),
    ("explain " + IMAGE + " --model no/such/model --out nowhere/out.png", "folder nowhere does not exist", "image"),
    ("explain " + IMAGE + " --model no/such/model --out out.png", "is neither a model URI nor a folder", "image"),
    # list, dashboard
    ("list", "no tracking store at", None),
    ("list --tracking-uri sqlite:///elsewhere/mlruns.db", "no tracking store at", None),
    ("dashboard nothing-here", "no sweep named 'nothing-here'", None),
    ("dashboard nothing-here --port 70000", "--port 70000 is out of range", None),
    ("dashboard nothing-here --port {busy}", "cannot listen on 127.0.0.1:", None),
    # ui
    ("ui --port 70000", "--port 70000 is out of range", None),
    ("ui --port 0", "--port 0 is out of range", None),
    ("ui --port {busy}", "cannot listen on 127.0.0.1:", None),
    ("ui --port many", "invalid int value: 'many'", None),
    ("", "the following arguments are required: COMMAND", None),
]


@pytest.mark.parametrize("command, message, setup", CASES, ids=[f"{c[0][:50]}|{c[2] or ''}" for c in CASES])
def test_bad_input_is_one_line_exit_2_and_leaves_nothing(tmp_path, busy_port, command, message, setup):
    if setup:
        SETUPS[setup](tmp_path)
    before = {p.relative_to(tmp_path) for p in tmp_path.rglob("*")}
    args = command.format(port=free_port(), busy=busy_port).split()
    result = run_cli(*args, cwd=tmp_path, timeout=120)
    lines = result.stderr.strip().splitlines()
    assert result.returncode == 2, (result.returncode, result.stderr[-2000:])
    assert len(lines) == 1 and "Traceback" not in result.stderr, result.stderr[-2000:]
    assert lines[0].startswith("scenesweep: error: ") and message in lines[0], lines[0]
    assert {p.relative_to(tmp_path) for p in tmp_path.rglob("*")} == before, "the command created files"
    if setup == "store":
        from mlflow.tracking import MlflowClient

        client = MlflowClient(f"sqlite:///{tmp_path / 'mlruns.db'}")
        experiments = [e.experiment_id for e in client.search_experiments()]
        assert not client.search_runs(experiments, filter_string="attributes.status = 'RUNNING'")


def test_the_table_covers_every_subcommand():
    from orchestrator import build_parser

    commands = set(build_parser()._subparsers._group_actions[0].choices)  # type: ignore[union-attr]
    assert commands <= {c[0].split()[0] for c in CASES if c[0]} and len(CASES) >= 30
