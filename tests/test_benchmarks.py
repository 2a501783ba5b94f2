"""Each benchmark runs end to end at its --quick size, and so does the prepared device check on CPU.

The data is a small MIT_split tree written from the built-in demo images, so the
tutorial baseline's ImageFolder path runs too; timings are not asserted (speed
targets live in benchmarks/ and the README, not in tests).
"""

import json
import math
import os
import subprocess
import sys

import pytest

from benchmarks.search_ablation import ARMS
from tests.conftest import ROOT, missing

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def mit_split_tree(tmp_path_factory, demo_dataset):
    from trainables.core.images import encode_png

    root = tmp_path_factory.mktemp("mit-split-tiny")
    for split, images, labels, count in (
        ("train", demo_dataset.x_train, demo_dataset.y_train, 6),
        ("test", demo_dataset.x_test, demo_dataset.y_test, 2),
    ):
        for label, name in enumerate(demo_dataset.class_names):
            folder = root / split / name
            folder.mkdir(parents=True)
            for index in (labels == label).nonzero()[0][:count]:
                (folder / f"{index}.png").write_bytes(encode_png(images[index]))
    return root


def bench_env(tmp_path):
    env = {**os.environ, "PYTHONUNBUFFERED": "1", "PYTHON": sys.executable}
    for inherited in ("MLFLOW_TRACKING_URI", "RAY_ADDRESS", "OUT"):
        env.pop(inherited, None)
    return env


def run_benchmark(module: str, *args: str, tmp_path, timeout: float) -> subprocess.CompletedProcess:
    """`python -m benchmarks.MODULE ARGS...` from the project root, as a user runs it."""
    return subprocess.run(
        [sys.executable, "-m", f"benchmarks.{module}", *args],
        cwd=ROOT,
        env=bench_env(tmp_path),
        capture_output=True,
        text=True,
        timeout=timeout,
    )


@pytest.fixture
def postgres_binaries():
    """The scale benchmark starts PostgreSQL (tests/topology.py); without its binaries this says so."""
    from benchmarks.servers import Unavailable, postgres_bin

    try:
        postgres_bin()
    except Unavailable as exc:
        missing(f"{exc}: the scale benchmark needs it (make system-deps)")


def test_gpu_check_runs_all_five_benchmarks_small_on_cpu(mit_split_tree, tmp_path, postgres_binaries):
    out = tmp_path / "out"
    env = {**bench_env(tmp_path), "OUT": str(out), "BENCH_DATA": str(mit_split_tree)}
    result = subprocess.run(
        ["bash", str(ROOT / "benchmarks" / "gpu_check.sh"), "--small"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=1800,
    )
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-2000:]
    assert "mode small" in result.stdout
    throughput = json.loads((out / "throughput.json").read_text())
    trainers = [(row["trainer"], row["precision"]) for row in throughput["rows"]]
    assert trainers[0] == ("tutorial", "fp32") and ("scenesweep", "fp32") in trainers
    for row in throughput["rows"]:  # measured, and consistent with each other
        assert math.isfinite(row["epoch_seconds"]) and row["epoch_seconds"] > 0, row
        assert row["images_per_second"] * row["epoch_seconds"] == pytest.approx(throughput["settings"]["train_images"])
        assert row["cpu_seconds_per_epoch"] > 0 and 0 <= row["val_accuracy"] <= 1, row
    tutorial = throughput["rows"][0]
    for row in throughput["rows"]:
        assert row["speedup_vs_tutorial"] == pytest.approx(tutorial["epoch_seconds"] / row["epoch_seconds"], rel=0.02)
    assert throughput["machine"]["cores"] >= 1
    tta = json.loads((out / "time_to_accuracy.json").read_text())
    # --quick's target is 0: any validation value reaches it, so what is checked is that the sweep's own
    # curve says so: the first point at or above the target is where the sweep reached it.
    # (a two-epoch run on the small tree can score 0: the values must be there and be accuracies)
    assert tta["trials"] >= 1 and 0 <= tta["best_val_accuracy"] <= 1 and 0 <= tta["best_test_accuracy"] <= 1
    assert tta["reached"] == (tta["best_val_accuracy"] >= tta["target_val_accuracy"])
    assert 0 < tta["seconds_to_target"] <= tta["sweep_seconds"] and tta["reached_at_epoch"] >= 1
    packing = json.loads((out / "packing.json").read_text())
    assert [row["trials"] for row in packing["rows"]] == [2] and packing["rows"][0]["trials_per_hour"] > 0
    # The overhead and scale benchmarks run only here (each on its own would start all over again).
    overhead = json.loads((out / "overhead.json").read_text())
    assert overhead["settings"]["trials"] == 3 and overhead["ray_startup"]["init"] > 0
    rows = {row["seconds"].strip(): row for row in overhead["rows"]}
    assert rows["OVERHEAD, per trial"]["scenesweep"] > 0 and rows["training, per trial"]["plain_optuna"] > 0
    wall = rows["wall, total (s)"]
    assert wall["plain_optuna"] > 0 and wall["scenesweep"] > 0
    assert rows["wall ratio (x plain Optuna)"]["scenesweep"] == pytest.approx(
        wall["scenesweep"] / wall["plain_optuna"], rel=0.02
    )
    assert 0 < rows["time to first trial (s)"]["scenesweep"] < wall["scenesweep"]
    # The model is logged off the trial's path, by its node's recorder; the median trial is reported too.
    assert 0 < rows["logged model"]["scenesweep"] <= rows["recorder, off the trial's path, per trial"]["scenesweep"]
    assert rows["median trial (steady state)"]["scenesweep"] is not None
    assert "OVERHEAD, per trial" in (out / "overhead.log").read_text()  # its table is printed
    scale = json.loads((out / "scale.json").read_text())  # 20 trivial trials, MLflow server on PostgreSQL + S3
    records = scale["records"]
    assert records["recorded"] == records["complete"] == scale["settings"]["trials"] == 20
    assert records["statuses"] == {"FINISHED": 20} and not records["problems"]
    assert scale["figures"]["trials/min, trial loop"] > 0 and scale["figures"]["exit code"] == 0
    assert scale["server_latency_ms"]["log_batch"]["n"] >= 1 and set(scale["tpe_suggest_seconds"]) == {"20", "100"}
    assert "per-trial bookkeeping p50 / p95 (s)" in (out / "scale.log").read_text()
    assert sorted(p.name for p in out.iterdir() if p.suffix == ".json") == [
        "overhead.json",
        "packing.json",
        "scale.json",
        "throughput.json",
        "time_to_accuracy.json",
    ]


