"""The model registry after a sweep: promote the best trial, load a model by URI, serve it.

`promote` registers the best trial's logged model as a version of a registered
model and points an alias (MLflow aliases, not the deprecated stages) at it.
It is safe to repeat: the same run never gets a second version, and an alias
never moves to a version that is worse on the same data unless forced. Every
version carries, as tags, where it came from (sweep, trial, run, data
fingerprint) and how good it was, so the comparison needs nothing but the
registry.
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass

from mlflow.exceptions import MlflowException
from mlflow.tracking import MlflowClient

from tracking.runs import TAG_FAMILY, TAG_SWEEP, TAG_TRIAL_ID, TrackingError, quote
from tracking.uris import fluent_store

TAG_RUN_ID = "scenesweep.run_id"  # the selected trial's run
TAG_REFIT_RUN_ID = "scenesweep.refit_run_id"  # the refit run whose model the version is (sweep/refit.py)
TAG_FINGERPRINT = "scenesweep.data_fingerprint"
TAG_SELECTED_BY = "scenesweep.selected_by"  # the metric the sweep optimised; its value is a tag of its own
TAG_MODE = "scenesweep.mode"
TAG_LOGGED_MODEL_VERSIONS = "mlflow.modelVersions"  # how the MLflow UI links a logged model to its versions
# The contract's family-agnostic metrics; the selection metric and its spread (e.g. cv_accuracy_std)
# are added per candidate.
VERSION_METRICS = ("test_accuracy", "test_loss", "params", "accuracy_per_param", "fit_seconds")
DEFAULT_ALIAS = "champion"
SELECTION_PREFIXES = ("val_", "cv_")  # test_* and accuracy_per_param (test-derived) never pick a model


class RegistryError(TrackingError):
    """The registry cannot do what was asked; the message says why and what to do."""


class PromotionRefused(RegistryError):
    """The alias already points at a better model on the same data."""


@dataclass(frozen=True)
class Candidate:
    """A finished trial offered for promotion, with everything its registry version records."""

    sweep: str
    family: str
    trial_id: str
    run_id: str
    model_uri: str  # models:/m-... (the trial's LoggedModel)
    metric: str  # the selection metric: validation or CV, never test
    mode: str
    metrics: dict
    data_fingerprint: str
    refit_run_id: str = ""  # the model comes from this refit of the trial (sweep/refit.py), not the trial

    @property
    def model_run_id(self) -> str:
        """The run whose model is registered: the refit's when there is one."""
        return self.refit_run_id or self.run_id

    @property
    def score(self) -> float:
        return float(self.metrics[self.metric])

    def version_tags(self) -> dict:
        tags = {
            TAG_SWEEP: self.sweep,
            TAG_FAMILY: self.family,
            TAG_TRIAL_ID: self.trial_id,
            TAG_RUN_ID: self.run_id,
            TAG_FINGERPRINT: self.data_fingerprint,
            TAG_SELECTED_BY: self.metric,
            TAG_MODE: self.mode,
        }
        if self.refit_run_id:
            tags[TAG_REFIT_RUN_ID] = self.refit_run_id
        for key in (self.metric, f"{self.metric}_std", *VERSION_METRICS):
            if key in self.metrics:
                tags[key] = _number(self.metrics[key])
        return tags

    def description(self) -> str:
        test = self.metrics.get("test_accuracy")
        refit = f" (refit on train+val: run {self.refit_run_id})" if self.refit_run_id else ""
        return f"{self.family} trial {self.trial_id}{refit} of sweep {self.sweep}: {self.metric} {self.score:.4f}" + (
            f", test_accuracy {test:.4f}" if test is not None else ""
        )


@dataclass(frozen=True)
class Promotion:
    name: str
    version: str
    alias: str
    created: bool  # False: this run was already registered, its version was reused
    previous: str | None  # the version the alias pointed at before, if any
    note: str = ""  # why a comparison with the previous version was skipped or overridden

    @property
    def uri(self) -> str:
        return f"models:/{self.name}@{self.alias}"


