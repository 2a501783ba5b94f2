"""The refit (sweep/refit.py): the budget's reservation rule with a fake clock, the train+val dataset,
the flag as the spec saves it, the study's objective names; end to end through the real CLI (embedded
Ray, a sqlite MLflow store): one refit run per sweep, its model, promote taking it, --no-refit."""

from __future__ import annotations

import json

import numpy as np
import pytest

from orchestrator import build_parser
from sweep.refit import RefitReserve, refit_dataset, refit_reserve, runs_refit, search_must_stop
from sweep.spec import SweepSpec, load_spec, spec_from_args
from sweep.trial import TRIAL_COMPLETED
from tests.conftest import run_cli
from tests.sweep_checks import assert_model_matches_logged_predictions
from trainables.core.data import DataSpec
from trainables.families import get_family

SMALL = ["--fix", "input_size=32", "--fix", "base_width=8", "--fix", "blocks=3", "--fix", "convs_per_block=1"]


@pytest.mark.parametrize(
    ("fit_seconds", "train", "refit", "reserve"),
    [(100.0, 1598, 1881, 100.0 * 1881 / 1598), (10.0, 400, 400, 10.0), (0.0, 10, 20, 0.0)],
)
def test_the_reserve_is_the_trials_fit_time_scaled_by_the_larger_training_set(fit_seconds, train, refit, reserve):
    assert refit_reserve(fit_seconds, train_images=train, refit_images=refit) == pytest.approx(reserve)


@pytest.mark.parametrize(
    ("used", "budget", "reserve", "stop"),
    [(0.0, 100.0, 0.0, False), (50.0, 100.0, 49.0, False), (50.0, 100.0, 50.0, True), (99.0, 100.0, 0.0, False)],
)
def test_the_search_stops_when_the_refit_would_no_longer_fit(used, budget, reserve, stop):
    assert search_must_stop(used=used, budget=budget, reserve=reserve) is stop


class FakeClock:
    def __init__(self):
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_the_stopper_reserves_the_refit_of_the_best_trial_so_far():
    clock = FakeClock()
    stopper = RefitReserve(budget=100.0, metric="val_accuracy", mode="max", scale=1.5, clock=clock)
    assert stopper.stop_all() is False  # nothing finished: nothing to reserve
    stopper("a", {"val_accuracy": 0.5, "fit_seconds": 10.0})  # an epoch's result, not a completed trial
    assert stopper.reserve == 0.0
    stopper("a", {"val_accuracy": 0.6, "fit_seconds": 20.0, TRIAL_COMPLETED: 1})
    stopper("b", {"val_accuracy": 0.4, "fit_seconds": 60.0, TRIAL_COMPLETED: 1})  # worse: not the one refit
    assert stopper.reserve == pytest.approx(30.0)
    clock.now += 69.0
    assert stopper.stop_all() is False  # 69 used + 30 reserved < 100
    clock.now += 1.0
    assert stopper.stop_all() is True


def test_a_restored_stopper_counts_on_from_the_time_it_had_used():
    import pickle

    clock = FakeClock()
    stopper = RefitReserve(budget=100.0, metric="val_loss", mode="min", scale=1.0, clock=clock)
    stopper.stop_all()
    clock.now += 40.0
    stopper.stop_all()
    restored = pickle.loads(pickle.dumps(stopper))
    restored.clock = clock
    clock.now += 1000.0  # the time the sweep was down does not count
    assert restored.stop_all() is False and restored.used == pytest.approx(40.0)


def test_the_refit_trains_on_train_and_val_and_reports_on_val(demo_dataset):
    refit = refit_dataset(demo_dataset)
    assert len(refit.y_train) == len(demo_dataset.y_train) + len(demo_dataset.y_val)
    assert np.array_equal(refit.x_train[len(demo_dataset.y_train) :], demo_dataset.x_val)
    assert np.array_equal(refit.x_val, demo_dataset.x_val) and np.array_equal(refit.x_test, demo_dataset.x_test)
    assert refit.fingerprint != demo_dataset.fingerprint


@pytest.mark.parametrize(("family", "refits"), [("tinynet", True), ("mlp", True), ("inception", True), ("bovw", False)])
def test_only_families_whose_trials_leave_val_out_are_refit(family, refits):
    assert runs_refit(get_family(family)) is refits


