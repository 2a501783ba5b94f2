"""The served model: raw images in, class probabilities out.

MLflow loads this through `pyfunc_entry.py` (a models-from-code file). It
carries the whole `trainables` package as code, so serving needs no
scenesweep install, and it preprocesses exactly as training did: decode,
convert to RGB, resize to the dataset's resolution.
"""

from __future__ import annotations

import base64
import binascii

import numpy as np
import pandas as pd
from mlflow.pyfunc import PythonModel

from trainables.core.classifier import SceneClassifier
from trainables.core.images import ImageDecodeError, as_rgb, decode_image, resize_square

IMAGE_COLUMN = "image"


class ScenePyfuncModel(PythonModel):
    # The signature is explicit (binary image column in, probabilities out): MLflow's type-hint based
    # validation does not apply, and skipping it also silences its "Add type hints" warning on every load.
    _skip_type_hint_validation = True

    def load_context(self, context):
        self.classifier = SceneClassifier.load(context.artifacts["classifier"])

    def predict(self, context, model_input, params=None):
        images = to_images(model_input)
        return self.predict_images(images)

    def predict_images(self, images) -> pd.DataFrame:
        size = self.classifier.image_size
        batch = (
            np.stack([resize_square(image, size) for image in images])
            if len(images)
            else np.zeros((0, size, size, 3), np.uint8)
        )
        probabilities = self.classifier.predict_proba(batch)
        return pd.DataFrame(probabilities.astype(np.float64), columns=self.classifier.class_names)


def to_images(model_input) -> list[np.ndarray]:
    """Accept a DataFrame with an `image` column (bytes, base64 text or arrays), arrays, or a list.

    A value that is not an image is a client error: MlflowException(INVALID_PARAMETER_VALUE) makes
    the scoring server answer 400 with the reason instead of a 500.
    """
    from mlflow.exceptions import MlflowException

    if isinstance(model_input, pd.DataFrame):
        if IMAGE_COLUMN not in model_input.columns:
            raise MlflowException.invalid_parameter_value(
                f"expected a column named {IMAGE_COLUMN!r} holding encoded image bytes"
            )
        values = list(model_input[IMAGE_COLUMN])
    elif isinstance(model_input, np.ndarray) and model_input.dtype == np.uint8 and model_input.ndim in (3, 4):
        values = [model_input] if model_input.ndim == 3 else list(model_input)
    elif isinstance(model_input, dict) and IMAGE_COLUMN in model_input:
        values = list(model_input[IMAGE_COLUMN])
    else:
        values = list(model_input)
    images = []
    for index, value in enumerate(values):
        try:
            images.append(_to_image(value))
        except ImageDecodeError as exc:
            raise MlflowException.invalid_parameter_value(
                f"image {index}: {exc}; send the image file's bytes (base64-encoded in JSON) or a uint8 array"
            ) from None
    return images


def _to_image(value) -> np.ndarray:
    if isinstance(value, str):
        value = value.encode("ascii", errors="replace")
    if isinstance(value, (bytes, bytearray, memoryview)):
        data = bytes(value)
        try:
            return decode_image(data)
        except ImageDecodeError:
            # The scoring server's `inputs` format hands binary columns over still base64-encoded
            # (only dataframe_split/records decode them); encoded image bytes are never valid base64.
            decoded = _base64(data)
            if decoded is None:
                raise
            return decode_image(decoded)
    return as_rgb(np.asarray(value))


def _base64(data: bytes) -> bytes | None:
    try:
        return base64.b64decode(b"".join(data.split()), validate=True)
    except (binascii.Error, ValueError):
        return None
