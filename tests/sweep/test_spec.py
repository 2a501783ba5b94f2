"""sweep.spec.validate on --search and --scheduler, in-process: every unsupported combination and
unknown name is a UsageError of one line naming what is supported; the supported ones pass."""

from __future__ import annotations

from dataclasses import replace

import pytest

from sweep.errors import UsageError
from sweep.spec import SweepSpec, validate
from trainables.core.data import DataSpec

NUMERIC_TINYNET = {
    "base_width": 16,
    "kernel_size": 3,
    "activation": "relu",
    "init": "kaiming",
    "batchnorm": True,
    "residual": False,
    "depthwise": False,
    "optimizer": "adam",
    "lr_finder": False,
    "batch_size": 32,
    "one_cycle": True,
    "input_size": 32,
    "aug_hflip": True,
    "aug_crop": False,
    "aug_rotate": False,
    "aug_color": False,
    "aug_shift": False,
}
PARETO = ["accuracy", "params"]


def spec(**fields) -> SweepSpec:
    return replace(SweepSpec(family="tinynet", data=DataSpec(), name="t", tracking_uri="sqlite:///x.db"), **fields)


@pytest.mark.parametrize(
    "fields, message",
    [
        (
            {"search": "bayes"},
            "--search 'bayes' is not a sampler; choose one of tpe, gp, cmaes, random, qmc, nsga2, auto",
        ),
        (
            {"scheduler": "pbt"},
            "--scheduler 'pbt' is not a scheduler; choose one of auto, asha, hyperband, median, fifo",
        ),
        ({"search": "cmaes"}, "--search cmaes cannot search categorical parameters (activation,"),
        (
            {"search": "cmaes", "fixed": NUMERIC_TINYNET, "objective": PARETO, "scheduler": "fifo"},
            "optimises one objective",
        ),
        ({"objective": PARETO, "scheduler": "asha"}, "--objective accuracy,params runs under FIFO"),
        ({"objective": PARETO, "scheduler": "hyperband"}, "drop --scheduler hyperband"),
        ({"objective": PARETO, "scheduler": "median"}, "drop --scheduler median"),
        ({"family": "bovw", "scheduler": "asha"}, "--scheduler asha judges per-epoch results and bovw reports once"),
        ({"family": "bovw", "scheduler": "hyperband"}, "bovw reports once per trial; use fifo"),
        ({"family": "bovw", "scheduler": "median"}, "bovw reports once per trial; use fifo"),
    ],
)
def test_an_unsupported_search_is_one_line(fields, message):
    with pytest.raises(UsageError) as caught:
        validate(spec(**fields))
    assert message in str(caught.value) and "\n" not in str(caught.value)


@pytest.mark.parametrize(
    "fields",
    [
        {"search": search, "scheduler": scheduler}
        for search in ("tpe", "gp", "random", "qmc", "nsga2", "auto")
        for scheduler in ("auto", "asha", "hyperband", "median", "fifo")
    ]
    + [
        {"search": "cmaes", "fixed": NUMERIC_TINYNET},
        {"search": "nsga2", "objective": PARETO},
        {"search": "gp", "objective": PARETO, "scheduler": "auto"},
        {"family": "bovw", "search": "auto", "scheduler": "fifo"},
    ],
)
def test_a_supported_search_passes(fields):
    assert validate(spec(**fields)).search == fields["search"]


@pytest.mark.parametrize(
    "fields, message",
    [
        ({"seed": -1}, "--seed -1 must be a whole number from 0 to 4294967295"),
        ({"seed": 2**64}, "--seed 18446744073709551616 must be a whole number from 0 to 4294967295"),
        ({"trial_timeout": float("nan")}, "--trial-timeout nan must be a positive number of seconds"),
        ({"trial_timeout": float("inf")}, "--trial-timeout inf must be a positive number of seconds"),
        ({"trial_timeout": 0.0}, "--trial-timeout 0 must be a positive number of seconds"),
        ({"name": "a" * 101}, "--name is 101 characters long; a sweep name has at most 100"),
        ({"name": "-dash"}, "starting with a letter or digit"),
        ({"name": "has space"}, "is not a valid sweep name"),
        (
            {"fixed": {"input_size": 32}, "enqueue": [{"input_size": 64, "lr": 0.01}]},
            "--enqueue sets input_size=64 but --fix pins input_size=32; drop input_size",
        ),
    ],
    ids=[
        "seed-negative",
        "seed-2**64",
        "timeout-nan",
        "timeout-inf",
        "timeout-0",
        "name-101",
        "name-dash",
        "name-space",
        "enqueue-vs-fix",
    ],
)
def test_a_bad_flag_value_is_one_line_naming_the_real_reason(fields, message):
    with pytest.raises(UsageError) as caught:
        validate(spec(**fields))
    assert message in str(caught.value) and "\n" not in str(caught.value)


def test_a_storage_that_is_a_file_is_refused(tmp_path):
    (tmp_path / "sweeps").write_text("not a folder")
    with pytest.raises(UsageError, match="--storage .* is a file; name a folder"):
        validate(spec(storage=str(tmp_path / "sweeps")))


@pytest.mark.parametrize(
    "fields",
    [
        {"seed": 0},
        {"seed": 2**32 - 1},
        {"name": "a" * 100},
        {"trial_timeout": 0.5},
        {"fixed": {"input_size": 32}, "enqueue": [{"input_size": 32, "lr": 0.01}]},
    ],
)
def test_values_at_the_edges_pass(fields):
    validate(spec(**fields))