def candidate_from(row, *, sweep_run, metric: str, mode: str, refit=None) -> Candidate:
    """Turn a `tracking.summary.TrialRow` of sweep `sweep_run` into a promotion candidate. `refit`
    (the row of the trial's refit run, if any): selected by the trial's `metric` all the same, but the
    refit's model and its held-out test metrics are what the version records."""
    if not metric.startswith(SELECTION_PREFIXES):
        raise RegistryError(
            f"--metric {metric}: promotion selects on a validation or CV metric (val_*, cv_*), "
            "never on test or anything derived from it; leave --metric out for the family's metric"
        )
    if not row.model_uri.startswith("models:/"):
        raise RegistryError(
            f"trial {row.trial_id} (run {row.run_id}) has no logged model; "
            "only trials that finished with a model can be promoted"
        )
    fingerprint = sweep_run.data.params.get("data_fingerprint", "")
    metrics = dict(row.metrics)
    if refit is not None:  # the selection metric (and its spread) stay the trial's: the refit's val is in-sample
        metrics = {**metrics, **{k: v for k, v in refit.metrics.items() if k in VERSION_METRICS}}
    return Candidate(
        sweep=sweep_run.data.tags.get(TAG_SWEEP, sweep_run.info.run_name),
        family=sweep_run.data.tags.get(TAG_FAMILY, ""),
        trial_id=row.trial_id,
        run_id=row.run_id,
        model_uri=refit.model_uri if refit is not None else row.model_uri,
        metric=metric,
        mode=mode,
        metrics=metrics,
        data_fingerprint=fingerprint,
        refit_run_id=refit.run_id if refit is not None else "",
    )


def promote(
    candidate: Candidate, *, tracking_uri: str, name: str, alias: str = DEFAULT_ALIAS, force: bool = False
) -> Promotion:
    """Register `candidate` as a version of `name` (once per run) and point `alias` at it."""
    # A local (sqlite/file) registry resolves a models:/m-... source through the global tracking URI.
    with fluent_store(tracking_uri):
        return _promote(
            candidate, client=MlflowClient(tracking_uri, registry_uri=tracking_uri), name=name, alias=alias, force=force
        )


# MLflow's rules for an alias (mlflow.utils.validation; tests/tracking/test_registry.py checks that a real
# registry refuses what this refuses): word characters and dashes, at most 255, not 'latest', not vN.
_ALIAS = re.compile(r"[\w\-]{1,255}")
_VERSION_ALIAS = re.compile(r"[vV]\d+")


def check_alias(alias: str) -> None:
    """A RegistryError for an alias MLflow would refuse, before anything is registered."""
    if not _ALIAS.fullmatch(alias) or alias.lower() == "latest" or _VERSION_ALIAS.fullmatch(alias):
        raise RegistryError(
            f"--alias {alias!r} is not a valid alias: use 1 to 255 letters, digits, '_' or '-', "
            "other than 'latest' and v<number> (e.g. champion, staging)"
        )


def _require_model_files(client: MlflowClient, candidate: Candidate) -> None:
    """The candidate's model can be loaded: its MLmodel file is in the artifact store. A version
    registered over missing files would move the alias to a model that `predict` cannot load."""
    model_id = candidate.model_uri[len("models:/") :]
    try:
        files = {info.path for info in client.list_logged_model_artifacts(model_id)}
    except (MlflowException, OSError) as exc:
        raise RegistryError(
            f"cannot read trial {candidate.trial_id}'s model {candidate.model_uri}: {first_line(exc)}; "
            "nothing was registered"
        ) from None
    if "MLmodel" not in files:
        raise RegistryError(
            f"trial {candidate.trial_id}'s model {candidate.model_uri} has no files in the artifact store "
            "(deleted or never uploaded); nothing was registered: rerun the sweep, or resume it if it is unfinished"
        )


def _promote(candidate: Candidate, *, client: MlflowClient, name: str, alias: str, force: bool) -> Promotion:
    check_alias(alias)
    _require_model_files(client, candidate)
    _ensure_registered_model(client, name)
    current = _version_by_alias(client, name, alias)
    existing = _version_of_run(client, name, candidate.model_run_id)
    if current is not None and existing is not None and str(current.version) == str(existing.version):
        return Promotion(
            name=name, version=str(existing.version), alias=alias, created=False, previous=str(current.version)
        )
    note = ""
    if current is not None:
        verdict = _compare(candidate, current)
        if verdict.better_exists and not force:
            raise PromotionRefused(
                f"{name}@{alias} is version {current.version} with {candidate.metric} {verdict.current_score:.4f} on the "
                f"same data, better than trial {candidate.trial_id}'s {candidate.score:.4f}; pass --force to replace it"
            )
        note = (
            verdict.note
            if not verdict.better_exists
            else (
                f"forced: replaced version {current.version} ({candidate.metric} {verdict.current_score:.4f}), "
                f"better than this one's {candidate.score:.4f}"
            )
        )
    created = existing is None
    version = existing or _create_version(client, name, candidate)
    _call(
        lambda: client.set_registered_model_alias(name, alias, str(version.version)), f"set alias {alias!r} on {name}"
    )
    return Promotion(
        name=name,
        version=str(version.version),
        alias=alias,
        created=created,
        previous=str(current.version) if current is not None else None,
        note=note,
    )


