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

from serving.gradcam import grad_cam, overlay, pick_examples, supports_gradcam
from serving.models import load_model, scene_classifier
from tracking.artifacts import image_grid_png
from tracking.runs import TAG_MODEL_URI
from tracking.summary import TAG_BEST_RUN_ID

GRADCAM_FILE = "gradcam.png"


def log_best_trial_gradcam(
    client: MlflowClient, parent_run_id: str, dataset, *, tracking_uri: str, count: int = 16
) -> str | None:
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
    titles = [
        f"{names[t]} {cams.probabilities[i, t]:.2f}\n(true {names[y]})"
        for i, (t, y) in enumerate(zip(cams.targets, labels))
    ]
    return image_grid_png(
        overlays,
        titles,
        path,
        correct=list(cams.targets == labels),
        title="Grad-CAM of the predicted class (test images)",
    )


class ExplainError(ValueError):
    """The image, the output file or the model cannot be explained; the message says why."""


def read_explain_inputs(image_path: Path, out: Path) -> np.ndarray:
    """The image to explain, decoded, once `out` is known to be writable: checked before any model loads."""
    from trainables.core.images import ImageDecodeError, decode_image

    if not image_path.is_file():
        raise ExplainError(f"image {image_path} does not exist; pass an image file")
    try:
        image = decode_image(image_path.read_bytes())
    except (OSError, ImageDecodeError) as exc:
        raise ExplainError(f"cannot read image {image_path}: {exc}") from None
    if out.suffix.lower() not in (".png", ".jpg", ".jpeg"):
        raise ExplainError(f"--out {out}: name a .png (or .jpg) file")
    if not out.parent.is_dir():
        raise ExplainError(f"--out {out}: folder {out.parent} does not exist")
    if out.exists() and out.resolve() == image_path.resolve():
        raise ExplainError(f"--out {out} is the image being explained; name another file, e.g. {out.stem}_gradcam.png")
    return image


def explain_image(
    image: np.ndarray, image_path: Path, out: Path, model, *, model_uri: str, target: str | None = None
) -> str:
    """Write the Grad-CAM overlay of `model`'s prediction for `image` to `out`; returns the line the
    CLI prints."""
    import cv2

    from serving.gradcam import GradCamUnsupported
    from trainables.core.images import resize_square

    classifier = scene_classifier(model)
    names = classifier.class_names
    if target is not None and target not in names:
        raise ExplainError(f"--class {target!r} is not one of the model's classes: {', '.join(names)}")
    try:
        cam = grad_cam(
            classifier,
            resize_square(image, classifier.image_size)[None],
            target=names.index(target) if target is not None else None,
        )
    except GradCamUnsupported as exc:
        raise ExplainError(f"cannot explain {model_uri}: {exc}; Grad-CAM is for the CNN families") from None
    picture = overlay(image, cam.heatmaps[0])
    if not cv2.imwrite(str(out), np.ascontiguousarray(picture[:, :, ::-1])):
        raise ExplainError(f"--out {out}: could not write the image there")
    predicted = int(cam.probabilities[0].argmax())
    explained = names[int(cam.targets[0])]
    return (
        f"{image_path}: predicted {names[predicted]} ({cam.probabilities[0, predicted]:.4f}); "
        f"Grad-CAM of {explained!r} written to {out} ({picture.shape[1]}x{picture.shape[0]})"
    )
