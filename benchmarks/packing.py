"""Benchmark 4: trial packing: trials per hour at 1, 4 and 8 concurrent TinyNet trials on one GPU.

The same fixed trial (the paper's TinyNet config, LR finder included) runs
`--trials` times through `orchestrator.py` at each concurrency level K, with
`--gpus-per-trial 1/K` and `--max-concurrent K`, so K trials share the GPU.
Trials per hour = trials / (last trial's run closing - first trial's run opening),
so Ray's and the data's start-up are left out (reported beside it). Without a GPU
the same question is asked of the CPU cores: K concurrent trials with
cores/K threads each (levels 1 and 2 by default).

    python -m benchmarks.packing [--levels 1 4 8] [--trials N] [--epochs 5] [--quick]
"""

from __future__ import annotations

import os
import statistics
import tempfile
from pathlib import Path

from benchmarks.common import CACHE, format_table, main, parser, run_sweep, trial_runs_of


def paper_pins() -> list[str]:
    from search_spaces.tinynet import PAPER_BEST

    pins = []
    for key, value in PAPER_BEST.items():
        pins += ["--fix", f"{key}={value}"]
    return pins


def run(args):
    import torch

    gpu = torch.cuda.is_available()
    cores = len(os.sched_getaffinity(0))
    levels = args.levels or ([1, 4, 8] if gpu else [2] if args.quick else [1, 2])
    trials, epochs = (2, 1) if args.quick else (args.trials or (16 if gpu else 6), args.epochs)
    data = str(Path(args.data).resolve()) if args.data != "demo" else "demo"
    rows = []
    for level in levels:
        cpus = args.cpus_per_trial or max(1, cores // (max(levels) if gpu else level))
        cli = [
            "--space",
            "tinynet",
            "--data",
            data,
            "--samples",
            str(trials),
            "--epochs",
            str(epochs),
            "--search",
            "random",
            "--scheduler",
            "fifo",
            "--max-concurrent",
            str(level),
            "--cpus-per-trial",
            str(cpus),
            "--gpus-per-trial",
            str(1 / level if gpu else 0),
            "--cache-dir",
            str(CACHE),
            "--no-refit",  # trials per hour of the search
            *paper_pins(),
        ]
        if args.quick:
            cli += ["--per-class", "4", "--fix", "lr_finder=false"]  # the finder's 60 steps dwarf a tiny trial
        with tempfile.TemporaryDirectory(prefix="bench-packing-") as folder:
            sweep = run_sweep(name=f"bench-packing-{level}", workdir=Path(folder), args=cli)
            runs = [r for r in trial_runs_of(sweep) if r.info.status == "FINISHED"]
        opened = min(r.info.start_time for r in runs) / 1000
        closed = max(r.info.end_time for r in runs) / 1000
        rows.append(
            {
                "concurrent": level,
                "gpus_per_trial": round(1 / level, 4) if gpu else 0,
                "cpus_per_trial": cpus,
                "trials": len(runs),
                "trials_per_hour": len(runs) / (closed - opened) * 3600,
                "trials_per_hour_with_startup": len(runs) / sweep.wall * 3600,
                "median_fit_seconds": statistics.median(r.data.metrics["fit_seconds"] for r in runs),
                "median_epoch_seconds": statistics.median(_epoch_seconds(sweep, r) for r in runs),
                "startup_seconds": opened - sweep.started,
            }
        )
    for row in rows:
        row["gain_vs_1"] = row["trials_per_hour"] / rows[0]["trials_per_hour"]
    payload = {
        "settings": {"levels": levels, "trials": trials, "epochs": epochs, "data": data, "gpu": gpu, "cores": cores},
        "rows": rows,
    }
    columns = [
        "concurrent",
        "gpus_per_trial",
        "cpus_per_trial",
        "trials",
        "trials_per_hour",
        "gain_vs_1",
        "trials_per_hour_with_startup",
        "median_fit_seconds",
        "median_epoch_seconds",
    ]
    return "packing", payload, format_table(rows, columns)


def _epoch_seconds(sweep, run) -> float:
    from mlflow.tracking import MlflowClient

    history = MlflowClient(sweep.uri).get_metric_history(run.info.run_id, "epoch_seconds")
    return statistics.median(point.value for point in history)


def build_parser():
    p = parser(__doc__.splitlines()[0])
    p.add_argument(
        "--levels",
        type=int,
        nargs="+",
        default=None,
        help="concurrent trials to try (default 1 4 8 on a GPU, 1 2 on CPU)",
    )
    p.add_argument("--trials", type=int, default=None, help="trials per level (default 16 on a GPU, 6 on CPU)")
    p.add_argument("--epochs", type=int, default=5, help="epochs per trial (default 5)")
    p.add_argument(
        "--cpus-per-trial",
        type=float,
        default=None,
        help="CPUs per trial (default: cores / the largest level on GPU, cores / level on CPU)",
    )
    return p


if __name__ == "__main__":
    import sys

    sys.exit(main(run, build_parser().parse_args()))
