"""promote() against a real local registry: versions, tags, aliases, refusals, idempotence."""

import json

import pytest

from serving.models import load_model
from tracking.registry import Candidate, PromotionRefused, RegistryError, candidate_from, check_alias, promote
from tracking.summary import TrialRow


def candidate(trial, *, score, fingerprint="fp-a", metric="val_accuracy", mode="max", sweep="s1"):
    return Candidate(
        sweep=sweep,
        family="tinynet",
        trial_id=f"t-{trial.run_id[:6]}",
        run_id=trial.run_id,
        model_uri=trial.model_uri,
        metric=metric,
        mode=mode,
        metrics={metric: score, "test_accuracy": 0.5, "params": 1234.0, "fit_seconds": 1.5},
        data_fingerprint=fingerprint,
    )


def test_first_promotion_registers_a_tagged_version_and_points_the_alias(local_store):
    trial = local_store.trials[0]
    result = promote(candidate(trial, score=0.8125), tracking_uri=local_store.uri, name="first")
    assert (result.version, result.created, result.previous, result.uri) == ("1", True, None, "models:/first@champion")
    version = local_store.client.get_model_version_by_alias("first", "champion")
    assert str(version.version) == "1" and version.run_id == trial.run_id and version.source == trial.model_uri
    assert {
        "scenesweep.sweep": "s1",
        "scenesweep.family": "tinynet",
        "scenesweep.run_id": trial.run_id,
        "scenesweep.data_fingerprint": "fp-a",
        "scenesweep.selected_by": "val_accuracy",
        "scenesweep.mode": "max",
        "val_accuracy": "0.8125",
        "test_accuracy": "0.5",
        "params": "1234",
    }.items() <= version.tags.items()
    assert "val_accuracy 0.8125" in version.description
    model_id = trial.model_uri.split("/")[-1]
    linked = json.loads(local_store.client.get_logged_model(model_id).tags["mlflow.modelVersions"])
    assert {"name": "first", "version": "1"} in linked
    # The alias resolves to a loadable model that predicts the class-name columns.
    model = load_model("models:/first@champion", tracking_uri=local_store.uri)
    assert model.metadata.get_output_schema().input_names() == local_store.class_names


def test_promoting_the_same_run_again_creates_no_version(local_store):
    trial = local_store.trials[0]
    first = promote(candidate(trial, score=0.7), tracking_uri=local_store.uri, name="again")
    second = promote(candidate(trial, score=0.7), tracking_uri=local_store.uri, name="again")
    assert first.created and not second.created and second.version == first.version
    assert len(local_store.client.search_model_versions("name = 'again'")) == 1


# (champion's score, fingerprint), (challenger's score, fingerprint), metric mode, --force -> outcome
CASES = [
    ((0.8, "fp-a"), (0.6, "fp-a"), "max", False, "refused"),
    ((0.8, "fp-a"), (0.6, "fp-a"), "max", True, "forced"),
    ((0.6, "fp-a"), (0.8, "fp-a"), "max", False, "moved"),
    ((0.8, "fp-a"), (0.8, "fp-a"), "max", False, "moved"),  # a tie is not better
    ((0.8, "fp-a"), (0.6, "fp-b"), "max", False, "other data"),
    ((0.3, "fp-a"), (0.5, "fp-a"), "min", False, "refused"),  # e.g. --metric val_loss
    ((0.5, "fp-a"), (0.3, "fp-a"), "min", False, "moved"),
]


