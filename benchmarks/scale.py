"""Benchmark 5: scale. Many trivial trials through the full sweep path, and does the tracking keep up?

Starts the cluster tests' tracking topology on loopback (tests/topology.py): PostgreSQL as MLflow's
backend store, moto's S3 server for artifacts, an HTTP `mlflow server` proxying them (`--workers`).
Then runs `orchestrator.main(["sweep", ...])` in this process on an embedded Ray: Ray Tune + the
Optuna TPE searcher + one MLflow child run per trial, with per-epoch logs, artifacts and a logged
model, exactly as any sweep. The trainable is benchmarks/scale_family.py (softmax regression on
random features: a few hundred ms of real work), registered at run time.

While the sweep runs, a probe thread times representative calls against the server (log_batch,
get_run, search_runs) every --probe-every seconds. Afterwards every run is read back: N of N
FINISHED with their metrics, none RUNNING. Reported: trials/min (over the trial loop and over the
whole command), p50/p95 of per-trial bookkeeping on the trial's path (MLflow run, hand-off, Tune)
and of the recording off it (figures, model: each node's recorder),
server latency, the records, and TPE's suggest time on studies of 100 and 1,000 finished trials
(the searcher's cost as a sweep grows). Bounded: --trials, and --timeout (the sweep is stopped
and whatever was recorded is checked).

    python -m benchmarks.scale [--trials 1000] [--timeout 900] [--cpus-per-trial 0.5] [--quick]
"""

from __future__ import annotations

import os
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

from benchmarks.common import ROOT, BenchmarkError, format_table, main, parser
from tracking.provenance import perf_key
from tracking.runs import TAG_RECORDED_BY

EPOCHS = 3
PER_EPOCH = ("train_loss", "train_accuracy", "val_loss", "val_accuracy")
FINAL = ("test_accuracy", "test_loss", "params", "fit_seconds", "trial_seconds")
BOOKKEEPING = ("tracking_seconds", "epoch_log_seconds", "tune_seconds")  # on the trial's path
RECORDING = ("record_seconds", "artifacts_seconds", "model_log_seconds")  # by its node's recorder, off the path


def run(args):
    trials = 20 if args.quick else args.trials
    suggest_at = (20, 100) if args.quick else (100, 1000)
    if trials < 1 or args.timeout <= 0:
        raise BenchmarkError("--trials must be at least 1 and --timeout positive")
    from benchmarks.servers import MlflowServer, Postgres, S3Server, Unavailable  # the cluster tests' servers

    load_before = os.getloadavg()[0]
    suggest = {str(n): tpe_suggest_seconds(n) for n in suggest_at}
    with tempfile.TemporaryDirectory(prefix="bench-scale-") as folder:
        root = Path(folder)
        try:
            postgres = Postgres()
        except Unavailable as exc:
            raise BenchmarkError(f"{exc}; the scale benchmark needs PostgreSQL") from None
        s3 = mlflow = None
        try:
            (root / "s3").mkdir()
            (root / "mlflow").mkdir()
            s3 = S3Server(root / "s3")
            os.environ.update(s3.env)  # the server reads S3 with these; clients never touch S3 (proxied)
            mlflow = start_mlflow(MlflowServer, root / "mlflow", postgres=postgres, s3=s3, workers=args.server_workers)
            sweep = sweep_and_probe(root, mlflow.uri, trials=trials, args=args)
            records = read_back(mlflow.uri, sweep["name"], trials)
        finally:
            for server in (mlflow, s3):
                if server is not None:
                    server.stop()
            postgres.stop()
    figures = summarise(sweep, records, trials)
    load = [round(load_before, 2), round(os.getloadavg()[0], 2)]
    payload = {
        "settings": {
            "trials": trials,
            "epochs": EPOCHS,
            "cpus_per_trial": args.cpus_per_trial,
            "server_workers": args.server_workers,
            "timeout": args.timeout,
            "backend": "postgresql + S3 (moto), proxied artifacts",
        },
        "figures": figures,
        "server_latency_ms": sweep["latency"],
        "tpe_suggest_seconds": suggest,
        "records": {k: v for k, v in records.items() if k != "runs"},
        "load_average_before_after": load,
    }
    rows = [{"figure": k, "value": v} for k, v in figures.items()]
    rows += [
        {"figure": f"server {call} p50 / p95 (ms)", "value": f"{v['p50']:.0f} / {v['p95']:.0f} (n={v['n']})"}
        for call, v in sweep["latency"].items()
    ]
    rows += [{"figure": f"TPE suggest at {n} trials (s)", "value": v} for n, v in suggest.items()]
    rows.append({"figure": "load average before / after", "value": f"{load[0]} / {load[1]}"})
    table = format_table(rows, ["figure", "value"])
    problems = records["problems"]
    if problems:
        table += "\nproblems (first 5): " + "; ".join(str(p) for p in problems[:5])
    return "scale", payload, table


