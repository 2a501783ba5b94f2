"""Benchmark 6: search quality: which way of spending the same wall-clock budget finds the best model.

Five arms, each given the same `--budget` on the same data, one after another:

- (a) `default`: scenesweep's default search (`orchestrator.py sweep --budget B`: TPE from the
  paper's configuration and the space's SEARCH_STARTS, ASHA, the chance-level stop, as many trials at once as the cores allow);
- (b) `random_asha`: the same through scenesweep with `--search random`;
- (b') `gp`: the same with `--search gp` (Optuna's GPSampler): `--arms default,gp` puts TPE against GP
  at the same budget, seed and starts, in one invocation;
- (c) `plain_optuna`: a plain Optuna loop in this process, TPE + MedianPruner, each trial calling
  `trainables.training.fit_and_evaluate` (the function every sweep trial runs); no Ray, no MLflow;
  it starts from the same configurations as the sweep arms (the paper's, then the space's
  SEARCH_STARTS), so the arms differ in how they search, not in where they start;
- (d) `paper_default`: the paper's configuration trained once, with `--paper-epochs` epochs and the
  whole budget as its time limit (training stops at the first epoch end past it).

For each arm: best-so-far validation accuracy against wall time since the arm started (a trial
counts when it has finished, with a model evaluated on test), and the test accuracy of the arm's
validation-selected best. One JSON and one PNG with every arm's curve.

    python -m benchmarks.search_quality [--budget 15m] [--space tinynet] [--epochs 30] [--quick]
    python -m benchmarks.search_quality --arms default,gp --budget 4m --epochs 8 --fix input_size=32
"""

from __future__ import annotations

import os
import tempfile
import time
from pathlib import Path

from benchmarks.common import (
    CACHE,
    BenchmarkError,
    format_table,
    main,
    parser,
    run_sweep,
    sweep_summary,
    trial_runs_of,
)

ARMS = ("default", "random_asha", "gp", "plain_optuna", "paper_default")
DEFAULT_ARMS = ("default", "random_asha", "plain_optuna", "paper_default")  # README's four; gp on request
SCENESWEEP_SEARCH = {"default": None, "random_asha": "random", "gp": "gp"}  # arm -> --search (None: the default)
QUICK_PINS = {"blocks": 2, "base_width": 8, "input_size": 32, "kernel_size": 3, "convs_per_block": 1}
SEED = 0


def run(args):
    from sweep.spec import UsageError, parse_duration

    try:
        budget = parse_duration(args.budget, flag="--budget")
    except UsageError as exc:
        raise BenchmarkError(str(exc)) from None
    data = str(Path(args.data).resolve()) if args.data != "demo" else "demo"
    epochs = 2 if args.quick else args.epochs
    pins = QUICK_PINS if args.quick and args.space == "tinynet" else {}
    if args.fix:
        from search_spaces import parse_pins
        from trainables.families import get_family

        try:
            pins = {**pins, **parse_pins(get_family(args.space).space, args.fix)}
        except ValueError as exc:
            raise BenchmarkError(str(exc)) from None
    per_class = 4 if args.quick else None
    arms = [a.strip() for a in args.arms.split(",") if a.strip()]
    if unknown := sorted(set(arms) - set(ARMS)):
        raise BenchmarkError(f"--arms: no arm {unknown[0]!r}; choose from {', '.join(ARMS)}")
    settings = {
        "space": args.space,
        "budget_seconds": budget,
        "epochs": epochs,
        "paper_epochs": 2 if args.quick else args.paper_epochs,
        "data": data,
        "per_class": per_class,
        "pins": pins,
        "seed": SEED,
        "cores": len(os.sched_getaffinity(0)),
    }
    results = {}
    for arm in arms:
        if arm in SCENESWEEP_SEARCH:
            results[arm] = scenesweep_arm(arm, settings)
        elif arm == "plain_optuna":
            results[arm] = plain_optuna_arm(settings)
        else:
            results[arm] = paper_default_arm(settings)
    png = Path(args.results) / "search_quality.png"
    curves_png(results, png, budget=budget)
    rows = [
        {
            "arm": arm,
            "trials": r["trials"],
            "wall_s": r["wall_seconds"],
            "best_val": r["best_val_accuracy"],
            "best_test": r["best_test_accuracy"],
        }
        for arm, r in results.items()
    ]
    payload = {"settings": settings, "arms": results, "plot": str(png)}
    return "search_quality", payload, format_table(rows, ["arm", "trials", "wall_s", "best_val", "best_test"])


