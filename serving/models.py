"""Log a fitted classifier as the trial's MLflow pyfunc model (named after the trial), and load one back by URI.

The model is self-contained: the `serving`, `trainables` and `search_spaces` packages (which the
classifiers import their constants from) travel as code, in one zip built once per process
(`code/scenesweep_code.zip`, put on sys.path by `pyfunc_entry.py`: one upload per trial instead of
one per source file, which over a proxied S3 store was most of a trial's bookkeeping), the
classifier's saved folder as an artifact, and the requirements are pinned to
the versions that trained it (listed, not inferred: inference would load the
model in a subprocess for every trial).
"""

from __future__ import annotations

import functools
import logging
import os
import tempfile
import zipfile
from importlib import metadata
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pandas as pd
from mlflow.exceptions import MlflowException

import search_spaces
import serving
import trainables
from serving.pyfunc_model import IMAGE_COLUMN
from tracking.registry import RegistryError, first_line
from tracking.runs import require_existing_store
from tracking.uris import fluent_store, masked
from trainables.core.classifier import SceneClassifier
from trainables.core.images import encode_png

MODEL_NAME = "model"  # the logged model's name when the caller gives none
_REQUIREMENTS = ("mlflow", "numpy", "pandas", "opencv-contrib-python-headless", "scikit-learn", "torch", "torchvision")


def log_classifier(
    run_id: str,
    classifier: SceneClassifier,
    example_images: np.ndarray,
    *,
    experiment_id: str,
    name: str = MODEL_NAME,
    tags: dict | None = None,
):
    """Log `classifier` under run `run_id` (of experiment `experiment_id`) as model `name`; returns
    MLflow's ModelInfo (model_uri, model_id). `tags` override the worker's own context (MLflow would
    say the model was logged from Ray's default_worker.py)."""
    with tempfile.TemporaryDirectory() as tmp:
        saved = classifier.save(Path(tmp) / "classifier")
        return log_saved_classifier(
            run_id,
            saved,
            classifier.class_names,
            example_images,
            experiment_id=experiment_id,
            name=name,
            tags=tags,
        )


def log_saved_classifier(
    run_id: str,
    saved: Path,
    class_names,
    example_images: np.ndarray,
    *,
    experiment_id: str,
    name: str = MODEL_NAME,
    tags: dict | None = None,
):
    """log_classifier for a classifier already saved (`SceneClassifier.save`) in folder `saved`: a
    trial saves it and its node's recorder logs it (trainables/recorder.py)."""
    import mlflow
    from mlflow.models import Model, ModelSignature
    from mlflow.types import ColSpec, Schema

    signature = ModelSignature(
        inputs=Schema([ColSpec("binary", IMAGE_COLUMN)]),
        outputs=Schema([ColSpec("double", name) for name in class_names]),
    )
    example = pd.DataFrame({IMAGE_COLUMN: [encode_png(image) for image in example_images[:2]]})
    # MLflow files a new logged model under the fluent API's experiment (Default unless set), not
    # under its source run's: point it at the run's experiment, where the UI shows the run.
    mlflow.set_experiment(experiment_id=experiment_id)
    _skip_installed_module_scan()
    quiet = logging.getLogger("mlflow")
    level = quiet.level
    quiet.setLevel(logging.WARNING)  # MLflow narrates every step at INFO
    try:
        return Model.log(
            artifact_path=None,
            name=name,
            tags=tags,
            flavor=_PYFUNC_UNCHECKED,
            run_id=run_id,
            python_model=str(Path(serving.__file__).parent / "pyfunc_entry.py"),
            artifacts={"classifier": str(saved)},
            code_paths=[str(code_archive())],
            signature=signature,
            input_example=example,
            validate_serving_input=False,  # see _PYFUNC_UNCHECKED
            pip_requirements=list(pinned_requirements()),
        )
    finally:
        quiet.setLevel(level)


def _skip_installed_module_scan() -> None:
    """Logging and loading a model check its pins against the installed packages, first mapping every
    installed module to its package (importlib_metadata.packages_distributions: ~1.5-1.9 s, once per
    process). With an empty map the check still runs: it looks each pinned package up by its name
    (all of ours are pip distributions), so a mismatch is still reported. If MLflow renames this
    private map, nothing changes but the time."""
    from mlflow.utils import requirements_utils

    if getattr(requirements_utils, "_MODULES_TO_PACKAGES", ()) is None:
        setattr(requirements_utils, "_MODULES_TO_PACKAGES", {})  # noqa: B010 - a private name mypy types as None


CODE_ARCHIVE = "scenesweep_code.zip"  # pyfunc_entry.py looks for it under the model's code/


@functools.cache  # the packages don't change while a worker runs: one archive per process
def code_archive() -> Path:
    """The Python sources of serving, trainables and search_spaces in one zip (zipimport loads them)."""
    path = Path(tempfile.mkdtemp(prefix="scenesweep-code-")) / CODE_ARCHIVE
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for package in (serving, trainables, search_spaces):
            folder = Path(str(package.__file__)).parent
            for source in sorted(folder.rglob("*.py")):
                archive.write(source, source.relative_to(folder.parent).as_posix())
    return path


def _save_pyfunc(*, validate_serving_input: bool, **kwargs):
    import mlflow.pyfunc

    return mlflow.pyfunc.save_model(**kwargs)


# mlflow.pyfunc as Model.log sees it, minus the serving check: Model.log would load the model it just
# saved and predict the input example (a third of the logging time), but only reads
# `validate_serving_input` from its kwargs, which pyfunc.save_model then refuses. Served models are
# checked by the tests instead (tests/tracking/test_models.py, tests/trainables/test_predict.py).
_PYFUNC_UNCHECKED = SimpleNamespace(__name__="mlflow.pyfunc", save_model=_save_pyfunc)


@functools.cache  # package metadata lookups are slow and the versions don't change within a process
def pinned_requirements() -> tuple[str, ...]:
    pins = []
    for name in _REQUIREMENTS:
        try:
            pins.append(f"{name}=={metadata.version(name)}")
        except metadata.PackageNotFoundError:
            continue
    return tuple(pins)


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
    _skip_installed_module_scan()  # loading checks the model's pins against this environment too
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
