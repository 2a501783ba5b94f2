"""MLflow conventions on a real sqlite store: experiment kind, dataset input, source tags, perf/ names,
system metrics, links to the parent run."""

from __future__ import annotations

import subprocess
import time

import pytest
from mlflow.tracking import MlflowClient

from tests.conftest import ROOT
from tracking.provenance import EXPERIMENT_KIND, log_dataset, perf_named, source_tags
from tracking.runs import SweepTarget, get_or_create_experiment, start_sweep_run
from tracking.system_metrics import system_metrics
from tracking.ui import run_page


@pytest.fixture
def store(tmp_path):
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    return uri, MlflowClient(uri)


def test_a_new_experiment_opens_on_its_runs_and_says_what_it_holds(store):
    uri, client = store
    experiment = client.get_experiment(get_or_create_experiment(client, "e", uri, family="tinynet"))
    assert experiment.tags["mlflow.experimentKind"] == EXPERIMENT_KIND == "custom_model_development"
    assert "tinynet" in experiment.tags["mlflow.note.content"]


def test_an_older_experiment_gets_its_kind_and_keeps_its_description(store):
    uri, client = store
    old = client.create_experiment("old", tags={"mlflow.note.content": "mine"})
    assert get_or_create_experiment(client, "old", uri, family="bovw") == old
    tags = client.get_experiment(old).tags
    assert tags["mlflow.experimentKind"] == EXPERIMENT_KIND and tags["mlflow.note.content"] == "mine"


def test_parent_run_carries_source_and_commit_and_passes_them_to_trials(store):
    uri, client = store
    experiment_id = get_or_create_experiment(client, "e", uri, family="tinynet")
    target = start_sweep_run(
        client, uri=uri, experiment_id=experiment_id, sweep="s1", family="tinynet", search="tpe", params={}
    )
    head = subprocess.run(["git", "-C", str(ROOT), "rev-parse", "HEAD"], capture_output=True, text=True).stdout.strip()
    tags = client.get_run(target.parent_run_id).data.tags
    assert tags["mlflow.source.name"] == "scenesweep" and tags["mlflow.source.git.commit"] == head
    assert dict(target.source) == source_tags()


def test_dataset_input_names_the_data_by_its_fingerprint(store, tmp_path):
    uri, client = store
    run_id = client.create_run(client.create_experiment("d")).info.run_id
    log_dataset(client, run_id, source=str(tmp_path / "MIT_split"), digest="abc123", profile={"summary": "8 classes"})
    (entry,) = client.get_run(run_id).inputs.dataset_inputs
    assert (entry.dataset.name, entry.dataset.digest) == ("MIT_split", "abc123")
    assert str(tmp_path / "MIT_split") in entry.dataset.source


@pytest.mark.parametrize(
    ("key", "logged_as"),
    [
        ("val_accuracy", "val_accuracy"),
        ("test_accuracy", "test_accuracy"),
        ("fit_seconds", "fit_seconds"),
        ("epoch_seconds", "epoch_seconds"),
        ("cv_accuracy", "cv_accuracy"),
        ("params", "params"),
        ("accuracy_per_param", "accuracy_per_param"),
        ("epoch_log_seconds", "perf/epoch_log_seconds"),
        ("trial_seconds", "perf/trial_seconds"),
        ("cpu_utilisation", "perf/cpu_utilisation"),
        ("threads", "perf/threads"),
        ("descriptor_cache_hits", "perf/descriptor_cache_hits"),
        ("encode_seconds", "perf/encode_seconds"),
        ("perf/tune_seconds", "perf/tune_seconds"),
    ],
)
def test_timings_and_resource_use_go_under_perf(key, logged_as):
    assert perf_named({key: 1.0}) == {logged_as: 1.0}


def test_system_metrics_sample_cpu_and_memory_into_the_run(store):
    uri, client = store
    run_id = client.create_run(client.create_experiment("s")).info.run_id
    monitor = system_metrics(run_id, tracking_uri=uri, interval=0.2)
    time.sleep(0.8)
    monitor.stop()
    metrics = client.get_run(run_id).data.metrics
    assert "system/cpu_utilization_percentage" in metrics and "system/system_memory_usage_megabytes" in metrics


def test_printed_link_goes_straight_to_the_parent_run():
    target = SweepTarget(uri="", experiment_id="7", parent_run_id="abc", sweep="s", family="tinynet")
    assert run_page("http://u:p@127.0.0.1:5000/", target) == (
        "http://127.0.0.1:5000/#/experiments/7/runs/abc?workflowType=machine_learning"
    )
