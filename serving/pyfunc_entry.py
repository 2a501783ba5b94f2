"""Models-from-code entry point: MLflow executes this file to build the served model."""

import sys
from pathlib import Path

import mlflow

# The model's own copy of scenesweep's packages (sweep/models.py: CODE_ARCHIVE), ahead of any
# installed one, so the model runs the code that trained it. Older models carry the packages as
# folders under code/, which MLflow puts on sys.path itself.
_ARCHIVE = Path(__file__).resolve().parent / "code" / "scenesweep_code.zip"
if _ARCHIVE.is_file() and str(_ARCHIVE) not in sys.path:
    sys.path.insert(0, str(_ARCHIVE))

from serving.pyfunc_model import ScenePyfuncModel  # noqa: E402

mlflow.models.set_model(ScenePyfuncModel())