@pytest.mark.parametrize(
    "champion, challenger, mode, force, outcome",
    CASES,
    ids=[f"{c[0][0]}{c[0][1][-1]}-{c[1][0]}{c[1][1][-1]}-{c[2]}{'-force' if c[3] else ''}" for c in CASES],
)
def test_the_alias_moves_only_to_a_model_that_is_not_worse_on_the_same_data(
    local_store, champion, challenger, mode, force, outcome
):
    name = f"duel-{CASES.index((champion, challenger, mode, force, outcome))}"
    metric = "val_accuracy" if mode == "max" else "val_loss"
    first, second = local_store.trials
    promote(
        candidate(first, score=champion[0], fingerprint=champion[1], metric=metric, mode=mode),
        tracking_uri=local_store.uri,
        name=name,
    )
    challenge = candidate(second, score=challenger[0], fingerprint=challenger[1], metric=metric, mode=mode, sweep="s2")
    if outcome == "refused":
        with pytest.raises(PromotionRefused, match=rf"{name}@champion is version 1 .* pass --force"):
            promote(challenge, tracking_uri=local_store.uri, name=name, force=force)
        assert str(local_store.client.get_model_version_by_alias(name, "champion").version) == "1"
        return
    result = promote(challenge, tracking_uri=local_store.uri, name=name, force=force)
    assert (result.version, result.previous, result.created) == ("2", "1", True)
    assert str(local_store.client.get_model_version_by_alias(name, "champion").version) == "2"
    if outcome == "forced":
        assert result.note.startswith("forced: replaced version 1")
    elif outcome == "other data":
        assert "other data" in result.note
    else:
        assert result.note == ""


def test_other_aliases_are_independent(local_store):
    first, second = local_store.trials
    promote(candidate(first, score=0.9), tracking_uri=local_store.uri, name="aliases")
    staging = promote(candidate(second, score=0.1), tracking_uri=local_store.uri, name="aliases", alias="staging")
    assert staging.uri == "models:/aliases@staging" and staging.version == "2"
    assert str(local_store.client.get_model_version_by_alias("aliases", "champion").version) == "1"


@pytest.mark.parametrize(
    "uri, message",
    [
        ("models:/no-such-model@champion", "Registered Model with name=no-such-model not found"),
        ("models:/registered@no-such-alias", "alias no-such-alias not found"),
        ("not-a-model", "neither a model URI nor a folder"),
    ],
)
def test_unloadable_models_are_one_line_errors(local_store, uri, message):
    promote(candidate(local_store.trials[0], score=0.5), tracking_uri=local_store.uri, name="registered")
    with pytest.raises(RegistryError, match=message) as error:
        load_model(uri, tracking_uri=local_store.uri)
    assert "\n" not in str(error.value)


@pytest.fixture(scope="module")
def sweep_run(local_store):
    client = local_store.client
    experiment_id = client.get_run(local_store.trials[0].run_id).info.experiment_id
    run = client.create_run(
        experiment_id,
        run_name="s9",
        tags={"scenesweep.sweep": "s9", "scenesweep.family": "tinynet", "scenesweep.role": "sweep"},
    )
    client.log_param(run.info.run_id, "data_fingerprint", "fp-z")
    return client.get_run(run.info.run_id)


def trial_row(trial, **metrics):
    return TrialRow(
        trial_id="t1",
        run_id=trial.run_id,
        status="FINISHED",
        pruned=False,
        epochs=3,
        metrics=metrics,
        params={},
        model_uri=trial.model_uri,
    )


@pytest.mark.parametrize(
    "metric, allowed",
    [
        ("val_accuracy", True),
        ("cv_accuracy", True),
        ("val_loss", True),
        ("test_accuracy", False),
        ("accuracy_per_param", False),
        ("train_accuracy", False),
    ],
)
def test_only_validation_or_cv_metrics_select_a_model(local_store, sweep_run, metric, allowed):
    row = trial_row(local_store.trials[0], **{metric: 0.5})
    if not allowed:
        with pytest.raises(RegistryError, match=f"--metric {metric}: promotion selects on a validation or CV metric"):
            candidate_from(row, sweep_run=sweep_run, metric=metric, mode="max")
        return
    chosen = candidate_from(row, sweep_run=sweep_run, metric=metric, mode="max")
    assert (chosen.sweep, chosen.family, chosen.data_fingerprint, chosen.score) == ("s9", "tinynet", "fp-z", 0.5)


