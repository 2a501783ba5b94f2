"""Benchmark 7: search ablation: does each of the sweep's search rules help, at the same budget?

The rules (issue 13), each switched off in one arm while the others stay on:

- `pruned_told`: a trial stopped early is PRUNED in the Optuna study, with its per-epoch values.
  Off (`told_complete`): it is COMPLETE with its last early value, as Ray's OptunaSearch tells it,
  so TPE ranks a 2-epoch value beside fully trained ones.
- `constant_liar`: with two trials in flight, TPE counts the running one as a bad result.
  Off (`no_liar`): both suggestions come from the same history.
- `chance_stop`: a trial still at chance level after its first epochs stops and is pruned.
  Off (`no_chance_stop`): it runs until successive halving stops it.

Every arm is the same in-process loop: Optuna's `study.optimize` with two trials at a time (one
thread each), the sweep's sampler (`sweep.samplers.make_sampler`), successive halving with the
sweep's ASHA settings (grace period epochs // 5, at least 2; reduction factor 3), the sweep's
starting configurations first (the paper's, then the space's SEARCH_STARTS, which run their
course), and the function every sweep trial runs (`trainables.training.fit_and_evaluate`). No Ray
and no MLflow: their cost is the same in every arm and would only add noise. Each arm runs once
per `--seeds`; a trial counts when it finished all its epochs and was evaluated on test.

    python -m benchmarks.search_ablation [--budget 4m] [--seeds 0,1] [--epochs 10] [--fix input_size=32]
"""

from __future__ import annotations

import threading
import time
from pathlib import Path
from statistics import mean

from benchmarks.common import CACHE, BenchmarkError, format_table, main, parser
from benchmarks.search_quality import QUICK_PINS, _curve, _dataset, _family

RULES = ("pruned_told", "constant_liar", "chance_stop")
ARMS = {
    "all_rules": set(RULES),
    "told_complete": set(RULES) - {"pruned_told"},
    "no_liar": set(RULES) - {"constant_liar"},
    "no_chance_stop": set(RULES) - {"chance_stop"},
}
CONCURRENT = 2  # trials at once, as a sweep runs them on the 2 cores


class _StoppedEarly(Exception):
    """Successive halving or the chance stop ended the trial; `value` is its last validation value."""

    def __init__(self, value: float):
        self.value = value


def run(args):
    from search_spaces import parse_pins
    from sweep.spec import UsageError, parse_duration

    try:
        budget = parse_duration(args.budget, flag="--budget")
        pins = parse_pins(args.space, args.fix or [])
    except (UsageError, ValueError) as exc:
        raise BenchmarkError(str(exc)) from None
    arms = [a.strip() for a in args.arms.split(",") if a.strip()]
    if unknown := sorted(set(arms) - set(ARMS)):
        raise BenchmarkError(f"--arms: no arm {unknown[0]!r}; choose from {', '.join(ARMS)}")
    try:
        seeds = [int(s) for s in args.seeds.split(",") if s.strip()]
    except ValueError:
        raise BenchmarkError(f"--seeds: {args.seeds!r} is not a comma-separated list of integers") from None
    settings = {
        "space": args.space,
        "budget_seconds": budget,
        "epochs": 2 if args.quick else args.epochs,
        "data": str(Path(args.data).resolve()) if args.data != "demo" else "demo",
        "per_class": 4 if args.quick else None,
        "pins": {**(QUICK_PINS if args.quick else {}), **pins},
        "concurrent": CONCURRENT,
        "seeds": seeds,
    }
    _warm_up(settings)
    results: dict = {}
    for index, seed in enumerate(seeds):
        for arm in arms[index % len(arms) :] + arms[: index % len(arms)]:  # each seed starts with another arm
            results[f"{arm} seed {seed}"] = {"arm": arm, "seed": seed, **ablation_arm(ARMS[arm], settings, seed)}
    ablation_png(results, Path(args.results) / "search_ablation.png", budget=budget)
    rows = [
        {
            "arm": r["arm"],
            "seed": r["seed"],
            "trials": r["trials"],
            "finished": r["finished"],
            "stopped": r["stopped_early"],
            "at_chance": r["chance_stopped"],
            "best_val": r["best_val_accuracy"],
            "best_test": r["best_test_accuracy"],
        }
        for r in results.values()
    ]
    summary = {arm: _mean_of(arm, results) for arm in arms}
    rows += [{"arm": f"{arm} (mean)", **figures} for arm, figures in summary.items()]
    columns = ["arm", "seed", "trials", "finished", "stopped", "at_chance", "best_val", "best_test"]
    payload = {"settings": settings, "arms": results, "mean": summary, "plot": "search_ablation.png"}
    return "search_ablation", payload, format_table(rows, columns)