def start_mlflow(server_class, root: Path, *, postgres, s3, workers: int, attempts: int = 3):
    """The MLflow server on PostgreSQL + S3; a loaded machine can keep it from answering in time,
    so it gets more than one try."""
    for attempt in range(1, attempts + 1):
        try:
            return server_class(
                root,
                backend_uri=postgres.uri,
                artifacts=f"s3://{s3.bucket}/artifacts",
                extra_args=["--workers", str(workers)],
                env=s3.env,
            )
        except TimeoutError as exc:
            if attempt == attempts:
                raise BenchmarkError(f"the MLflow server did not start ({exc}); see {root / 'server.log'}") from None
            print(f"scale: the MLflow server did not answer in time (attempt {attempt}); starting it again")
    raise AssertionError("unreachable")


def sweep_and_probe(root: Path, uri: str, *, trials: int, args) -> dict:
    """The sweep through the CLI's own entry point in this process, with the probe thread beside it."""
    import mlflow.tracking  # noqa: F401  imported here first: two threads importing MLflow at once break it
    import ray

    import benchmarks.scale_family  # noqa: F401  registers the family in this (driver) process
    import orchestrator
    import serving.explanations  # noqa: F401  what orchestrator.main imports late, also before the probe starts

    # Ray's workers import benchmarks.scale_family from here (they start with this environment).
    os.environ["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))
    ray.shutdown()
    name = "scale"
    stop = threading.Event()
    latency: dict[str, list[float]] = {}
    probe = threading.Thread(target=probe_server, args=(uri, stop, latency, args.probe_every), daemon=True)
    timer = threading.Timer(args.timeout, _interrupt_main)  # Tune stops the trials and saves on SIGINT
    argv = [
        "sweep",
        "--space",
        "scale_softmax",
        "--data",
        "demo",
        "--samples",
        str(trials),
        "--epochs",
        str(EPOCHS),
        "--scheduler",
        "fifo",
        "--no-refit",  # trials per minute of the search
        "--cpus-per-trial",
        str(args.cpus_per_trial),
        "--name",
        name,
        "--experiment",
        "scale",
        "--tracking-uri",
        uri,
        "--storage",
        str(root / "sweeps"),
    ]
    started = time.time()
    probe.start()
    timer.start()
    try:
        code = orchestrator.main(argv)
    except KeyboardInterrupt:
        code = 130
    finally:
        timer.cancel()
        stop.set()
        probe.join()
        ray.shutdown()
    ended = time.time()
    return {
        "name": name,
        "code": code,
        "started": started,
        "ended": ended,
        "timed_out": ended - started >= args.timeout,
        "latency": {call: percentiles(values) for call, values in latency.items()},
    }


def _interrupt_main() -> None:
    import _thread

    _thread.interrupt_main()


def probe_server(uri: str, stop: threading.Event, latency: dict, every: float) -> None:
    """Time what trials and the UI ask of the server, on a run of its own, while the sweep runs."""
    from mlflow.entities import Metric
    from mlflow.tracking import MlflowClient

    client = MlflowClient(uri)
    while not stop.is_set():  # the sweep creates the experiment
        experiment = client.get_experiment_by_name("scale")
        if experiment is not None:
            break
        stop.wait(1.0)
    else:
        return
    run_id = client.create_run(experiment.experiment_id, run_name="probe", tags={"scale.probe": "true"}).info.run_id
    step = 0
    while not stop.wait(every):
        step += 1
        calls = {
            "log_batch": lambda step=step: client.log_batch(
                run_id, metrics=[Metric(k, 0.5, int(time.time() * 1000), step) for k in PER_EPOCH]
            ),
            "get_run": lambda: client.get_run(run_id),
            "search_runs": lambda: client.search_runs(
                [experiment.experiment_id], "tags.`scenesweep.role` = 'trial'", max_results=100
            ),
        }
        for call, fn in calls.items():
            began = time.perf_counter()
            try:
                fn()
            except Exception:  # noqa: BLE001  a refused or failed call is what we want to see, not hide
                latency.setdefault(f"{call} errors", []).append(0.0)
                continue
            latency.setdefault(call, []).append((time.perf_counter() - began) * 1000)
    client.set_terminated(run_id)


def read_back(uri: str, sweep: str, expected: int) -> dict:
    """Every child run: FINISHED, with each per-epoch metric at every epoch and the final metrics."""
    from mlflow.tracking import MlflowClient

    from tracking.runs import find_sweep_run, target_from_run, trial_runs

    client = MlflowClient(uri)
    parent = find_sweep_run(client, sweep)
    runs = trial_runs(client, target_from_run(parent)) if parent is not None else []
    statuses: dict[str, int] = {}
    problems, complete = [], 0
    for run in runs:
        statuses[run.info.status] = statuses.get(run.info.status, 0) + 1
        missing = [k for k in (*PER_EPOCH, *FINAL) if perf_key(k) not in run.data.metrics]
        if run.info.status == "FINISHED" and not missing:
            complete += 1
        else:
            problems.append({"run": run.info.run_id, "status": run.info.status, "missing": missing})
    # Curves at every epoch, checked on a sample (one history request per run and metric).
    for run in runs[:: max(1, len(runs) // 20)]:
        steps = sorted(m.step for m in client.get_metric_history(run.info.run_id, "val_accuracy"))
        if run.info.status == "FINISHED" and steps[:EPOCHS] != list(range(1, EPOCHS + 1)):
            problems.append({"run": run.info.run_id, "val_accuracy steps": steps})
    return {
        "expected": expected,
        "recorded": len(runs),
        "complete": complete,
        "statuses": statuses,
        "problems": problems[:20],
        "runs": runs,
    }


def summarise(sweep: dict, records: dict, trials: int) -> dict:
    runs = [r for r in records["runs"] if r.info.end_time]
    figures: dict = {
        "exit code": sweep["code"],
        "stopped by --timeout": sweep["timed_out"],
        "runs recorded / complete / expected": f"{records['recorded']} / {records['complete']} / {trials}",
        "run statuses": ", ".join(f"{v} {k}" for k, v in sorted(records["statuses"].items())),
        "wall, whole command (s)": round(sweep["ended"] - sweep["started"], 1),
    }
    if runs:
        first = min(r.info.start_time for r in runs) / 1000
        last = max(r.info.end_time for r in runs) / 1000
        loop = max(last - first, 1e-9)
        bookkeeping = [sum(r.data.metrics.get(perf_key(k), 0.0) for k in BOOKKEEPING) for r in runs]
        training = [r.data.metrics.get("fit_seconds", 0.0) for r in runs]
        figures.update(
            {
                "time to first trial (s)": round(first - sweep["started"], 1),
                "trials/min, trial loop": round(len(runs) / loop * 60, 1),
                "trials/min, whole command": round(len(runs) / (sweep["ended"] - sweep["started"]) * 60, 1),
                "per-trial bookkeeping p50 / p95 (s)": "{:.3f} / {:.3f}".format(*_p50_p95(bookkeeping)),
                "per-trial training p50 / p95 (s)": "{:.3f} / {:.3f}".format(*_p50_p95(training)),
            }
        )
        for key in BOOKKEEPING + RECORDING:
            values = [r.data.metrics.get(perf_key(key), 0.0) for r in runs]
            figures[f"  {key} p50 / p95"] = "{:.3f} / {:.3f}".format(*_p50_p95(values))
        inline = sum(r.data.tags.get(TAG_RECORDED_BY) == "trial" for r in runs)
        figures["recorded by the node's recorder / inline"] = f"{len(runs) - inline} / {inline}"
    return figures


def tpe_suggest_seconds(finished: int, *, asks: int = 5) -> float:
    """Median seconds of one TPE suggestion (ask + the family's space) on a study of `finished` trials."""
    import optuna

    import benchmarks.scale_family as family
    from sweep.samplers import make_sampler

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(direction="maximize", sampler=make_sampler("tpe", seed=0, samples=finished))
    filler = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0))
    for index in range(finished):  # random finished trials, cheaply (no TPE while filling)
        trial = filler.ask()
        family.suggest(trial)
        study.add_trial(
            optuna.trial.create_trial(params=trial.params, distributions=trial.distributions, value=(index % 97) / 97)
        )
    seconds = []
    for _ in range(asks):
        began = time.perf_counter()
        trial = study.ask()
        family.suggest(trial)
        seconds.append(time.perf_counter() - began)
        study.tell(trial, 0.5)
    return round(statistics.median(seconds), 4)


def percentiles(values: list[float]) -> dict:
    p50, p95 = _p50_p95(values)
    return {"n": len(values), "p50": p50, "p95": p95}


def _p50_p95(values: list[float]) -> tuple[float, float]:
    if not values:
        return float("nan"), float("nan")
    ordered = sorted(values)
    return statistics.median(ordered), ordered[min(len(ordered) - 1, int(round(0.95 * (len(ordered) - 1))))]


def build_parser():
    p = parser(__doc__.splitlines()[0])
    p.set_defaults(data="demo")  # the built-in images: the trainable is trivial, the data is not the point
    p.add_argument("--trials", type=int, default=1000, help="trials in the sweep (default 1000)")
    p.add_argument("--timeout", type=float, default=1800, help="stop the sweep after this many seconds (default 1800)")
    p.add_argument(
        "--cpus-per-trial", type=float, default=0.5, help="CPUs per trial: 0.5 on 2 cores = 4 at once (default 0.5)"
    )
    p.add_argument("--server-workers", type=int, default=4, help="MLflow server worker processes (default 4)")
    p.add_argument("--probe-every", type=float, default=5.0, help="seconds between server latency probes (default 5)")
    return p


if __name__ == "__main__":
    sys.exit(main(run, build_parser().parse_args()))