@pytest.mark.parametrize(("flags", "refit"), [([], True), (["--refit"], True), (["--no-refit"], False)])
def test_the_refit_flag_is_saved_and_resume_keeps_or_overrides_it(tmp_path, flags, refit):
    args = build_parser().parse_args(["sweep", "--name", "s", "--storage", str(tmp_path), *flags])
    spec = spec_from_args(args)
    assert spec.refit is refit
    spec.save()
    assert load_spec(str(tmp_path), "s", address=None, uri=None).refit is refit
    assert load_spec(str(tmp_path), "s", address=None, uri=None, refit=not refit).refit is (not refit)
    resumed = build_parser().parse_args(["resume", "s", "--no-refit"])
    assert resumed.refit is False and build_parser().parse_args(["resume", "s"]).refit is None


@pytest.mark.parametrize(
    ("modes", "names"), [(["max"], ["val_accuracy"]), (["max", "min"], ["val_accuracy", "params"])]
)
def test_the_study_names_its_objectives_after_the_sweeps_metrics(tmp_path, modes, names):
    import optuna

    from sweep.study import STUDY_FILE, new_study, study_storage

    spec = SweepSpec(family="tinynet", data=DataSpec(), name="named", storage=str(tmp_path))
    new_study(spec, modes, study_storage(spec), metric_names=names)
    assert (tmp_path / "named" / STUDY_FILE).exists()
    assert optuna.load_study(study_name="named", storage=study_storage(spec)).metric_names == names


# --- end to end ---------------------------------------------------------------------------------


