"""Benchmark 2: orchestration overhead, scenesweep (Ray Tune + Optuna + MLflow) vs a plain Optuna loop.

The same N short TinyNet trials (architecture pinned small so training is ~1-2 s
and the overhead shows; everything else searched by the same seeded TPE sampler,
paper config first) run twice, one trial at a time on the same threads:

- plain: `optuna.study.optimize` in this process, each trial calling
  `trainables.training.fit_and_evaluate` (the function every sweep trial runs) and
  returning the last validation accuracy; nothing recorded;
- scenesweep: `orchestrator.py sweep --scheduler fifo --max-concurrent 1`, every
  trial a Tune trial with its MLflow child run, per-epoch metrics, checkpoints,
  artifacts and logged model (local sqlite store).

Overhead per trial = (time from the first trial's start to the last one's end -
time spent training) / N; beside it, the median trial's overhead (its cycle, from its run's
opening to the next trial's, less its training): the steady state of a long sweep, without
one-off costs such as a fresh worker's first imports. Where scenesweep's goes is read back from MLflow: each
trial records under `perf/`, in disjoint parts, `epoch_log_seconds` (per-epoch MLflow
log_batch), `tune_seconds` (tune.report + checkpoints), `tracking_seconds` (run,
params, dataset input, the record handed to its node's recorder) and `trial_seconds`;
its node's recorder adds, off the trial's path, `artifacts_seconds` (figures, report,
predictions), `model_log_seconds` and `record_seconds` (all of its work on the trial);
training = fit_seconds - epoch_log_seconds - tune_seconds; what lies between
trials is Tune's event loop, the searcher and the trial's start in its Ray actor.
Start-up (imports, Ray, data, parent run) and the closing summary are counted
once, apart: the time to the first trial is reported, and Ray's start-up on its
own (`sweep.run.connect_ray` in a fresh process: import, init, first task,
shutdown). The load average is recorded before and after (other work on the
machine inflates every figure; compare ratios, not seconds). `--baseline` takes
an overhead.json of an earlier run (another commit, say) and prints its
scenesweep column as "before".

    python -m benchmarks.overhead [--trials 50] [--epochs 2] [--quick] [--baseline OLD.json]
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from benchmarks.common import CACHE, ROOT, format_table, main, parser, run_sweep, trial_runs_of
from tracking.provenance import perf_key
from tracking.runs import TAG_RECORDED_BY

# Small and fixed, so training time is short and the same from trial to trial.
PINS = {
    "blocks": 3,
    "base_width": 8,
    "convs_per_block": 1,
    "kernel_size": 3,
    "depthwise": False,
    "residual": False,
    "input_size": 32,
    "batch_size": 64,
    "lr_finder": False,
}
SEED = 0


def run(args):
    trials = 3 if args.quick else args.trials
    epochs = 1 if args.quick else args.epochs
    threads = args.threads or len(os.sched_getaffinity(0))
    data = str(Path(args.data).resolve()) if args.data != "demo" else "demo"
    per_class = 4 if args.quick else None
    load_before = os.getloadavg()[0]
    ray_startup = ray_startup_seconds()
    plain = plain_optuna(data, trials=trials, epochs=epochs, threads=threads, per_class=per_class)
    with tempfile.TemporaryDirectory(prefix="bench-overhead-") as folder:
        sweep = scenesweep(Path(folder), data, trials=trials, epochs=epochs, threads=threads, per_class=per_class)
    before = json.loads(Path(args.baseline).read_text()) if args.baseline else None
    rows = compare(plain, sweep, trials, ray_startup=ray_startup, before=before)
    load = [round(load_before, 2), round(os.getloadavg()[0], 2)]
    payload = {
        "settings": {
            "trials": trials,
            "epochs": epochs,
            "threads": threads,
            "data": data,
            "per_class": per_class,
            "pins": PINS,
            "seed": SEED,
        },
        "plain": plain,
        "scenesweep": sweep,
        "ray_startup": ray_startup,
        "baseline": args.baseline,
        "load_average_before_after": load,
        "rows": rows,
    }
    columns = ["seconds", "plain_optuna", *(["before"] if before else []), "scenesweep"]
    table = format_table(rows, columns) + f"\nload average (1 min) before / after: {load[0]} / {load[1]}"
    return "overhead", payload, table


def ray_startup_seconds() -> dict:
    """Ray as a sweep starts it (`sweep.preflight.connect_ray`, embedded), timed in a fresh process."""
    script = """
import json, time, types
started = time.perf_counter()
import ray
from sweep.environment import configure_environment
from sweep.preflight import connect_ray
imported = time.perf_counter()
configure_environment()
connect_ray(types.SimpleNamespace(address=None, cpus_per_trial=1.0, gpus_per_trial=0.0))
initialised = time.perf_counter()
ray.get(ray.remote(num_cpus=0)(lambda: 1).remote())
first_task = time.perf_counter()
ray.shutdown()
print(json.dumps({"import": imported - started, "init": initialised - imported,
                  "first_task": first_task - initialised, "shutdown": time.perf_counter() - first_task}))