@dataclass(frozen=True)
class _Verdict:
    better_exists: bool
    current_score: float = math.nan
    note: str = ""


def _compare(candidate: Candidate, current) -> _Verdict:
    """Is the alias's version better than the candidate? Only comparable on the same data and metric."""
    tags = current.tags
    if tags.get(TAG_FINGERPRINT) != candidate.data_fingerprint:
        return _Verdict(
            False,
            note=f"version {current.version} was trained on other data "
            f"(fingerprint {tags.get(TAG_FINGERPRINT, 'unknown')}); not compared",
        )
    if tags.get(TAG_SELECTED_BY, candidate.metric) != candidate.metric or candidate.metric not in tags:
        return _Verdict(False, note=f"version {current.version} has no {candidate.metric}; not compared")
    score = float(tags[candidate.metric])
    better = score > candidate.score if candidate.mode == "max" else score < candidate.score
    return _Verdict(better, current_score=score)


def _ensure_registered_model(client: MlflowClient, name: str) -> None:
    try:
        client.get_registered_model(name)
        return
    except MlflowException as exc:
        if exc.error_code != "RESOURCE_DOES_NOT_EXIST":
            raise RegistryError(f"cannot use registered model name {name!r}: {first_line(exc)}") from None
    try:
        client.create_registered_model(name, description="Promoted by scenesweep: the best trials of sweeps.")
    except MlflowException as exc:
        if exc.error_code not in ("RESOURCE_ALREADY_EXISTS", "ALREADY_EXISTS"):  # lost a race: fine
            raise RegistryError(
                f"cannot create registered model {name!r}: {first_line(exc)}; pick another --model-name"
            ) from None


def _version_by_alias(client: MlflowClient, name: str, alias: str):
    try:
        return client.get_model_version_by_alias(name, alias)
    except MlflowException as exc:
        if exc.error_code in ("RESOURCE_DOES_NOT_EXIST", "INVALID_PARAMETER_VALUE", "NOT_FOUND"):
            return None
        raise


def _version_of_run(client: MlflowClient, name: str, run_id: str):
    versions = client.search_model_versions(f"name = '{quote(name)}' and run_id = '{run_id}'")
    live = [v for v in versions if v.status != "FAILED_REGISTRATION"]
    return min(live, key=lambda v: int(v.version)) if live else None


def _create_version(client: MlflowClient, name: str, candidate: Candidate):
    model_id = candidate.model_uri[len("models:/") :]
    version = _call(
        lambda: client.create_model_version(
            name,
            source=candidate.model_uri,
            run_id=candidate.model_run_id,
            tags=candidate.version_tags(),
            description=candidate.description(),
            model_id=model_id,
        ),
        f"register {candidate.model_uri} as {name}",
    )
    _link_logged_model(client, model_id, version)
    return version


def _link_logged_model(client: MlflowClient, model_id: str, version) -> None:
    """What mlflow.register_model does so the UI shows the logged model's registered versions."""
    try:
        model = client.get_logged_model(model_id)
        linked = json.loads(model.tags.get(TAG_LOGGED_MODEL_VERSIONS, "[]"))
        linked.append({"name": version.name, "version": str(version.version)})
        client.set_logged_model_tags(model_id, {TAG_LOGGED_MODEL_VERSIONS: json.dumps(linked)})
    except MlflowException:
        pass  # cosmetic: the version itself is registered


def _call(action, what: str):
    try:
        return action()
    except MlflowException as exc:
        raise RegistryError(f"cannot {what}: {first_line(exc)}") from None


def first_line(exc: Exception) -> str:
    message = getattr(exc, "message", None) or str(exc)
    return message.strip().splitlines()[0].rstrip(".") if message.strip() else type(exc).__name__


def _number(value) -> str:
    """Full precision: an alias's version is compared with new candidates through these tags."""
    value = float(value)
    return str(int(value)) if value.is_integer() else repr(value)
