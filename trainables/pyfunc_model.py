"""The served model: raw images in, class probabilities out.

MLflow loads this through `pyfunc_entry.py` (a models-from-code file). It
carries the whole `trainables` package as code, so serving needs no
scenesweep install, and it preprocesses exactly as training did: decode,
convert to RGB, resize to the dataset's resolution.
"""

from __future__ import annotations

import base64
import warnings

import numpy as np
import pandas as pd
from mlflow.pyfunc import PythonModel

from trainables.classifier import SceneClassifier
from trainables.images import as_rgb, decode_image, resize_square

IMAGE_COLUMN = "image"
# The signature is explicit (binary image column in, probabilities out); MLflow's type-hint nudge is noise.
warnings.filterwarnings("ignore", message=".*Add type hints to the `predict` method")


class ScenePyfuncModel(PythonModel):
    def load_context(self, context):
        self.classifier = SceneClassifier.load(context.artifacts["classifier"])

    def predict(self, context, model_input, params=None):
        images = to_images(model_input)
        return self.predict_images(images)

    def predict_images(self, images) -> pd.DataFrame:
        size = self.classifier.image_size
        batch = np.stack([resize_square(image, size) for image in images]) if len(images) else np.zeros((0, size, size, 3), np.uint8)
        probabilities = self.classifier.predict_proba(batch)
        return pd.DataFrame(probabilities.astype(np.float64), columns=self.classifier.class_names)


def to_images(model_input) -> list[np.ndarray]:
    """Accept a DataFrame with an `image` column (bytes, base64 text or arrays), arrays, or a list."""
    if isinstance(model_input, pd.DataFrame):
        if IMAGE_COLUMN not in model_input.columns:
            raise ValueError(f"expected a column named {IMAGE_COLUMN!r} holding encoded image bytes")
        values = list(model_input[IMAGE_COLUMN])
    elif isinstance(model_input, np.ndarray) and model_input.dtype == np.uint8 and model_input.ndim in (3, 4):
        values = [model_input] if model_input.ndim == 3 else list(model_input)
    elif isinstance(model_input, dict) and IMAGE_COLUMN in model_input:
        values = list(model_input[IMAGE_COLUMN])
    else:
        values = list(model_input)
    return [_to_image(value) for value in values]


def _to_image(value) -> np.ndarray:
    if isinstance(value, (bytes, bytearray, memoryview)):
        return decode_image(bytes(value))
    if isinstance(value, str):
        return decode_image(base64.b64decode(value))
    return as_rgb(np.asarray(value))