"""
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    env.pop("RAY_ADDRESS", None)
    result = subprocess.run(
        [sys.executable, "-c", script], cwd=ROOT, env=env, capture_output=True, text=True, timeout=300, check=True
    )
    return json.loads(result.stdout.strip().splitlines()[-1])


def plain_optuna(data: str, *, trials: int, epochs: int, threads: int, per_class: int | None) -> dict:
    import optuna

    from search_spaces import PinnedSpace
    from sweep.samplers import make_sampler
    from trainables.core.data import DataSpec, load_dataset
    from trainables.core.session import TrialSession
    from trainables.families import get_family
    from trainables.training import fit_and_evaluate, seed_everything, set_threads

    started = time.perf_counter()
    family = get_family("tinynet")
    dataset = load_dataset(DataSpec(source=data, per_class=per_class, seed=SEED, cache_dir=str(CACHE)))
    set_threads(threads)
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(direction="maximize", sampler=make_sampler("tpe", seed=SEED, samples=trials))
    for config in family.start_configs(gpu=False):  # where a sweep starts too
        study.enqueue_trial({**config, **PINS})
    space = PinnedSpace(family.space, PINS)
    fit_seconds, objective_seconds = [], []

    def objective(trial):
        began = time.perf_counter()
        config = {**space(trial), **trial.params}
        seed_everything(SEED)
        session = TrialSession(max_epochs=epochs)
        outcome = fit_and_evaluate(config, dataset, family, session)
        fit_seconds.append(outcome.metrics["fit_seconds"])
        objective_seconds.append(time.perf_counter() - began)
        return session.history["val_accuracy"][-1][1]

    loop_started = time.perf_counter()
    study.optimize(objective, n_trials=trials)
    loop = time.perf_counter() - loop_started
    return {
        "wall_seconds": time.perf_counter() - started,
        "startup_seconds": loop_started - started,
        "loop_seconds": loop,
        "fit_seconds": sum(fit_seconds),
        "searcher_seconds": loop - sum(objective_seconds),
        "evaluate_seconds": sum(objective_seconds) - sum(fit_seconds),  # test evaluation, seeding
        # One trial's overhead, the median: what a long sweep settles at (the mean also carries
        # one-off costs, such as a fresh worker's imports).
        "median_overhead_seconds": statistics.median(o - f for o, f in zip(objective_seconds, fit_seconds)),
        "best_val_accuracy": study.best_value,
    }


def scenesweep(workdir: Path, data: str, *, trials: int, epochs: int, threads: int, per_class: int | None) -> dict:
    args = [
        "--space",
        "tinynet",
        "--data",
        data,
        "--samples",
        str(trials),
        "--epochs",
        str(epochs),
        "--scheduler",
        "fifo",
        "--max-concurrent",
        "1",
        "--cpus-per-trial",
        str(threads),
        "--seed",
        str(SEED),
        "--cache-dir",
        str(CACHE),
        "--no-refit",  # the search's own cost against the plain loop's (a refit would add a training)
    ]
    if per_class:
        args += ["--per-class", str(per_class)]
    for key, value in PINS.items():
        args += ["--fix", f"{key}={value}"]
    sweep = run_sweep(name="bench-overhead", workdir=workdir, args=args)
    runs = [r for r in trial_runs_of(sweep) if r.info.status == "FINISHED"]
    if len(runs) < trials:
        raise RuntimeError(f"only {len(runs)} of {trials} trials finished:\n{sweep.output[-3000:]}")
    runs.sort(key=lambda r: r.info.start_time)
    # Overhead timings sit under perf/ on the runs (tracking.provenance.perf_key); fit_seconds does not.
    metric = lambda key: sum(r.data.metrics.get(perf_key(key), 0.0) for r in runs)  # noqa: E731
    inline = sum(r.data.tags.get(TAG_RECORDED_BY) == "trial" for r in runs)
    # A trial's run opens just after it starts and its metrics are logged just before it ends.
    first_start = runs[0].info.start_time / 1000
    last_end = max(r.info.end_time for r in runs) / 1000
    loop = last_end - first_start
    total = {
        key: metric(key)
        for key in (
            "fit_seconds",
            "epoch_log_seconds",
            "tune_seconds",
            "tracking_seconds",
            "artifacts_seconds",
            "model_log_seconds",
            "record_seconds",
            "trial_seconds",
        )
    }
    return {
        "wall_seconds": sweep.wall,
        "startup_seconds": first_start - sweep.started,  # imports, Ray start, data, parent run, first actor
        "finish_seconds": sweep.ended - last_end,  # summary read back from MLflow, Ray shutdown
        "loop_seconds": loop,
        "train_seconds": total["fit_seconds"] - total["epoch_log_seconds"] - total["tune_seconds"],
        **total,
        "between_trials_seconds": loop - total["trial_seconds"],  # Tune's loop, searcher, actor start
        # test evaluation, seeding, imports (the recorder's work is off the trial's path unless inline)
        "in_trial_rest_seconds": total["trial_seconds"] - total["fit_seconds"] - total["tracking_seconds"],
        "recorded_inline": inline,
        # Trials run one at a time: from one run's opening to the next's is one trial's cycle, and
        # its overhead is the cycle less its training (the last trial has no next; it is left out).
        "median_overhead_seconds": statistics.median(
            (after.info.start_time - run.info.start_time) / 1000 - _training(run) for run, after in zip(runs, runs[1:])
        ),
        "best_val_accuracy": max(r.data.metrics.get("val_accuracy", 0.0) for r in runs),
    }


def _median_over(run: dict, plain: dict) -> float | None:
    """The median trial's overhead over the plain loop's median trial (None for older results)."""
    if "median_overhead_seconds" not in run or "median_overhead_seconds" not in plain:
        return None
    return run["median_overhead_seconds"] - plain["median_overhead_seconds"]


def _training(run) -> float:
    metrics = run.data.metrics
    return (
        metrics["fit_seconds"]
        - metrics.get(perf_key("epoch_log_seconds"), 0.0)
        - metrics.get(perf_key("tune_seconds"), 0.0)
    )


def compare(plain: dict, sweep: dict, trials: int, *, ray_startup: dict, before: dict | None = None) -> list[dict]:
    """Rows of seconds; `before` is an earlier run's overhead.json (its scenesweep figures, each
    ratio against its own plain loop), or None."""
    per = lambda value: value / trials  # noqa: E731

    def figures(run: dict, plain: dict) -> list[float | None]:
        overhead = per(run["loop_seconds"] - run["train_seconds"])
        return [
            run["wall_seconds"],
            run["wall_seconds"] / plain["wall_seconds"],
            run["startup_seconds"],
            run["startup_seconds"] + run["finish_seconds"],
            per(run["train_seconds"]),
            overhead,
            overhead - per(plain["loop_seconds"] - plain["fit_seconds"]),
            _median_over(run, plain),
            per(run["between_trials_seconds"]),
            per(run["epoch_log_seconds"]),
            per(run["tracking_seconds"]),
            per(run["tune_seconds"]),
            per(run["in_trial_rest_seconds"]),
            per(run.get("record_seconds", 0.0)),
            per(run.get("artifacts_seconds", 0.0)),
            per(run["model_log_seconds"]),
        ]

    names = [
        "wall, total (s)",
        "wall ratio (x plain Optuna)",
        "time to first trial (s)",
        "start-up + finish, once (s)",
        "training, per trial",
        "OVERHEAD, per trial",
        "OVER PLAIN OPTUNA, per trial",
        "  median trial (steady state)",
        "  searcher / between trials",
        "  MLflow per-epoch logs",
        "  MLflow run, dataset, record hand-off",
        "  Tune reports + checkpoints",
        "  test evaluation, seeding, rest",
        "recorder, off the trial's path, per trial",
        "  figures, report, predictions",
        "  logged model",
    ]
    plain_overhead = per(plain["loop_seconds"] - plain["fit_seconds"])
    plain_column = [
        plain["wall_seconds"],
        1.0,
        plain["startup_seconds"],
        plain["startup_seconds"],
        per(plain["fit_seconds"]),
        plain_overhead,
        0.0,
        0.0,
        per(plain["searcher_seconds"]),
        0.0,
        0.0,
        0.0,
        per(plain["evaluate_seconds"]),
        0.0,
        0.0,
        0.0,
    ]
    old = figures(before["scenesweep"], before["plain"]) if before else [None] * len(names)
    rows = [
        {"seconds": name, "plain_optuna": a, "before": b, "scenesweep": c}
        for name, a, b, c in zip(names, plain_column, old, figures(sweep, plain))
    ]
    for part in ("import", "init", "first_task", "shutdown"):
        rows.append({"seconds": f"Ray {part.replace('_', ' ')}, once (s)", "scenesweep": ray_startup[part]})
    return rows


def build_parser():
    p = parser(__doc__.splitlines()[0])
    p.add_argument("--trials", type=int, default=50, help="trials in each run (default 50)")
    p.add_argument("--epochs", type=int, default=2, help="epochs per trial (default 2)")
    p.add_argument("--threads", type=int, default=0, help="threads per trial (default: every core)")
    p.add_argument("--baseline", help="an earlier overhead.json: its scenesweep figures become a 'before' column")
    return p


if __name__ == "__main__":
    import sys

    sys.exit(main(run, build_parser().parse_args()))
