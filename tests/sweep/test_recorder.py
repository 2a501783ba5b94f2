"""A finished trial's recording, inline and through its node's recorder (a real embedded Ray, a real
sqlite MLflow store, a real classifier): the run ends FINISHED with its artifacts, model and final
metrics, or FAILED with the reason; the driver's drain waits for every record handed over."""

from __future__ import annotations

import tempfile
from pathlib import Path

import pytest
from mlflow.tracking import MlflowClient

from sweep.recorder import Recorders, TrialRecord, hand_off, record_trial
from sweep.trial import predictions_table
from tests.tracking.conftest import tiny_classifier
from tracking.runs import TAG_ERROR, TAG_MODEL_URI, TAG_RECORDED_BY
from tracking.uris import fluent_store
from trainables.core.classifier import Evaluation
from trainables.training import TrialOutcome

ARTIFACTS = {"confusion_matrix.svg", "learning_curves.svg", "classification_report.json", "test_predictions.json"}


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    root = tmp_path_factory.mktemp("recorder-store")
    uri = f"sqlite:///{root / 'mlflow.db'}"
    client = MlflowClient(uri)
    experiment_id = client.create_experiment("recorder", artifact_location=(root / "artifacts").as_uri())
    return uri, client, experiment_id


def a_record(store, demo_dataset, *, name: str) -> TrialRecord:
    uri, client, experiment_id = store
    run_id = client.create_run(experiment_id, run_name=name).info.run_id
    classifier = tiny_classifier(list(demo_dataset.class_names), seed=0)
    test = Evaluation.of(classifier, demo_dataset.x_test, demo_dataset.y_test)
    outcome = TrialOutcome(classifier=classifier, test=test, metrics={"test_accuracy": test.accuracy})
    saved = classifier.save(Path(tempfile.mkdtemp(prefix="recorder-test-")) / "classifier")
    return TrialRecord(
        uri=uri,
        experiment_id=experiment_id,
        run_id=run_id,
        last_logged_step=2,
        model_name=name,
        model_tags={},
        classifier_folder=str(saved),
        class_names=list(demo_dataset.class_names),
        example_images=demo_dataset.x_test[:2],
        confusion=test.confusion,
        report=test.report,
        curves={"val_accuracy": [(1, 0.2), (2, 0.3)], "train_loss": [(1, 2.0), (2, 1.8)]},
        predictions=predictions_table(outcome, demo_dataset),
        metrics={"test_accuracy": test.accuracy, "perf/trial_seconds": 1.0},
        tags={"scenesweep.timed_out": "true"},
    )


def assert_recorded(client, record: TrialRecord) -> None:
    run = client.get_run(record.run_id)
    assert run.info.status == "FINISHED"
    assert {a.path for a in client.list_artifacts(record.run_id)} >= ARTIFACTS
    assert run.data.metrics["test_accuracy"] == record.metrics["test_accuracy"]
    assert run.data.metrics["perf/record_seconds"] >= run.data.metrics["perf/model_log_seconds"] > 0
    assert run.data.tags[TAG_MODEL_URI].startswith("models:/") and run.data.tags["scenesweep.timed_out"] == "true"
    assert not Path(record.classifier_folder).exists()  # the saved classifier is removed once logged


def test_record_trial_writes_everything_and_closes_the_run(store, demo_dataset):
    record = a_record(store, demo_dataset, name="inline")
    with fluent_store(record.uri):  # as inside a trial
        record_trial(record)
    assert_recorded(store[1], record)


def test_a_recording_that_fails_closes_the_run_failed_with_the_reason(store, demo_dataset):
    record = a_record(store, demo_dataset, name="broken")
    record.classifier_folder = str(Path(record.classifier_folder).parent / "not-there")
    with pytest.raises(Exception), fluent_store(record.uri):  # noqa: B017 - whatever MLflow raises
        record_trial(record)
    run = store[1].get_run(record.run_id)
    assert run.info.status == "FAILED"
    assert run.data.tags[TAG_ERROR].startswith("recording the finished trial failed")


def test_the_node_recorder_records_off_the_trials_path_and_drain_waits_for_it(store, demo_dataset, local_ray):
    ray = local_ray
    recorders = Recorders("parent-a", store[0])
    assert len(recorders.actors) == 1  # one per node

    @ray.remote(num_cpus=1)
    def finished_trial(record, parent):
        return hand_off(record, parent), record.tags[TAG_RECORDED_BY]

    records = [a_record(store, demo_dataset, name=f"handed-{i}") for i in range(3)]
    assert ray.get([finished_trial.remote(r, "parent-a") for r in records]) == [(True, "recorder")] * 3
    failures, lost = recorders.drain()  # returns only once all three are recorded
    assert (failures, lost) == ([], [])
    for record in records:
        assert_recorded(store[1], record)
    # Another sweep's trial finds no recorder of its own on this node: the caller records inline.
    other = a_record(store, demo_dataset, name="elsewhere")
    assert ray.get(finished_trial.remote(other, "parent-b")) == (False, "trial")
    recorders.stop()


def test_drain_names_a_recorder_that_was_lost(store, local_ray):
    recorders = Recorders("parent-lost", store[0])
    (node_id, actor), *_ = recorders.actors.items()
    local_ray.kill(actor)
    assert recorders.drain() == ([], [node_id])