def test_a_trial_without_a_logged_model_cannot_be_promoted(local_store, sweep_run):
    row = TrialRow(
        trial_id="t2", run_id="r2", status="FINISHED", pruned=False, epochs=1, metrics={"val_accuracy": 0.9}, params={}
    )
    with pytest.raises(RegistryError, match="trial t2 .* has no logged model"):
        candidate_from(row, sweep_run=sweep_run, metric="val_accuracy", mode="max")


def test_promote_and_load_leave_mlflow_pointed_where_it_was(local_store, monkeypatch, tmp_path):
    """Both set MLflow's process-global URIs for their work, which also exports MLFLOW_*_URI to every
    later subprocess; left behind, the next command's registry writes went to this store."""
    import os

    import mlflow

    elsewhere = f"sqlite:///{tmp_path / 'elsewhere.db'}"
    mlflow.set_tracking_uri(elsewhere)
    monkeypatch.delenv("MLFLOW_REGISTRY_URI", raising=False)
    try:
        promote(candidate(local_store.trials[1], score=0.5), tracking_uri=local_store.uri, name="no-leak")
        load_model("models:/no-leak@champion", tracking_uri=local_store.uri)
        assert mlflow.get_tracking_uri() == elsewhere and os.environ["MLFLOW_TRACKING_URI"] == elsewhere
        assert "MLFLOW_REGISTRY_URI" not in os.environ
    finally:
        mlflow.set_tracking_uri(local_store.uri)


BAD_ALIASES = ["bad alias!", "", "latest", "LATEST", "v3", "V12", "a" * 256, "café/x"]
GOOD_ALIASES = ["champion", "staging-2", "v", "v2a", "a" * 255, "_"]


@pytest.mark.parametrize("alias", BAD_ALIASES)
def test_a_bad_alias_is_refused_before_anything_is_registered(local_store, alias):
    name = f"bad-alias-{BAD_ALIASES.index(alias)}"
    with pytest.raises(RegistryError, match="is not a valid alias"):
        promote(candidate(local_store.trials[0], score=0.5), tracking_uri=local_store.uri, name=name, alias=alias)
    assert local_store.client.search_registered_models(f"name = '{name}'") == []


def test_the_alias_rule_is_mlflows(local_store):
    """What check_alias refuses, a real registry refuses too, and what it lets through, the registry takes."""
    from mlflow.exceptions import MlflowException

    promote(candidate(local_store.trials[0], score=0.5), tracking_uri=local_store.uri, name="alias-rule")
    for alias in BAD_ALIASES:
        with pytest.raises(MlflowException):
            local_store.client.set_registered_model_alias("alias-rule", alias, "1")
    for alias in GOOD_ALIASES:
        check_alias(alias)
        local_store.client.set_registered_model_alias("alias-rule", alias, "1")


def test_a_model_whose_files_are_gone_is_not_registered(local_store, demo_dataset):
    import shutil
    from urllib.parse import urlparse

    from sweep.models import log_classifier
    from tests.tracking.conftest import tiny_classifier

    client = local_store.client
    experiment_id = client.get_experiment_by_name("registry-tests").experiment_id
    run_id = client.create_run(experiment_id, run_name="files-gone").info.run_id
    info = log_classifier(
        run_id, tiny_classifier(local_store.class_names, seed=7), demo_dataset.x_test[:2], experiment_id=experiment_id
    )
    client.set_terminated(run_id)
    shutil.rmtree(urlparse(client.get_logged_model(info.model_id).artifact_location).path)
    gone = Candidate(
        sweep="s1",
        family="tinynet",
        trial_id="t-gone",
        run_id=run_id,
        model_uri=info.model_uri,
        metric="val_accuracy",
        mode="max",
        metrics={"val_accuracy": 0.99},
        data_fingerprint="fp-a",
    )
    with pytest.raises(RegistryError, match="has no files in the artifact store"):
        promote(gone, tracking_uri=local_store.uri, name="files-gone")
    assert client.search_registered_models("name = 'files-gone'") == []