def scenesweep_arm(arm: str, settings: dict) -> dict:
    metric = _family(settings).metric
    cli = [
        *("--space", settings["space"], "--data", settings["data"], "--epochs", str(settings["epochs"])),
        *("--budget", f"{settings['budget_seconds']:g}s", "--seed", str(SEED), "--cache-dir", str(CACHE)),
    ]
    if search := SCENESWEEP_SEARCH[arm]:
        cli += ["--search", search, "--scheduler", "asha" if _family(settings).per_epoch else "fifo"]
    if settings["per_class"]:
        cli += ["--per-class", str(settings["per_class"])]
    for key, value in settings["pins"].items():
        cli += ["--fix", f"{key}={value}"]
    with tempfile.TemporaryDirectory(prefix=f"bench-search-{arm}-") as folder:
        started = time.time()
        try:
            sweep = run_sweep(name=f"bench-{arm}", workdir=Path(folder), args=cli)
        except RuntimeError as exc:  # no trial finished within the budget: the arm found nothing
            last = str(exc).strip().splitlines()
            return {**_curve([]), "wall_seconds": time.time() - started, "trials": 0, "error": last[-1] if last else ""}
        runs = trial_runs_of(sweep)
        summary = sweep_summary(sweep, metric=metric)
    finished = [
        (r.info.end_time / 1000 - sweep.started, r.data.metrics[metric], r.data.metrics.get("test_accuracy"))
        for r in runs
        if r.info.status == "FINISHED" and metric in r.data.metrics
    ]
    best = summary.best
    return {
        **_curve(finished),
        "wall_seconds": sweep.wall,
        "trials": len(summary.rows),
        "counts": dict(summary.counts()),
        "best_config": best.config if best else None,
    }


def plain_optuna_arm(settings: dict) -> dict:
    import optuna

    from search_spaces import PinnedSpace
    from sweep.samplers import make_sampler
    from trainables.core.session import TrialSession
    from trainables.training import fit_and_evaluate, seed_everything, set_threads

    started = time.perf_counter()
    family, dataset = _family(settings), _dataset(settings)
    set_threads(settings["cores"])
    budget = settings["budget_seconds"]
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(
        direction="maximize",
        sampler=make_sampler("tpe", seed=SEED, samples=0),
        pruner=optuna.pruners.MedianPruner(n_startup_trials=3, n_warmup_steps=2),
    )
    for config in family.start_configs(gpu=False):  # the sweep arms' starting points, in the same order
        study.enqueue_trial({**config, **settings["pins"]})
    space = PinnedSpace(family.space, settings["pins"])
    finished: list[tuple[float, float, float]] = []

    def objective(trial):
        config = {**space(trial), **trial.params}

        def report(result, checkpoint=None):
            trial.report(result[family.metric], result["epoch"])
            # The budget ends the running trial too, as --budget does for a sweep's trials.
            if trial.should_prune() or time.perf_counter() - started > budget:
                raise optuna.TrialPruned()

        seed_everything(SEED)
        session = TrialSession(max_epochs=settings["epochs"], report=report, options={"cache_dir": str(CACHE)})
        outcome = fit_and_evaluate(config, dataset, family, session)
        value = (
            session.history[family.metric][-1][1]
            if family.metric in session.history
            else outcome.metrics[family.metric]
        )
        finished.append((time.perf_counter() - started, value, outcome.test.accuracy))
        return value

    study.optimize(objective, timeout=budget, catch=(Exception,))
    return {
        **_curve(finished),
        "wall_seconds": time.perf_counter() - started,
        "trials": len(study.trials),
        "counts": {s.name: sum(t.state == s for t in study.trials) for s in {t.state for t in study.trials}},
        "best_config": study.best_trial.params if finished else None,
    }


