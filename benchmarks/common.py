"""What every benchmark shares: flags, the machine it ran on, sweeps through the real CLI, results.

Each benchmark prints a table and writes one JSON file (`benchmarks/results/<name>.json`
unless `--results DIR`), holding its settings, the machine and the figures.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_DATA = ROOT.parent / "shared" / "data" / "mit_split_64"
RESULTS = ROOT / "benchmarks" / "results"
CACHE = RESULTS / "cache"  # decoded images, shared by the benchmarks' runs

os.environ.setdefault("MLFLOW_LOGGING_LEVEL", "WARNING")
os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")


class BenchmarkError(Exception):
    """Bad input for a benchmark: one line, exit code 2."""


def parser(description: str) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument(
        "--data",
        default=str(DEFAULT_DATA),
        help=f"MIT_split folder (default {DEFAULT_DATA}; 'demo' for the built-in data)",
    )
    parser.add_argument("--quick", action="store_true", help="a tiny run that checks the benchmark works (for tests)")
    parser.add_argument(
        "--results", default=str(RESULTS), help="folder for the JSON result (default benchmarks/results)"
    )
    return parser


def main(run, args) -> int:
    """Run `run(args) -> (name, payload, table)`, print the table, write the JSON; bad input exits 2."""
    try:
        check_data(args.data)
        name, payload, table = run(args)
    except BenchmarkError as exc:
        print(f"benchmark: error: {exc}", file=sys.stderr)
        return 2
    path = write_result(name, {"benchmark": name, "quick": args.quick, "machine": machine(), **payload}, args.results)
    print(table)
    print(f"\nmachine: {describe(machine())}\nresult: {path}")
    return 0


def check_data(data: str) -> None:
    if data != "demo" and not (Path(data) / "train").is_dir():
        raise BenchmarkError(
            f"--data {data} has no train/ folder; pass an MIT_split folder (e.g. ../shared/data/mit_split_64) or 'demo'"
        )


def machine() -> dict:
    import torch

    info = {
        "cpu": _cpu_model(),
        "cores": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count(),
        "memory_gib": round(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30, 1),
        "python": platform.python_version(),
        "torch": torch.__version__,
        "gpu": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None,
        "gpus": torch.cuda.device_count(),
    }
    try:
        info["load_average_1min"] = round(os.getloadavg()[0], 2)  # other work on the box skews timings
    except OSError:
        pass
    return info


def describe(info: dict) -> str:
    gpu = f", GPU {info['gpu']}" if info.get("gpu") else ", no GPU"
    return f"{info['cpu']}, {info['cores']} cores, {info['memory_gib']} GiB{gpu}, torch {info['torch']}"


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def write_result(name: str, payload: dict, folder: str) -> Path:
    path = Path(folder) / f"{name}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(payload, indent=2, default=str))
    return path


def format_table(rows: list[dict], columns: list[str]) -> str:
    cells = [[_cell(row.get(c)) for c in columns] for row in rows]
    widths = [max(len(c), *(len(r[i]) for r in cells)) for i, c in enumerate(columns)]
    lines = ["  ".join(c.ljust(w) for c, w in zip(columns, widths))]
    lines += ["  ".join(v.ljust(w) for v, w in zip(r, widths)) for r in cells]
    return "\n".join(lines)


def _cell(value) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.3g}" if abs(value) < 100 else f"{value:.0f}"
    return str(value)


# --- sweeps through the real CLI ------------------------------------------------------------


@dataclass(frozen=True)
class SweepRun:
    name: str
    uri: str
    workdir: Path
    started: float  # epoch seconds, just before the CLI process was started
    ended: float
    returncode: int
    output: str

    @property
    def wall(self) -> float:
        return self.ended - self.started


def run_sweep(*, name: str, workdir: Path, args: list[str], timeout: float = 3600) -> SweepRun:
    """`orchestrator.py sweep` in a subprocess, tracking into WORKDIR/mlruns.db; raises if it fails."""
    workdir.mkdir(parents=True, exist_ok=True)
    uri = f"sqlite:///{workdir / 'mlruns.db'}"
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    env.pop("RAY_ADDRESS", None)
    command = [
        sys.executable,
        str(ROOT / "orchestrator.py"),
        "sweep",
        "--name",
        name,
        "--tracking-uri",
        uri,
        "--storage",
        str(workdir / "sweeps"),
        *args,
    ]
    started = time.time()
    result = subprocess.run(
        command, cwd=workdir, env=env, stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=timeout
    )
    ended = time.time()
    output = result.stdout + result.stderr
    if result.returncode != 0:
        raise RuntimeError(f"sweep {name} failed with exit code {result.returncode}:\n{output[-4000:]}")
    return SweepRun(
        name=name, uri=uri, workdir=workdir, started=started, ended=ended, returncode=result.returncode, output=output
    )


def trial_runs_of(sweep: SweepRun) -> list:
    """The sweep's trial runs from MLflow (not its refit), oldest first."""
    from tracking.runs import TAG_ROLE, trial_runs

    client, target = _client_and_target(sweep)
    return [run for run in trial_runs(client, target) if run.data.tags.get(TAG_ROLE) == "trial"]


def _client_and_target(sweep: SweepRun):
    from mlflow.tracking import MlflowClient

    from tracking.runs import find_sweep_run, target_from_run

    client = MlflowClient(sweep.uri)
    return client, target_from_run(find_sweep_run(client, sweep.name))


def sweep_summary(sweep: SweepRun, *, metric: str = "val_accuracy", mode: str = "max"):
    """The sweep as `status`/`best` see it (tracking.summary.SweepSummary)."""
    from tracking.summary import summarise

    client, target = _client_and_target(sweep)
    return summarise(client, target, metric=metric, mode=mode)


def gpus_available() -> int:
    import torch

    return torch.cuda.device_count()
