"""Log a saved model folder as an MLflow pyfunc model: images in, one probability column per class out.

Knows no family and no package of ours: the caller names the models-from-code entry file, the code
archive it needs (`code_archive(packages)`), the input column and the requirements. The code
travels as one zip built once per process (one upload per model instead of one per source file,
which over a proxied S3 store was most of a trial's bookkeeping); the requirements are pinned to
the installed versions (listed, not inferred: inference would load the model in a subprocess for
every trial).
"""

from __future__ import annotations

import functools
import logging
import tempfile
import zipfile
from collections.abc import Sequence
from importlib import metadata
from pathlib import Path
from types import ModuleType, SimpleNamespace

MODEL_NAME = "model"  # the logged model's name when the caller gives none


def log_image_model(
    run_id: str,
    *,
    experiment_id: str,
    entry: Path,
    artifacts: dict[str, str],
    code: Path,
    input_column: str,
    class_names: Sequence[str],
    example_images: Sequence[bytes],
    requirements: Sequence[str],
    name: str = MODEL_NAME,
    tags: dict | None = None,
):
    """Log the model that `entry` (a models-from-code file) builds from `artifacts`, under run `run_id`
    of experiment `experiment_id`, as model `name`; returns MLflow's ModelInfo (model_uri, model_id).
    `tags` override the worker's own context (MLflow would say the model was logged from Ray's
    default_worker.py)."""
    import mlflow
    import pandas as pd
    from mlflow.models import Model, ModelSignature
    from mlflow.types import ColSpec, Schema

    signature = ModelSignature(
        inputs=Schema([ColSpec("binary", input_column)]),
        outputs=Schema([ColSpec("double", name) for name in class_names]),
    )
    example = pd.DataFrame({input_column: list(example_images)})
    # MLflow files a new logged model under the fluent API's experiment (Default unless set), not
    # under its source run's: point it at the run's experiment, where the UI shows the run.
    mlflow.set_experiment(experiment_id=experiment_id)
    skip_installed_module_scan()
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
            python_model=str(entry),
            artifacts=artifacts,
            code_paths=[str(code)],
            signature=signature,
            input_example=example,
            validate_serving_input=False,  # see _PYFUNC_UNCHECKED
            pip_requirements=list(requirements),
        )
    finally:
        quiet.setLevel(level)


def skip_installed_module_scan() -> None:
    """Logging and loading a model check its pins against the installed packages, first mapping every
    installed module to its package (importlib_metadata.packages_distributions: ~1.5-1.9 s, once per
    process). With an empty map the check still runs: it looks each pinned package up by its name
    (all of ours are pip distributions), so a mismatch is still reported. If MLflow renames this
    private map, nothing changes but the time (docs/architecture.md, private names)."""
    from mlflow.utils import requirements_utils

    if getattr(requirements_utils, "_MODULES_TO_PACKAGES", ()) is None:
        setattr(requirements_utils, "_MODULES_TO_PACKAGES", {})  # noqa: B010 - a private name mypy types as None


@functools.cache  # the packages don't change while a worker runs: one archive per process
def code_archive(packages: tuple[ModuleType, ...], *, file_name: str) -> Path:
    """The Python sources of `packages` in one zip named `file_name` (zipimport loads them)."""
    path = Path(tempfile.mkdtemp(prefix="scenesweep-code-")) / file_name
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for package in packages:
            folder = Path(str(package.__file__)).parent
            for source in sorted(folder.rglob("*.py")):
                archive.write(source, source.relative_to(folder.parent).as_posix())
    return path


@functools.cache  # package metadata lookups are slow and the versions don't change within a process
def pinned_requirements(names: tuple[str, ...]) -> tuple[str, ...]:
    """`name==version` for each of `names` that is installed."""
    pins = []
    for name in names:
        try:
            pins.append(f"{name}=={metadata.version(name)}")
        except metadata.PackageNotFoundError:
            continue
    return tuple(pins)


def _save_pyfunc(*, validate_serving_input: bool, **kwargs):
    import mlflow.pyfunc

    return mlflow.pyfunc.save_model(**kwargs)


# mlflow.pyfunc as Model.log sees it, minus the serving check: Model.log would load the model it just
# saved and predict the input example (a third of the logging time), but only reads
# `validate_serving_input` from its kwargs, which pyfunc.save_model then refuses. Served models are
# checked by the tests instead (tests/tracking/test_models.py, tests/trainables/test_predict.py).
_PYFUNC_UNCHECKED = SimpleNamespace(__name__="mlflow.pyfunc", save_model=_save_pyfunc)
