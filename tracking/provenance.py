"""Where a run came from, in MLflow's own terms: source and git tags, the dataset input, the
experiment's kind and description.

MLflow's UI reads these reserved keys: `mlflow.source.*` fill the run's Source column and a
logged model's "Logged from", `log_inputs` fills the Dataset column, and
`mlflow.experimentKind=custom_model_development` makes an experiment open on its runs instead of
the GenAI overview.
"""

from __future__ import annotations

import getpass
import json
import subprocess
from pathlib import Path

from mlflow.entities import Dataset, DatasetInput, InputTag
from mlflow.tracking import MlflowClient

EXPERIMENT_KIND_TAG = "mlflow.experimentKind"
EXPERIMENT_KIND = "custom_model_development"
NOTE_TAG = "mlflow.note.content"  # the Markdown description of a run or an experiment
PERF_PREFIX = "perf/"  # timings and resource use: grouped apart from accuracy and loss in the UI
_ROOT = Path(__file__).resolve().parents[1]


def source_tags(*, entry_point: str = "scenesweep") -> dict[str, str]:
    """The `mlflow.source.*` and `mlflow.user` tags of runs started by this checkout."""
    tags = {
        "mlflow.source.name": entry_point,
        "mlflow.source.type": "LOCAL",
        "mlflow.user": _user(),
    }
    commit = git_commit()
    if commit:
        tags["mlflow.source.git.commit"] = commit
    return tags


def git_commit(root: Path = _ROOT) -> str:
    """The checkout's HEAD commit, or "" outside a git checkout (an installed package, a container)."""
    try:
        done = subprocess.run(
            ["git", "-C", str(root), "rev-parse", "HEAD"], capture_output=True, text=True, timeout=5, check=False
        )
    except (OSError, subprocess.SubprocessError):
        return ""
    return done.stdout.strip() if done.returncode == 0 else ""


def _user() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return "unknown"


def experiment_tags(*, family: str) -> dict[str, str]:
    return {
        EXPERIMENT_KIND_TAG: EXPERIMENT_KIND,
        NOTE_TAG: (
            f"scenesweep sweeps of the **{family}** family. Each sweep is a parent run (tag `scenesweep.sweep`) "
            "with one child run per trial; the parent carries the live progress, the best trial and the "
            "study's plots."
        ),
    }


def mark_experiment(client: MlflowClient, experiment_id: str, *, family: str) -> None:
    """Give an experiment created before these tags existed its kind (and a description if it has none)."""
    tags = client.get_experiment(experiment_id).tags
    for key, value in experiment_tags(family=family).items():
        if key not in tags:
            client.set_experiment_tag(experiment_id, key, value)


def log_dataset(client: MlflowClient, run_id: str, *, source: str, digest: str, profile: dict) -> None:
    """The sweep's data as the run's dataset input: its name, fingerprint and where it was read from."""
    name = "demo" if source == "demo" else Path(source).name or source
    location = source if source == "demo" else str(Path(source).expanduser().resolve())
    dataset = Dataset(
        name=name,
        digest=digest,
        source_type="local" if source != "demo" else "code",
        source=json.dumps({"uri": location}),
        profile=json.dumps(profile),
    )
    client.log_inputs(run_id, datasets=[DatasetInput(dataset, tags=[InputTag("mlflow.data.context", "training")])])


# The contract's timings stay beside accuracy and loss; every other duration, and resource use, is perf.
CONTRACT_TIMINGS = frozenset({"fit_seconds", "epoch_seconds"})
PERF_METRICS = frozenset({"cpu_utilisation", "threads"})


def is_perf(key: str) -> bool:
    return (
        key in PERF_METRICS
        or key.startswith("descriptor_cache_")
        or (key.endswith("_seconds") and key not in CONTRACT_TIMINGS)
    )


def perf_key(key: str) -> str:
    """The name MLflow and Tune know metric `key` by: under PERF_PREFIX if it is a timing or resource use."""
    return PERF_PREFIX + key if is_perf(key) and not key.startswith(PERF_PREFIX) else key


def perf_named(metrics: dict) -> dict:
    return {perf_key(k): v for k, v in metrics.items()}
