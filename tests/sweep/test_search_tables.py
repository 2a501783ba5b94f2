"""Every sampler and every scheduler of the tables runs a demo sweep end to end: one embedded Ray for
the module, each sweep through the function the CLI calls (`sweep.run.run_sweep` on a SweepSpec
from the CLI's own parser), checked in MLflow and in the sweep's Optuna study. One real CLI
subprocess proves the command-line path for a non-default sampler and scheduler."""

from __future__ import annotations

import optuna
import pytest
from optuna.trial import TrialState

from sweep.samplers import SAMPLERS
from sweep.schedulers import SCHEDULERS
from tests.conftest import run_cli
from tests.sweep_checks import assert_sweep_recorded, sweep_runs

pytestmark = pytest.mark.slow

TRIALS, EPOCHS = 3, 2
QUICK = ["--data", "demo", "--fix", "input_size=32"]
# CMA-ES searches numbers only: every categorical parameter pinned, and the LR finder off and Adam,
# so lr and momentum are asked in every trial or never (no conditional parameters left).
NUMERIC_TINYNET = [
    f"--fix={pin}"
    for pin in (
        "base_width=16",
        "kernel_size=3",
        "activation=relu",
        "init=kaiming",
        "batchnorm=true",
        "residual=false",
        "depthwise=false",
        "optimizer=adam",
        "lr_finder=false",
        "batch_size=32",
        "one_cycle=true",
        "aug_hflip=true",
        "aug_crop=false",
        "aug_rotate=false",
        "aug_color=false",
        "aug_shift=false",
    )
]
# (--search, --scheduler, extra flags, the sampler the parent run records, trials, epochs)
CASES = [
    ("tpe", "fifo", [], "tpe", TRIALS, EPOCHS),
    ("gp", "fifo", [], "gp", TRIALS, EPOCHS),
    ("cmaes", "fifo", NUMERIC_TINYNET, "cmaes", TRIALS, EPOCHS),
    ("random", "fifo", [], "random", TRIALS, EPOCHS),
    ("qmc", "fifo", [], "qmc", TRIALS, EPOCHS),
    ("nsga2", "fifo", ["--objective", "accuracy,params"], "nsga2", TRIALS, EPOCHS),
    ("auto", "fifo", [], "tpe", TRIALS, EPOCHS),  # TinyNet's space is conditional (lr without the LR finder)
    ("random", "asha", [], "random", TRIALS, EPOCHS),
    # 4 epochs, 5 trials: a second bracket that starts at epoch 1, so HyperBand pauses trials at a
    # rung and resumes them from their checkpoints (2 epochs would give one bracket that never pauses).
    ("random", "hyperband", [], "random", 5, 4),
    ("random", "median", [], "random", TRIALS, EPOCHS),
]


def test_the_cases_cover_both_tables():
    assert {c[0] for c in CASES} == {*SAMPLERS, "auto"}
    assert {c[1] for c in CASES} == set(SCHEDULERS)


def sweep_in_process(tmp_path, name: str, *flags: str):
    """What `scenesweep sweep FLAGS` runs, in this process (the module's Ray): the spec and exit code."""
    from orchestrator import build_parser
    from sweep.run import start_sweep
    from sweep.spec import spec_from_args

    uri = f"sqlite:///{tmp_path / 'mlruns.db'}"
    argv = ["sweep", *flags, "--name", name, "--storage", str(tmp_path / "sweeps"), "--tracking-uri", uri]
    argv += ["--cache-dir", str(tmp_path / "cache")]
    spec = spec_from_args(build_parser().parse_args(argv))
    return spec, start_sweep(spec, output="quiet")


@pytest.mark.parametrize(
    "search, scheduler, extra, recorded, trials, epochs", CASES, ids=[f"{c[0]}-{c[1]}" for c in CASES]
)
def test_each_sampler_and_scheduler_runs_a_demo_sweep(
    local_ray, tmp_path, search, scheduler, extra, recorded, trials, epochs
):
    from sweep.study import load_sweep_study

    name = f"{search}-{scheduler}"
    size = ["--samples", str(trials), "--epochs", str(epochs)]
    spec, code = sweep_in_process(tmp_path, name, *QUICK, *size, "--search", search, "--scheduler", scheduler, *extra)
    assert code == 0
    client, parent, finished = assert_sweep_recorded(
        spec.tracking_uri, name, experiment="scenesweep-tinynet", trials=trials, epochs=epochs
    )
    assert parent.data.tags["scenesweep.search"] == recorded  # what searched, auto's pick included
    assert parent.data.params["search"] == search and parent.data.params["scheduler"] == scheduler
    study = load_sweep_study(spec)
    ended = [t for t in study.trials if t.state in (TrialState.COMPLETE, TrialState.PRUNED)]
    assert len(ended) == trials and not study.get_trials(states=(TrialState.RUNNING,))
    # A trial that ran its course is COMPLETE in the study whatever the scheduler did on the way
    # (HyperBand pauses trials at its rungs, its last one included; the median rule time-slices: sweep/pausing.py).
    assert sum(t.state == TrialState.COMPLETE for t in ended) == len(finished)
    # The study's trials are the runs' configurations: the sampler's suggestions reached the trials.
    _, _, children = sweep_runs(spec.tracking_uri, name, "scenesweep-tinynet")
    searched = {key for t in ended for key in t.params}
    run_configs = sorted(tuple(sorted((k, c.data.params[k]) for k in searched if k in c.data.params)) for c in children)
    study_configs = sorted(tuple(sorted((k, str(v)) for k, v in t.params.items())) for t in ended)
    assert run_configs == study_configs
    if search == "nsga2":
        assert [d.name for d in study.directions] == ["MAXIMIZE", "MINIMIZE"]
    if search == "cmaes":  # the pins left it numbers only
        kinds = {type(d) for t in ended for d in t.distributions.values()}
        assert optuna.distributions.CategoricalDistribution not in kinds


def test_the_cli_runs_a_non_default_sampler_and_scheduler(tmp_path):
    size = ["--samples", str(TRIALS), "--epochs", str(EPOCHS)]
    result = run_cli(
        "sweep", *QUICK, *size, "--search", "qmc", "--scheduler", "median", "--name", "cli-qmc", cwd=tmp_path
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    uri = f"sqlite:///{tmp_path / 'mlruns.db'}"
    _, parent, _ = assert_sweep_recorded(uri, "cli-qmc", experiment="scenesweep-tinynet", trials=TRIALS, epochs=EPOCHS)
    assert parent.data.tags["scenesweep.search"] == "qmc" and parent.data.params["scheduler"] == "median"