def demo_sweep(workdir, name: str, *extra: str):
    result = run_cli(
        "sweep",
        "--space",
        "tinynet",
        "--data",
        "demo",
        "--samples",
        "2",
        "--epochs",
        "2",
        "--search",
        "tpe",
        "--name",
        name,
        *SMALL,
        *extra,
        cwd=workdir,
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    return result


def runs_by_role(workdir, name: str) -> tuple:
    from mlflow.tracking import MlflowClient

    uri = json.loads((workdir / "sweeps" / name / "scenesweep.json").read_text())["tracking_uri"]
    client = MlflowClient(uri)
    runs = client.search_runs(
        [e.experiment_id for e in client.search_experiments()], filter_string=f"tags.`scenesweep.sweep` = '{name}'"
    )
    roles: dict[str, list] = {}
    for run in runs:
        roles.setdefault(run.data.tags.get("scenesweep.role"), []).append(run)
    return uri, client, roles


@pytest.fixture(scope="module")
def refit_sweep(tmp_path_factory):
    workdir = tmp_path_factory.mktemp("refit-sweep")
    return workdir, demo_sweep(workdir, "refit-demo")


@pytest.mark.slow
def test_a_sweep_ends_with_one_refit_run_of_its_best_trial(refit_sweep, demo_dataset):
    workdir, result = refit_sweep
    uri, client, roles = runs_by_role(workdir, "refit-demo")
    assert sorted(roles) == ["refit", "sweep", "trial"] and len(roles["refit"]) == 1 and len(roles["sweep"]) == 1
    assert all(r.info.status != "RUNNING" for rs in roles.values() for r in rs)
    refit = roles["refit"][0]
    best = json.loads(open(client.download_artifacts(roles["sweep"][0].info.run_id, "best_trial.json")).read())
    source = next(r for r in roles["trial"] if r.info.run_id == best["run_id"])
    tags = refit.data.tags
    assert refit.info.status == "FINISHED"
    assert tags["mlflow.parentRunId"] == roles["sweep"][0].info.run_id
    assert tags["scenesweep.refit_of"] == source.data.tags["scenesweep.trial_id"]
    assert tags["scenesweep.refit_of_run"] == source.info.run_id
    assert refit.info.run_name == f"refit-{source.info.run_name}"
    assert "in-sample" in tags["scenesweep.refit_validation"]
    assert refit.data.params == source.data.params  # its config
    for key in ("test_accuracy", "test_loss", "params", "fit_seconds"):
        assert key in refit.data.metrics, key
    assert {"confusion_matrix.svg", "classification_report.json", "test_predictions.json"} <= {
        a.path for a in client.list_artifacts(refit.info.run_id)
    }
    assert_model_matches_logged_predictions(uri, client, refit, demo_dataset)
    assert f"Refit of trial {tags['scenesweep.refit_of']}" in result.stdout
    from sweep.study import load_sweep_study

    # optuna-dashboard's objective name: the sweep's metric, not "Objective 0"
    assert load_sweep_study(load_spec(str(workdir / "sweeps"), "refit-demo", address=None, uri=None)).metric_names == [
        "val_accuracy"
    ]


@pytest.mark.slow
def test_best_and_status_show_the_refit_apart_and_promote_takes_it(refit_sweep):
    workdir, _ = refit_sweep
    _, client, roles = runs_by_role(workdir, "refit-demo")
    refit = roles["refit"][0]
    trial_id = refit.data.tags["scenesweep.refit_of"]
    for command in ("best", "status"):
        shown = run_cli(command, "refit-demo", cwd=workdir, timeout=120)
        assert shown.returncode == 0, shown.stderr
        assert f"refit of trial {trial_id} (run {refit.info.run_id}, FINISHED)" in shown.stdout
    promoted = run_cli("promote", "refit-demo", cwd=workdir, timeout=120)
    assert promoted.returncode == 0, promoted.stderr
    assert f"took the refit of trial {trial_id} (run {refit.info.run_id})" in promoted.stdout
    assert "selected by the trial's val_accuracy" in promoted.stdout
    version = client.get_model_version_by_alias("scenesweep-tinynet", "champion")
    assert version.run_id == refit.info.run_id
    assert version.source == refit.data.tags["scenesweep.model_uri"]
    assert version.tags["scenesweep.refit_run_id"] == refit.info.run_id
    assert version.tags["scenesweep.trial_id"] == trial_id


@pytest.mark.slow
def test_no_refit_leaves_no_refit_run(tmp_path):
    result = demo_sweep(tmp_path, "no-refit", "--no-refit")
    _, _, roles = runs_by_role(tmp_path, "no-refit")
    assert "refit" not in roles and len(roles["trial"]) == 2
    assert "Refit" not in result.stdout


def _refit_is_training(workdir, name: str) -> bool:
    from mlflow.exceptions import MlflowException

    try:
        _, client, roles = runs_by_role(workdir, name)
    except (OSError, ValueError, MlflowException):  # the spec or the store not written yet
        return False
    return any(
        r.info.status == "RUNNING" and client.get_metric_history(r.info.run_id, "val_accuracy")
        for r in roles.get("refit", [])
    )


@pytest.mark.slow
def test_a_refit_stopped_by_sigterm_ends_killed_and_resume_runs_it_again(tmp_path):
    import os
    import signal

    from tests.conftest import start_cli, wait_for

    name = "refit-term"
    args = ["--space", "tinynet", "--data", "demo", "--samples", "1", "--epochs", "12", "--name", name, *SMALL]
    log = tmp_path / "sweep.log"
    sweep = start_cli("sweep", *args, cwd=tmp_path, log=log)
    try:
        wait_for(lambda: _refit_is_training(tmp_path, name), timeout=600, what="the refit mid-training", process=sweep)
        os.kill(sweep.pid, signal.SIGTERM)
        code = sweep.wait(timeout=600)
    finally:
        if sweep.poll() is None:
            os.killpg(sweep.pid, signal.SIGKILL)
    output = log.read_text()
    assert code == 128 + signal.SIGTERM, output[-3000:]
    assert f"run it again with: scenesweep resume {name}" in output and "Traceback" not in output, output[-3000:]
    _, _, roles = runs_by_role(tmp_path, name)
    assert [r.info.status for r in roles["refit"]] == ["KILLED"] and roles["refit"][0].data.tags["scenesweep.error"]
    assert not [r for rs in roles.values() for r in rs if r.info.status == "RUNNING"]
    assert roles["sweep"][0].info.status == "FINISHED"  # the search itself ended normally
    resumed = run_cli("resume", name, cwd=tmp_path, timeout=900)
    assert resumed.returncode == 0, resumed.stdout[-3000:] + resumed.stderr[-3000:]
    _, _, roles = runs_by_role(tmp_path, name)
    assert sorted(r.info.status for r in roles["refit"]) == ["FINISHED", "KILLED"]
