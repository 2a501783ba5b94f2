"""Grad-CAM (Selvaraju et al., 2017): where a CNN looked to pick a class.

Works for any `TorchClassifier` whose network names the layer to explain as a
`last_conv` property (TinyNet does; so does any CNN family that adds it).
Families without one (BoVW, MLP) are not CNNs and get `GradCamUnsupported`.
The heat map is the ReLU of the last conv's activations weighted by the
spatially averaged gradients of the class score, scaled to [0, 1] per image.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np


class GradCamUnsupported(ValueError):
    """The classifier has no convolutional layer to explain."""


@dataclass(frozen=True)
class GradCam:
    heatmaps: np.ndarray  # float32 (N, h, w) in [0, 1], at the explained layer's resolution
    probabilities: np.ndarray  # (N, classes)
    targets: np.ndarray  # (N,) the class each heat map explains


def supports_gradcam(classifier) -> bool:
    return hasattr(classifier, "to_input") and hasattr(getattr(classifier, "model", None), "last_conv")


def grad_cam(classifier, images: np.ndarray, *, target: int | None = None, batch_size: int = 64) -> GradCam:
    """Heat maps for uint8 RGB images at `classifier.image_size`; `target` None = the predicted class."""
    import torch
    import torch.nn.functional as F

    if not supports_gradcam(classifier):
        raise GradCamUnsupported(
            f"Grad-CAM explains CNNs whose network names a last_conv layer; this model "
            f"({type(classifier).__name__}) has none"
        )
    if target is not None and not 0 <= target < len(classifier.class_names):
        raise ValueError(f"class index {target} is out of range for {len(classifier.class_names)} classes")
    model = classifier.model
    model.eval()
    captured = {}

    def keep(_module, _inputs, output):
        captured["activations"] = output
        output.register_hook(lambda grad: captured.__setitem__("gradients", grad))

    handle = model.last_conv.register_forward_hook(keep)
    heatmaps, probabilities, targets = [], [], []
    try:
        for start in range(0, len(images), batch_size):
            batch = torch.as_tensor(np.ascontiguousarray(images[start : start + batch_size])).to(classifier.device)
            # Gradients flow from the input, so frozen (fine-tuned) layers below last_conv still get them.
            x = classifier.to_input(batch).contiguous().requires_grad_(True)
            with torch.enable_grad():
                logits = model(x).float()
                chosen = logits.argmax(1) if target is None else torch.full_like(logits[:, 0], target, dtype=torch.long)
                score = logits.gather(1, chosen[:, None]).sum()
                torch.autograd.grad(score, x)
            activations, gradients = captured["activations"].detach().float(), captured["gradients"].float()
            weights = gradients.mean(dim=(2, 3), keepdim=True)
            cam = F.relu((weights * activations).sum(dim=1))
            cam = cam / cam.flatten(1).amax(1).clamp_min(1e-12)[:, None, None]
            heatmaps.append(cam.cpu().numpy().astype(np.float32))
            probabilities.append(F.softmax(logits.detach(), dim=1).cpu().numpy())
            targets.append(chosen.cpu().numpy())
    finally:
        handle.remove()
    classes = len(classifier.class_names)
    if not heatmaps:
        return GradCam(np.zeros((0, 1, 1), np.float32), np.zeros((0, classes)), np.zeros(0, np.int64))
    return GradCam(np.concatenate(heatmaps), np.concatenate(probabilities), np.concatenate(targets))


def overlay(image: np.ndarray, heatmap: np.ndarray, *, alpha: float = 0.45) -> np.ndarray:
    """Blend a [0, 1] heat map (any resolution) onto an RGB uint8 image of any size, JET colours."""
    height, width = image.shape[:2]
    resized = cv2.resize(heatmap.astype(np.float32), (width, height), interpolation=cv2.INTER_CUBIC)
    colours = cv2.applyColorMap((np.clip(resized, 0, 1) * 255).astype(np.uint8), cv2.COLORMAP_JET)[:, :, ::-1]
    blended = (1 - alpha) * image.astype(np.float32) + alpha * colours.astype(np.float32)
    return np.clip(blended, 0, 255).astype(np.uint8)


def pick_examples(labels: np.ndarray, *, count: int = 16) -> np.ndarray:
    """Indices of up to `count` images, classes taken in turn, so every class shows up."""
    by_class = [list(np.flatnonzero(labels == label)) for label in np.unique(labels)]
    picked: list[int] = []
    while len(picked) < min(count, len(labels)):
        for members in by_class:
            if members and len(picked) < count:
                picked.append(int(members.pop(0)))
    return np.array(sorted(picked), dtype=np.int64)