def ablation_arm(rules: set[str], settings: dict, seed: int) -> dict:
    import optuna

    from search_spaces import PinnedSpace
    from sweep.samplers import make_sampler
    from trainables.core.session import AtChanceLevel, TrialSession
    from trainables.training import fit_and_evaluate, seed_everything, set_threads

    family, dataset = _family(settings), _dataset(settings)
    set_threads(1)  # one core per trial, CONCURRENT trials at once
    started = time.perf_counter()
    budget, epochs = settings["budget_seconds"], settings["epochs"]
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(
        direction="maximize",
        sampler=make_sampler("tpe", seed=seed, samples=0, concurrent="constant_liar" in rules),
        pruner=optuna.pruners.SuccessiveHalvingPruner(
            min_resource=min(epochs, max(2, epochs // 5)), reduction_factor=3
        ),
    )
    starts = [{**config, **settings["pins"]} for config in family.start_configs(gpu=False)]
    for config in starts:
        study.enqueue_trial(config)
    space = PinnedSpace(family.space, settings["pins"])
    finished: list[tuple[float, float, float]] = []
    counts = {"stopped_early": 0, "chance_stopped": 0}
    lock = threading.Lock()

    def objective(trial):
        config = {**space(trial), **trial.params}
        chosen = trial.number < len(starts)  # the starts run their course, as in a sweep

        def report(result, checkpoint=None):
            value = result[family.metric]
            trial.report(value, result["epoch"])
            if time.perf_counter() - started > budget:  # --budget ends running trials too
                raise optuna.TrialPruned()
            if not chosen and trial.should_prune():
                raise _StoppedEarly(value)

        seed_everything(seed + trial.number)
        session = TrialSession(
            max_epochs=epochs,
            report=report,
            options={"cache_dir": str(CACHE)},
            chance_level=1.0 / len(dataset.class_names) if "chance_stop" in rules else None,
        )
        try:
            outcome = fit_and_evaluate(config, dataset, family, session)
        except (_StoppedEarly, AtChanceLevel) as exc:
            with lock:
                counts["chance_stopped" if isinstance(exc, AtChanceLevel) else "stopped_early"] += 1
            if "pruned_told" in rules:
                raise optuna.TrialPruned() from None
            return exc.value if isinstance(exc, _StoppedEarly) else session.history[family.metric][-1][1]
        value = session.history[family.metric][-1][1]
        with lock:
            finished.append((time.perf_counter() - started, value, outcome.test.accuracy))
        return value

    study.optimize(objective, timeout=budget, n_jobs=CONCURRENT, catch=(Exception,))
    return {
        **_curve(finished),
        "wall_seconds": time.perf_counter() - started,
        "trials": len(study.trials),
        "finished": len(finished),
        **counts,
        "states": {s.name: sum(t.state == s for t in study.trials) for s in {t.state for t in study.trials}},
    }


def ablation_png(results: dict, path: Path, *, budget: float) -> None:
    """Best validation accuracy so far against time: one colour per arm, one line style per seed."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    path.parent.mkdir(parents=True, exist_ok=True)
    arms = list(dict.fromkeys(r["arm"] for r in results.values()))
    seeds = list(dict.fromkeys(r["seed"] for r in results.values()))
    styles = ["-", "--", ":", "-."]
    fig, ax = plt.subplots(figsize=(9, 4.8))
    for result in results.values():
        if not result["curve"]:
            continue
        xs, ys = zip(*result["curve"])
        ax.step(
            [*xs, max(result["wall_seconds"], xs[-1])],
            [*ys, ys[-1]],
            where="post",
            color=f"C{arms.index(result['arm'])}",
            linestyle=styles[seeds.index(result["seed"]) % len(styles)],
        )
    for index, arm in enumerate(arms):  # one legend entry per arm, with its mean over the seeds
        figures = _mean_of(arm, results)
        test = "-" if figures["best_test"] is None else f"{figures['best_test']:.3f}"
        ax.plot([], [], color=f"C{index}", label=f"{arm} (mean test {test})")
    for index, seed in enumerate(seeds):
        ax.plot([], [], color="gray", linestyle=styles[index % len(styles)], label=f"seed {seed}")
    ax.axvline(budget, color="gray", linestyle="--", linewidth=0.8)
    ax.set_xlabel("wall seconds since the arm started")
    ax.set_ylabel("best validation accuracy so far")
    ax.set_title("Search rules switched off one at a time, same budget")
    ax.grid(alpha=0.3)
    ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def _warm_up(settings: dict) -> None:
    """What the first arm alone would pay: the decoded images, and torch's lazy imports on the first
    optimizer (torch._dynamo, a few seconds)."""
    import torch

    _dataset(settings)
    torch.optim.Adam([torch.zeros(1, requires_grad=True)])


def _mean_of(arm: str, results: dict) -> dict:
    runs = [r for r in results.values() if r["arm"] == arm]
    vals = [r["best_val_accuracy"] for r in runs if r["best_val_accuracy"] is not None]
    tests = [r["best_test_accuracy"] for r in runs if r["best_test_accuracy"] is not None]
    return {
        "trials": mean(r["trials"] for r in runs),
        "finished": mean(r["finished"] for r in runs),
        "stopped": mean(r["stopped_early"] for r in runs),
        "at_chance": mean(r["chance_stopped"] for r in runs),
        "best_val": mean(vals) if vals else None,
        "best_test": mean(tests) if tests else None,
    }


def build_parser():
    p = parser(__doc__.splitlines()[0])
    p.add_argument("--budget", default="4m", help="wall-clock budget per arm and seed, e.g. 90s, 4m (default 4m)")
    p.add_argument("--space", default="tinynet", help="model family (default tinynet)")
    p.add_argument("--epochs", type=int, default=10, help="maximum epochs per trial (default 10)")
    p.add_argument("--seeds", default="0,1", help="sampler seeds; every arm runs once per seed (default 0,1)")
    p.add_argument("--arms", default=",".join(ARMS), help=f"which arms to run (default all: {','.join(ARMS)})")
    p.add_argument("--fix", action="append", metavar="NAME=VALUE", help="pin a parameter in every arm (repeatable)")
    return p


if __name__ == "__main__":
    raise SystemExit(main(run, build_parser().parse_args()))
