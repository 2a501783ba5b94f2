"""Load a logged scenesweep model back by URI (writing one is tracking/models.py's and sweep/models.py's)."""

from __future__ import annotations

import os

from mlflow.exceptions import MlflowException

from tracking.models import skip_installed_module_scan
from tracking.registry import RegistryError, first_line
from tracking.runs import require_existing_store
from tracking.uris import fluent_store, masked


def load_model(uri: str, *, tracking_uri: str):
    """Load a pyfunc model (`models:/NAME@ALIAS`, `models:/NAME/VERSION`, `runs:/RUN/TRIAL_NAME`, a folder).

    Torch weights load onto the CPU when no GPU is present (see TorchClassifier.load_state).
    """
    import mlflow

    if uri.startswith(("models:/", "runs:/")):
        require_existing_store(tracking_uri)  # never an empty store created by looking
    if "://" not in uri and ":/" not in uri and not os.path.exists(uri):
        raise RegistryError(
            f"--model {uri!r} is neither a model URI nor a folder; "
            "use models:/NAME@champion, models:/NAME/VERSION, runs:/RUN_ID/TRIAL_NAME or a model folder"
        )
    skip_installed_module_scan()  # loading checks the model's pins against this environment too
    try:
        with fluent_store(tracking_uri):
            return mlflow.pyfunc.load_model(uri)
    except MlflowException as exc:
        raise RegistryError(
            f"cannot load model {uri} from {masked(tracking_uri)}: {first_line(exc)}; "
            "promote a sweep first (`scenesweep promote SWEEP`) or check --tracking-uri"
        ) from None
    except OSError as exc:
        raise RegistryError(f"cannot load model {uri}: {exc}") from None


def scene_classifier(model):
    """The SceneClassifier inside a scenesweep pyfunc model (for Grad-CAM), or a RegistryError."""
    try:
        return model.unwrap_python_model().classifier
    except (AttributeError, MlflowException):
        raise RegistryError("this model was not logged by scenesweep (no scene classifier inside)") from None


def open_model(uri: str, *, tracking_uri: str):
    """load_model, after checking the tracking store where the URI lives in it."""
    from tracking.runs import check_tracking, require_existing_store

    if uri.startswith(("models:/", "runs:/")):
        require_existing_store(tracking_uri)
        check_tracking(tracking_uri)
    return load_model(uri, tracking_uri=tracking_uri)
