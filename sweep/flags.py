"""The `sweep` subcommand's flags. Each becomes a field of SweepSpec (sweep.spec.spec_from_args reads
them), so they live beside it; the family flags come from the registry."""

from __future__ import annotations

import argparse
import os

from sweep.samplers import DEFAULT_SEARCH, search_choices, search_help
from sweep.schedulers import AUTO, scheduler_choices, scheduler_help
from trainables.core.data import DEMO
from trainables.families import FAMILIES, all_options


def add_sweep_flags(sweep: argparse.ArgumentParser) -> None:
    sweep.add_argument("--space", default="tinynet", choices=sorted(FAMILIES), help="model family to search")
    sweep.add_argument(
        "--data",
        default=DEMO,
        help="'demo' (built-in, offline) or a folder: MIT_split "
        "(train/<class>/, test/<class>/) or one folder per class",
    )
    sweep.add_argument(
        "--samples",
        type=int,
        default=None,
        help="number of trials (default 20, or no limit with --budget; 1 runs the paper's config)",
    )
    sweep.add_argument(
        "--budget",
        default=None,
        metavar="DURATION",
        help="wall-clock budget of the sweep, e.g. 90s, 30m, 2h: no trial starts after it, trials still "
        "running are stopped and recorded as pruned, and the sweep ends with its best (default: none)",
    )
    sweep.add_argument("--epochs", type=int, default=30, help="maximum epochs per trial (default 30)")
    sweep.add_argument("--search", choices=search_choices(), default=DEFAULT_SEARCH, help=search_help(DEFAULT_SEARCH))
    sweep.add_argument("--scheduler", choices=scheduler_choices(), default=AUTO, help=scheduler_help())
    sweep.add_argument(
        "--max-concurrent", type=int, default=0, help="most trials at once (default: as resources allow)"
    )
    sweep.add_argument("--cpus-per-trial", type=float, default=1.0, help="CPUs (and threads) per trial (default 1)")
    sweep.add_argument(
        "--gpus-per-trial",
        type=float,
        default=None,
        help="GPUs per trial, fractions allowed (default: 1 if the cluster has GPUs, else 0)",
    )
    sweep.add_argument("--name", default=None, help="sweep name (default: FAMILY-YYYYmmdd-HHMMSS)")
    sweep.add_argument("--experiment", default=None, help="MLflow experiment (default: scenesweep-FAMILY)")
    sweep.add_argument("--seed", type=int, default=0, help="seed for splits, sampler and training (default 0)")
    sweep.add_argument("--val-fraction", type=float, default=0.15, help="validation share of train (default 0.15)")
    sweep.add_argument("--per-class", type=int, default=None, help="train on N images per class (tiny-data setting)")
    sweep.add_argument("--image-size", type=int, default=64, help="decode images to this square size (default 64)")
    sweep.add_argument("--cache-dir", default=None, help="decoded-data cache (default: STORAGE/cache)")
    sweep.add_argument(
        "--trial-timeout",
        type=float,
        default=None,
        metavar="SECONDS",
        help="stop a trial's training at the first epoch end past this many seconds, then "
        "evaluate it as usual (default: no limit)",
    )
    sweep.add_argument(
        "--no-chance-stop",
        action="store_true",
        help="let trials still at chance-level validation accuracy after 2 epochs go on (default: stop them)",
    )
    sweep.add_argument(
        "--warm-start",
        default=None,
        metavar="SWEEP[,SWEEP...]",
        help="seed the search with the finished and pruned trials of earlier sweeps of the same --space "
        "(trials outside the current space are skipped)",
    )
    sweep.add_argument(
        "--enqueue",
        default=None,
        metavar="FILE.json",
        help="run these configurations first: a JSON object {param: value} or a list of them "
        "(parameters left out are searched)",
    )
    sweep.add_argument(
        "--objective",
        default=None,
        metavar="accuracy[,params]",
        help="what to optimise: accuracy (default), or accuracy,params for the Pareto front of accuracy "
        "against trainable parameters (multi-objective Optuna; runs under FIFO, since ASHA stops trials on "
        "one metric); also fit_seconds",
    )
    sweep.add_argument(
        "--study-storage",
        default=None,
        metavar="URL",
        help="Optuna RDB storage for the sweep's study, e.g. postgresql://HOST/optuna "
        "(default: optuna.journal in the sweep's folder)",
    )
    sweep.add_argument(
        "--fix",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="pin a search-space parameter (repeatable), e.g. --fix input_size=64",
    )
    for option in all_options():  # each family's own flags, from the registry
        owners = ", ".join(f.name for f in FAMILIES.values() if option in f.options)
        extra = {"nargs": "?", "const": option.const} if option.const is not None else {}
        sweep.add_argument(
            option.flag,
            dest=option.dest,
            type=option.type,
            choices=option.choices,
            default=None,
            metavar=option.metavar,
            help=f"{owners}: {option.help}",
            **extra,
        )
    add_cluster_flags(sweep, address_default=os.environ.get("RAY_ADDRESS"))
    add_refit_flag(sweep, default=True)
    add_output_flags(sweep)


def add_refit_flag(parser, *, default: bool | None) -> None:
    """--refit/--no-refit (sweep/refit.py); on `resume` the default None keeps the saved choice."""
    parser.add_argument(
        "--refit",
        action=argparse.BooleanOptionalAction,
        default=default,
        help="after the search, retrain the best configuration on train+val in its own run, the model "
        "promote then registers; --budget keeps time for it "
        + ("(default: on)" if default else "(default: as the sweep was started)"),
    )


def add_output_flags(parser) -> None:
    """--verbose / --quiet: how much a running sweep prints (sweep.console)."""
    loudness = parser.add_mutually_exclusive_group()
    loudness.add_argument(
        "--verbose",
        dest="output",
        action="store_const",
        const="verbose",
        default="default",
        help="Ray Tune's own tables and the workers' output instead of one line per trial event",
    )
    loudness.add_argument(
        "--quiet", dest="output", action="store_const", const="quiet", help="only the closing summary (for scripts)"
    )


def add_cluster_flags(parser, *, address_default: str | None) -> None:
    """Where a sweep runs and keeps its state (sweep and resume)."""
    parser.add_argument(
        "--address", default=address_default, help="Ray cluster address (default $RAY_ADDRESS, else an embedded Ray)"
    )
    parser.add_argument("--storage", default="sweeps", help="where Tune keeps sweep state (default ./sweeps)")
