"""Models-from-code entry point: MLflow executes this file to build the served model."""

import mlflow

from serving.pyfunc_model import ScenePyfuncModel

mlflow.models.set_model(ScenePyfuncModel())