def paper_default_arm(settings: dict) -> dict:
    from trainables.core.session import TrialSession
    from trainables.training import fit_and_evaluate, seed_everything, set_threads

    started = time.perf_counter()
    family, dataset = _family(settings), _dataset(settings)
    set_threads(settings["cores"])
    seed_everything(SEED)
    session = TrialSession(
        max_epochs=settings["paper_epochs"],
        time_limit=settings["budget_seconds"] - (time.perf_counter() - started),
        options={"cache_dir": str(CACHE)},  # BoVW's descriptors: the same cache as the sweep arms'
    )
    config = {**family.default_config(gpu=False), **settings["pins"]}
    outcome = fit_and_evaluate(config, dataset, family, session)
    metric = family.metric
    value = session.history[metric][-1][1] if metric in session.history else outcome.metrics[metric]
    wall = time.perf_counter() - started
    return {
        **_curve([(wall, value, outcome.test.accuracy)]),
        "wall_seconds": wall,
        "trials": 1,
        "epochs_trained": len(session.history.get("train_loss", [])),
        "stopped_by_budget": session.timed_out,
        "best_config": config,
    }


def _curve(finished: list[tuple[float, float, float | None]]) -> dict:
    """Best-so-far validation accuracy over time, and the test accuracy of the validation-selected best."""
    curve, best = [], None
    for seconds, val, test in sorted(finished, key=lambda f: f[0]):
        if best is None or val > best[1]:
            best = (seconds, val, test)
            curve.append([round(seconds, 2), val])
    return {
        "curve": curve,
        "best_val_accuracy": best[1] if best else None,
        "best_test_accuracy": best[2] if best else None,
        "seconds_to_best": best[0] if best else None,
    }


def curves_png(results: dict, path: Path, *, budget: float) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    path.parent.mkdir(parents=True, exist_ok=True)
    fig, ax = plt.subplots(figsize=(8, 4.5))
    for arm, result in results.items():
        if result["curve"]:
            xs, ys = zip(*result["curve"])
            end = max(result["wall_seconds"], xs[-1])
            ax.step(
                [*xs, end],
                [*ys, ys[-1]],
                where="post",
                marker="o",
                label=f"{arm} (test {result['best_test_accuracy']:.3f})",
            )
    ax.axvline(budget, color="gray", linestyle="--", label="budget")
    ax.set_xlabel("wall seconds since the arm started")
    ax.set_ylabel("best validation accuracy so far")
    ax.set_title("Search quality at the same budget")
    ax.grid(alpha=0.3)
    ax.legend(loc="lower right")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def _family(settings: dict):
    from trainables.families import get_family

    return get_family(settings["space"])


def _dataset(settings: dict):
    from trainables.core.data import DataSpec, load_dataset

    return load_dataset(
        DataSpec(source=settings["data"], per_class=settings["per_class"], seed=SEED, cache_dir=str(CACHE))
    )


def build_parser():
    p = parser(__doc__.splitlines()[0])
    p.add_argument("--budget", default="15m", help="wall-clock budget per arm, e.g. 90s, 15m (default 15m)")
    p.add_argument("--space", default="tinynet", help="model family (default tinynet)")
    p.add_argument("--epochs", type=int, default=30, help="maximum epochs per searched trial (default 30)")
    p.add_argument(
        "--fix",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="pin a search-space parameter in every arm (repeatable), as the sweep's --fix",
    )
    p.add_argument(
        "--paper-epochs", type=int, default=60, help="epochs of the paper-default arm, within the budget (default 60)"
    )
    p.add_argument(
        "--arms",
        default=",".join(DEFAULT_ARMS),
        help=f"which arms to run, in this order (default {','.join(DEFAULT_ARMS)}; also: gp)",
    )
    return p


if __name__ == "__main__":
    import sys

    sys.exit(main(run, build_parser().parse_args()))
