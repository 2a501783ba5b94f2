"""Load on the tracking server: a 200-trial sweep of 1-epoch trials at maximum concurrency.

Starts its own MLflow server over HTTP (PostgreSQL backend when the PostgreSQL server binaries are
present, else sqlite), runs the real CLI against it on an embedded Ray, then reads everything back:
every child run present and FINISHED with every per-epoch and final metric and its artifacts. Prints
a table and writes benchmarks/results/load_tracking.json. Not a test: run it alone, e.g.

    flock /work/wt/.bench.lock .venv/bin/python benchmarks/load_tracking.py [--trials 200]
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

from benchmarks.servers import MlflowServer, Postgres, Unavailable, cli_env  # noqa: E402

EPOCH_METRICS = ("train_loss", "train_accuracy", "val_loss", "val_accuracy", "epoch_seconds", "lr")
FINAL_METRICS = ("test_accuracy", "test_loss", "params", "accuracy_per_param", "fit_seconds")
ARTIFACTS = {"confusion_matrix.svg", "classification_report.json", "test_predictions.json", "learning_curves.svg"}
SMALL = [
    "--fix",
    "input_size=32",
    "--fix",
    "base_width=8",
    "--fix",
    "blocks=3",
    "--fix",
    "kernel_size=3",
    "--fix",
    "convs_per_block=1",
]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=200)
    parser.add_argument(
        "--cpus-per-trial",
        type=float,
        default=0.25,
        help="CPUs per trial: 0.25 on 2 cores = 8 trials at once (default 0.25)",
    )
    parser.add_argument(
        "--results",
        default=str(ROOT / "benchmarks" / "results"),
        help="folder for the JSON result (default benchmarks/results)",
    )
    args = parser.parse_args()

    workdir = Path(tempfile.mkdtemp(prefix="scenesweep-load-"))
    postgres = None
    try:
        postgres = Postgres()
        backend = postgres.uri
    except Unavailable as exc:
        print(f"note: {exc}; using sqlite", file=sys.stderr)
        backend = None
    (workdir / "mlflow").mkdir()
    server = MlflowServer(workdir / "mlflow", backend_uri=backend, extra_args=["--workers", "4"])
    try:
        name = "load"
        load_before = os.getloadavg()[0]  # other work on the machine skews the figure: say how much
        started = time.perf_counter()
        result = subprocess.run(
            [
                sys.executable,
                str(ROOT / "orchestrator.py"),
                "sweep",
                "--data",
                "demo",
                "--samples",
                str(args.trials),
                "--epochs",
                "1",
                "--scheduler",
                "fifo",
                "--no-refit",  # the trials' load on the server
                "--cpus-per-trial",
                str(args.cpus_per_trial),
                "--name",
                name,
                "--experiment",
                "load",
                "--tracking-uri",
                server.uri,
                *SMALL,
            ],
            cwd=workdir,
            env=cli_env(),
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
        )
        wall = time.perf_counter() - started
        (workdir / "sweep.log").write_text(result.stdout + result.stderr)
        check = read_back(server.uri, name, args.trials)
    finally:
        server.stop()
        if postgres is not None:
            postgres.stop()

    figures = {
        "trials": args.trials,
        "concurrency": int(round(os.cpu_count() / args.cpus_per_trial)),
        "exit_code": result.returncode,
        "wall_seconds": round(wall, 1),
        "trials_per_minute": round(args.trials / (wall / 60), 2),
        **check,
        "backend": "postgresql" if backend else "sqlite",
        "machine": f"{platform.node()}: {os.cpu_count()} CPUs, {platform.machine()}",
        "load_average_before_after": [round(load_before, 1), round(os.getloadavg()[0], 1)],
    }
    width = max(map(len, figures))
    for key, value in figures.items():
        print(f"{key.ljust(width)}  {value}")
    output = Path(args.results) / "load_tracking.json"
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_text(json.dumps(figures, indent=2) + "\n")
    print(f"log: {workdir / 'sweep.log'}\nwrote {output}")
    ok = result.returncode == 0 and check["complete_runs"] == args.trials and not check["problems"]
    return 0 if ok else 1


def read_back(uri: str, sweep: str, expected: int) -> dict:
    """Every child run, its status, every metric (per-epoch at step 1 and final) and artifacts."""
    from mlflow.tracking import MlflowClient

    client = MlflowClient(uri)
    experiment = client.get_experiment_by_name("load")
    runs, token = [], None
    while True:
        page = client.search_runs(
            [experiment.experiment_id], f"tags.`scenesweep.sweep` = '{sweep}'", max_results=1000, page_token=token
        )
        runs += page
        token = page.token
        if not token:
            break
    children = [r for r in runs if r.data.tags.get("scenesweep.role") == "trial"]
    problems, complete = [], 0
    for run in children:
        missing = [k for k in (*EPOCH_METRICS, *FINAL_METRICS) if k not in run.data.metrics]
        steps = {k: [m.step for m in client.get_metric_history(run.info.run_id, k)] for k in EPOCH_METRICS}
        artifacts = {a.path for a in client.list_artifacts(run.info.run_id)}
        if (
            run.info.status != "FINISHED"
            or missing
            or any(s != [1] for s in steps.values())
            or not ARTIFACTS <= artifacts
        ):
            problems.append(
                {
                    "run": run.info.run_id,
                    "status": run.info.status,
                    "missing": missing,
                    "error": run.data.tags.get("scenesweep.error", ""),
                }
            )
        else:
            complete += 1
    return {
        "child_runs": len(children),
        "complete_runs": complete,
        "expected_runs": expected,
        "problems": problems[:10],
    }


if __name__ == "__main__":
    sys.exit(main())
