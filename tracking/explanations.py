"""Grad-CAM in MLflow: the best trial of a sweep gets `gradcam.png`.

The model is loaded back from MLflow exactly as `predict` and `serve` load it,
so the picture explains the model that would be promoted, not a training-time
copy. Families that are not CNNs (no `last_conv`) get no picture.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import numpy as np
from mlflow.tracking import MlflowClient

from tracking.artifacts import image_grid_png
from tracking.registry import load_model, scene_classifier
from tracking.summary import TAG_BEST_RUN_ID
from trainables.gradcam import grad_cam, overlay, pick_examples, supports_gradcam
from trainables.trial import TAG_MODEL_URI

GRADCAM_FILE = "gradcam.png"


def log_best_trial_gradcam(client: MlflowClient, parent_run_id: str, dataset, *, tracking_uri: str,
                           count: int = 16) -> str | None:
    """Log gradcam.png on the sweep's best trial; returns that run's id, or None when not a CNN."""
    best_run_id = client.get_run(parent_run_id).data.tags.get(TAG_BEST_RUN_ID)
    if not best_run_id:
        return None
    model_uri = client.get_run(best_run_id).data.tags.get(TAG_MODEL_URI)
    if not model_uri:
        return None
    classifier = scene_classifier(load_model(model_uri, tracking_uri=tracking_uri))
    if not supports_gradcam(classifier):
        return None
    index = pick_examples(dataset.y_test, count=count)
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / GRADCAM_FILE
        gradcam_grid_png(classifier, dataset.x_test[index], dataset.y_test[index], path)
        client.log_artifact(best_run_id, str(path))
    return best_run_id


def gradcam_grid_png(classifier, images: np.ndarray, labels: np.ndarray, path: Path) -> Path:
    """A grid of images overlaid with the heat map of their predicted class, titled prediction / truth."""
    cams = grad_cam(classifier, images)
    names = classifier.class_names
    overlays = [overlay(image, heatmap) for image, heatmap in zip(images, cams.heatmaps)]
    titles = [f"{names[t]} {cams.probabilities[i, t]:.2f}\n(true {names[y]})"
              for i, (t, y) in enumerate(zip(cams.targets, labels))]
    return image_grid_png(overlays, titles, path, correct=list(cams.targets == labels),
                          title="Grad-CAM of the predicted class (test images)")
