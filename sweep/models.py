"""A fitted classifier as an MLflow pyfunc model: serving's model (raw images in, class
probabilities out), scenesweep's own packages as its code, logged through tracking.

The model is self-contained: the `serving`, `trainables` and `search_spaces` packages (which the
classifiers import their constants from) travel as code in one zip (`code/scenesweep_code.zip`,
put on sys.path by `serving/pyfunc_entry.py`), the classifier's saved folder as an artifact.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import numpy as np

import search_spaces
import serving
import trainables
from serving.pyfunc_model import IMAGE_COLUMN
from tracking.models import MODEL_NAME, code_archive, log_image_model, pinned_requirements
from trainables.core.classifier import SceneClassifier
from trainables.core.images import encode_png

REQUIREMENTS = ("mlflow", "numpy", "pandas", "opencv-contrib-python-headless", "scikit-learn", "torch", "torchvision")
ENTRY = Path(str(serving.__file__)).parent / "pyfunc_entry.py"
CODE_ARCHIVE = "scenesweep_code.zip"  # pyfunc_entry.py looks for it under the model's code/


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
    MLflow's ModelInfo (model_uri, model_id)."""
    with tempfile.TemporaryDirectory() as tmp:
        saved = classifier.save(Path(tmp) / "classifier")
        return log_saved_classifier(
            run_id, saved, classifier.class_names, example_images, experiment_id=experiment_id, name=name, tags=tags
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
    trial saves it and its node's recorder logs it (sweep/recorder.py)."""
    return log_image_model(
        run_id,
        experiment_id=experiment_id,
        entry=ENTRY,
        artifacts={"classifier": str(saved)},
        code=code_archive((serving, trainables, search_spaces), file_name=CODE_ARCHIVE),
        input_column=IMAGE_COLUMN,
        class_names=list(class_names),
        example_images=[encode_png(image) for image in example_images[:2]],
        requirements=pinned_requirements(REQUIREMENTS),
        name=name,
        tags=tags,
    )
