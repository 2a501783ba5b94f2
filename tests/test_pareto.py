"""--objective accuracy,params: a multi-objective Optuna search through Tune whose Pareto front lands
on the parent run (CSV + PNG), is listed by `best --pareto`, and `promote --max-params` respects it."""

import csv
import json
from pathlib import Path

import pytest
from mlflow.tracking import MlflowClient

from sweep.pareto import pareto_front
from sweep.spec import SweepSpec
from sweep.study import load_sweep_study
from tests.conftest import run_cli
from tests.sweep_checks import artifact_names, sweep_runs
from tracking.summary import TrialRow


def row(trial_id: str, accuracy: float, params: int) -> TrialRow:
    metrics = {"val_accuracy": accuracy, "params": params}
    return TrialRow(
        trial_id=trial_id, run_id=trial_id, status="FINISHED", pruned=False, epochs=1, metrics=metrics, params={}
    )


FRONT_CASES = [
    ([("a", 0.9, 100), ("b", 0.8, 50), ("c", 0.7, 80)], ["a", "b"]),  # c is beaten by b on both
    ([("a", 0.9, 100), ("b", 0.9, 100)], ["a", "b"]),  # ties dominate nothing
    ([("a", 0.5, 10), ("b", 0.6, 20), ("c", 0.7, 30)], ["c", "b", "a"]),  # all on the front, best first
]


@pytest.mark.parametrize("trials, front", FRONT_CASES)
def test_pareto_front_keeps_the_undominated_trials(trials, front):
    objectives = [("val_accuracy", "max"), ("params", "min")]
    assert [r.trial_id for r in pareto_front([row(*t) for t in trials], objectives)] == front


@pytest.mark.slow
def test_accuracy_against_params_sweep_records_its_front_and_promotes_within_a_size(tmp_path):
    name = "pareto"
    result = run_cli(
        "sweep",
        *("--data", "demo", "--epochs", "2", "--samples", "4", "--seed", "4", "--name", name),
        *("--objective", "accuracy,params", "--search", "random", "--fix", "base_width=16"),
        *("--fix", "input_size=32", "--fix", "kernel_size=3", "--fix", "convs_per_block=1"),
        cwd=tmp_path,
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert "Pareto front (" in result.stdout
    uri = f"sqlite:///{tmp_path / 'mlruns.db'}"
    client, parent, children = sweep_runs(uri, name, "scenesweep-tinynet")
    assert {"pareto_front.csv", "pareto_front.png"} <= artifact_names(client, parent.info.run_id)
    with open(client.download_artifacts(parent.info.run_id, "pareto_front.csv")) as handle:
        front = list(csv.DictReader(handle))
    finished = [c for c in children if c.info.status == "FINISHED"]
    assert front and len(front) <= len(finished)
    for member in front:  # nothing finished beats a front member on both objectives
        acc, params = float(member["val_accuracy"]), float(member["params"])
        assert not any(
            c.data.metrics["val_accuracy"] >= acc
            and c.data.metrics["params"] <= params
            and (c.data.metrics["val_accuracy"] > acc or c.data.metrics["params"] < params)
            for c in finished
        )
    spec = SweepSpec.from_dict(json.loads((tmp_path / "sweeps" / name / "scenesweep.json").read_text()))
    study = load_sweep_study(spec)
    assert len(study.directions) == 2 and study.best_trials  # Optuna's own front, multi-objective

    listed = run_cli("best", name, "--pareto", cwd=tmp_path, timeout=120)
    assert listed.returncode == 0, listed.stderr
    assert all(member["trial_id"] in listed.stdout for member in front)

    limit = int(min(float(m["params"]) for m in front))
    promoted = run_cli("promote", name, "--max-params", str(limit), cwd=tmp_path, timeout=300)
    assert promoted.returncode == 0, promoted.stderr
    version = MlflowClient(uri).get_model_version_by_alias("scenesweep-tinynet", "champion")
    assert MlflowClient(uri).get_run(version.run_id).data.metrics["params"] <= limit
    too_small = run_cli("promote", name, "--max-params", "10", cwd=tmp_path, timeout=120)
    assert too_small.returncode == 2 and "no finished trial" in too_small.stderr
    assert Path(tmp_path / "sweeps" / name / "optuna.journal").exists()