def test_a_benchmark_without_data_says_so_in_one_line(tmp_path):
    result = run_benchmark(
        "throughput", "--data", str(tmp_path / "missing"), "--results", str(tmp_path), tmp_path=tmp_path, timeout=120
    )
    assert result.returncode == 2
    assert result.stderr.strip().count("\n") == 0 and "has no train/ folder" in result.stderr


def test_search_quality_runs_every_arm_within_a_tiny_budget(tmp_path):
    results = tmp_path / "results"
    result = run_benchmark(
        "search_quality",
        "--data",
        "demo",
        "--quick",
        "--budget",
        "12s",
        "--results",
        str(results),
        tmp_path=tmp_path,
        timeout=1200,
    )
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-2000:]
    payload = json.loads((results / "search_quality.json").read_text())
    assert (results / "search_quality.png").read_bytes()[:4] == b"\x89PNG"
    arms = payload["arms"]
    assert list(arms) == ["default", "random_asha", "plain_optuna", "paper_default"]
    assert payload["settings"]["budget_seconds"] == 12
    for name in ("plain_optuna", "paper_default"):  # in this process: nothing to start, always a result
        assert 0 < arms[name]["best_test_accuracy"] <= 1 and arms[name]["curve"]
    assert arms["paper_default"]["wall_seconds"] < 12 + 60  # the budget plus at most one epoch and the test pass
    sweeps = [arms[name] for name in ("default", "random_asha")]
    # A loaded box may start no trial of one sweep arm in time (then it says why), never of both.
    assert any(arm["curve"] for arm in sweeps), sweeps
    for arm in sweeps:
        curve = arm["curve"]
        assert curve or arm["error"], arm
        assert all(0 < value <= 1 for _, value in curve)
        assert all(a[1] < b[1] for a, b in zip(curve, curve[1:]))  # best so far only ever improves


def test_search_ablation_runs_every_arm_with_its_rules(tmp_path):
    results = tmp_path / "results"
    result = run_benchmark(
        "search_ablation",
        "--data",
        "demo",
        "--quick",
        "--budget",
        "4s",
        "--seeds",
        "3",
        "--results",
        str(results),
        tmp_path=tmp_path,
        timeout=600,
    )
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-2000:]
    payload = json.loads((results / "search_ablation.json").read_text())
    assert (results / "search_ablation.png").read_bytes()[:4] == b"\x89PNG"
    assert payload["settings"]["seeds"] == [3] and payload["settings"]["concurrent"] == 2
    runs = payload["arms"]
    assert [r["arm"] for r in runs.values()] == ["all_rules", "told_complete", "no_liar", "no_chance_stop"]
    for run in runs.values():
        # The two starts run first, so every arm finishes trials within even a tiny budget.
        assert run["seed"] == 3 and run["trials"] >= run["finished"] >= 1 and 0 < run["best_test_accuracy"] <= 1
    assert set(payload["mean"]) == set(ARMS) and "all_rules (mean)" in result.stdout


def test_search_ablation_refuses_an_unknown_arm_in_one_line(tmp_path):
    result = run_benchmark(
        "search_ablation", "--data", "demo", "--arms", "all_rules,no_tpe", tmp_path=tmp_path, timeout=120
    )
    assert result.returncode == 2 and result.stderr.strip() == (
        "benchmark: error: --arms: no arm 'no_tpe'; choose from all_rules, told_complete, no_liar, no_chance_stop"
    )
