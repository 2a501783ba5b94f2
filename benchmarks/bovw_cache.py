"""BoVW on the real data: one trial with a cold vs a warm descriptor cache, and a TPE sweep.

    flock /work/wt/.bench.lock .venv/bin/python benchmarks/bovw_cache.py [--part cache|sweep|both]

`cache`: the paper's configuration (search_spaces/bovw.py PAPER_BEST) trained and
tested twice through `fit_and_evaluate` with one fresh cache folder: the first
run extracts every descriptor, the second reads them back. Prints both times,
their ratio and checks both runs scored the same.

`sweep`: `orchestrator.py sweep --space bovw` through the real CLI (embedded
Ray, sqlite MLflow in a temporary folder): TPE over the space with the
descriptor settings pinned (`--fix`, default: dense SIFT on images upscaled to
128, step 8, sizes 8 and 16, grey) so that every trial reuses one cache entry.
Reports wall time, the best trial by cv_accuracy and that trial's test accuracy.

Both print a table and write JSON under benchmarks/results/.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
DEFAULT_DATA = os.environ.get("MIT_SPLIT_64") or next(
    (
        str(p)
        for p in (ROOT.parent / "shared/data/mit_split_64", ROOT.parents[1] / "shared/data/mit_split_64")
        if (p / "train").is_dir()
    ),
    str(ROOT.parent / "shared/data/mit_split_64"),
)
SWEEP_PINS = ["descriptor=dense_sift", "upscale=2", "dense_step=8", "patch_sizes=8,16", "color=grey"]


def machine() -> str:
    return f"{platform.machine()} {os.cpu_count()} CPUs, {platform.python_implementation()} {platform.python_version()}"


def bench_cache(data: str, cpus: int, folds: int) -> dict:
    from search_spaces.bovw import PAPER_BEST
    from trainables.core.data import DataSpec, load_dataset
    from trainables.core.session import TrialSession
    from trainables.training import fit_and_evaluate, seed_everything, set_threads

    set_threads(cpus)
    with tempfile.TemporaryDirectory(prefix="bovw-bench-") as folder:
        dataset = load_dataset(DataSpec(source=data, cache_dir=folder))
        runs = []
        for label in ("cold", "warm"):
            seed_everything(0)
            session = TrialSession(max_epochs=1, threads=cpus, options={"cache_dir": folder, "cv_folds": folds})
            started = time.perf_counter()
            outcome = fit_and_evaluate(PAPER_BEST, dataset, "bovw", session)
            seconds = time.perf_counter() - started
            metrics = outcome.metrics
            runs.append(
                {
                    "cache": label,
                    "trial_seconds": round(seconds, 1),
                    "extract_seconds": round(metrics["descriptor_extract_seconds"], 1),
                    "load_seconds": round(metrics["descriptor_load_seconds"], 2),
                    "hits": metrics["descriptor_cache_hits"],
                    "misses": metrics["descriptor_cache_misses"],
                    "cv_accuracy": round(metrics["cv_accuracy"], 4),
                    "test_accuracy": round(metrics["test_accuracy"], 4),
                }
            )
    cold, warm = runs
    assert cold["test_accuracy"] == warm["test_accuracy"], "a warm cache changed the result"
    return {
        "config": PAPER_BEST,
        "cpus": cpus,
        "cv_folds": folds,
        "runs": runs,
        "cold_over_warm": round(cold["trial_seconds"] / warm["trial_seconds"], 2),
    }


def bench_sweep(data: str, samples: int, cpus: int, concurrent: int, folds: int, pins: list[str]) -> dict:
    from mlflow.tracking import MlflowClient

    from tracking.runs import find_sweep_run, target_from_run
    from tracking.summary import summarise

    with tempfile.TemporaryDirectory(prefix="bovw-sweep-") as folder:
        uri = f"sqlite:///{folder}/mlruns.db"
        command = [
            sys.executable,
            str(ROOT / "orchestrator.py"),
            "sweep",
            "--space",
            "bovw",
            "--data",
            data,
            "--samples",
            str(samples),
            "--search",
            "tpe",
            "--seed",
            "0",
            "--name",
            "bovw-bench",
            "--cpus-per-trial",
            str(cpus),
            "--max-concurrent",
            str(concurrent),
            "--cv-folds",
            str(folds),
            "--tracking-uri",
            uri,
            "--storage",
            f"{folder}/sweeps",
            *[arg for pin in pins for arg in ("--fix", pin)],
        ]
        started = time.perf_counter()
        done = subprocess.run(command, cwd=folder, capture_output=True, text=True)
        wall = time.perf_counter() - started
        if done.returncode != 0:
            raise SystemExit(f"sweep failed ({done.returncode}):\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}")
        client = MlflowClient(uri)
        summary = summarise(
            client, target_from_run(find_sweep_run(client, "bovw-bench")), metric="cv_accuracy", mode="max"
        )
        ranked = summary.ranked()
        best = ranked[0]
        return {
            "command": " ".join(["orchestrator.py", *command[2:]]).replace(folder, "TMP"),
            "samples": samples,
            "cpus_per_trial": cpus,
            "max_concurrent": concurrent,
            "cv_folds": folds,
            "pins": pins,
            "wall_seconds": round(wall, 1),
            "counts": dict(summary.counts()),
            "best_trial": best.trial_id,
            "best_cv_accuracy": round(best.metrics["cv_accuracy"], 4),
            "best_cv_accuracy_std": round(best.metrics.get("cv_accuracy_std", float("nan")), 4),
            "best_test_accuracy": round(best.metrics["test_accuracy"], 4),
            "best_config": best.config,
            "paper_config_cv_accuracy": next(
                (
                    round(r.metrics["cv_accuracy"], 4)
                    for r in summary.rows
                    if r.params.get("gmm_components") == "16" and r.status == "FINISHED"
                ),
                None,
            ),
            "top5": [
                {
                    "trial": r.trial_id,
                    "cv_accuracy": round(r.metrics["cv_accuracy"], 4),
                    "test_accuracy": round(r.metrics["test_accuracy"], 4),
                    "fit_seconds": round(r.metrics["fit_seconds"], 1),
                }
                for r in ranked[:5]
            ],
            "errors": dict(summary.errors),
        }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--part", choices=["cache", "sweep", "both"], default="both")
    parser.add_argument("--data", default=DEFAULT_DATA)
    parser.add_argument("--samples", type=int, default=30)
    parser.add_argument("--cpus", type=int, default=2, help="threads for the cache trial (default 2)")
    parser.add_argument("--cpus-per-trial", type=int, default=1)
    parser.add_argument("--max-concurrent", type=int, default=2)
    parser.add_argument("--cv-folds", type=int, default=8)
    parser.add_argument("--fix", action="append", default=None, help="sweep pins (default: the dense SIFT settings)")
    parser.add_argument(
        "--results",
        default=str(ROOT / "benchmarks" / "results"),
        help="folder for the JSON results (default benchmarks/results)",
    )
    args = parser.parse_args()
    out = Path(args.results)
    out.mkdir(parents=True, exist_ok=True)
    if args.part in ("cache", "both"):
        result = {"machine": machine(), "data": args.data, **bench_cache(args.data, args.cpus, args.cv_folds)}
        (out / "bovw_cache.json").write_text(json.dumps(result, indent=2))
        print(f"\nBoVW trial, paper config, {args.cpus} threads ({result['machine']})")
        print(f"{'cache':6} {'trial_s':>8} {'extract_s':>10} {'load_s':>7} {'cv_acc':>7} {'test_acc':>8}")
        for run in result["runs"]:
            print(
                f"{run['cache']:6} {run['trial_seconds']:8.1f} {run['extract_seconds']:10.1f} {run['load_seconds']:7.2f} "
                f"{run['cv_accuracy']:7.4f} {run['test_accuracy']:8.4f}"
            )
        print(f"cold / warm: {result['cold_over_warm']:.2f}x")
    if args.part in ("sweep", "both"):
        pins = args.fix if args.fix is not None else SWEEP_PINS
        result = {
            "machine": machine(),
            "data": args.data,
            **bench_sweep(args.data, args.samples, args.cpus_per_trial, args.max_concurrent, args.cv_folds, pins),
        }
        (out / "bovw_sweep.json").write_text(json.dumps(result, indent=2))
        print(f"\nBoVW TPE sweep, {args.samples} trials ({result['machine']})")
        print(f"wall {result['wall_seconds'] / 60:.1f} min, trials {result['counts']}")
        print(
            f"best {result['best_trial']}: cv_accuracy {result['best_cv_accuracy']:.4f} ± {result['best_cv_accuracy_std']:.4f}, "
            f"test_accuracy {result['best_test_accuracy']:.4f}"
        )
        print("config: " + json.dumps(result["best_config"], sort_keys=True))
        for row in result["top5"]:
            print(
                f"  {row['trial']}  cv {row['cv_accuracy']:.4f}  test {row['test_accuracy']:.4f}  fit {row['fit_seconds']:.0f}s"
            )


if __name__ == "__main__":
    main()
