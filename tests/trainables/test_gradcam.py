"""Grad-CAM on real torch classifiers: it points at the evidence, explains the asked class, and
refuses networks with no last_conv."""

import numpy as np
import pytest
import torch
import torch.nn as nn

from serving.gradcam import GradCamUnsupported, grad_cam, overlay, pick_examples, supports_gradcam
from trainables.core.torch_loop import TorchClassifier
from trainables.tinynet import BUILDER, build_model

CLASSES = ["red", "green"]


class ColourNet(nn.Module):
    """Hand-set weights: 'red' scores the red channel minus green, 'green' the reverse, averaged over space."""

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 2, 1, bias=False)
        with torch.no_grad():
            self.conv.weight.copy_(torch.tensor([[1.0, -1.0, 0.0], [-1.0, 1.0, 0.0]])[:, :, None, None])
        self.head = nn.Sequential(nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(2, 2))
        with torch.no_grad():
            self.head[-1].weight.copy_(torch.eye(2) * 10)
            self.head[-1].bias.zero_()

    def forward(self, x):
        return self.head(self.conv(x))

    @property
    def last_conv(self):
        return self.conv


class NoConvNet(nn.Sequential):
    """Like an MLP family: no last_conv to explain."""


def classifier_of(model, *, size=16, classes=CLASSES):
    return TorchClassifier(
        model,
        builder=BUILDER,
        config={},
        class_names=classes,
        image_size=size,
        input_size=size,
        mean=[0.0, 0.0, 0.0],
        std=[1.0, 1.0, 1.0],
    )


def patch_image(colour, *, top, left, size=16, patch=4):
    image = np.zeros((size, size, 3), np.uint8)
    image[top : top + patch, left : left + patch] = colour
    return image


@pytest.mark.parametrize("top, left", [(0, 0), (0, 12), (12, 0), (6, 6)])
def test_heat_map_peaks_on_the_evidence_for_the_predicted_class(top, left):
    classifier = classifier_of(ColourNet())
    cam = grad_cam(classifier, patch_image((255, 0, 0), top=top, left=left)[None])
    assert list(cam.targets) == [0] and cam.probabilities[0, 0] > 0.5
    heat = cam.heatmaps[0]
    assert heat.shape == (16, 16) and heat.max() == pytest.approx(1.0) and heat.min() >= 0
    inside = np.zeros(heat.shape, bool)
    inside[top : top + 4, left : left + 4] = True
    assert heat[inside].min() > 0.9 and heat[~inside].max() < 0.1


def test_a_chosen_class_is_explained_instead_of_the_predicted_one():
    image = np.zeros((16, 16, 3), np.uint8)
    image[:4, :4] = (255, 0, 0)
    image[12:, 12:] = (0, 255, 0)
    image[8:12, 0:4] = (255, 0, 0)  # more red than green: predicted red
    classifier = classifier_of(ColourNet())
    green = grad_cam(classifier, image[None], target=1)
    assert list(green.targets) == [1] and green.probabilities[0].argmax() == 0
    row, col = np.unravel_index(green.heatmaps[0].argmax(), (16, 16))
    assert row >= 12 and col >= 12


def test_tinynet_batches_give_one_map_per_image(demo_dataset):
    model = build_model({"blocks": 3, "base_width": 8}, demo_dataset.num_classes)
    classifier = classifier_of(model, size=64, classes=list(demo_dataset.class_names))
    images = demo_dataset.x_test[:5]
    cam = grad_cam(classifier, images, batch_size=2)
    assert supports_gradcam(classifier)
    assert cam.heatmaps.shape == (5, 8, 8) and np.all((cam.heatmaps >= 0) & (cam.heatmaps <= 1))
    assert np.array_equal(cam.targets, classifier.predict_proba(images).argmax(1))
    assert all(p.requires_grad for p in model.parameters())  # Grad-CAM leaves the network as it found it


def test_networks_without_last_conv_are_refused():
    classifier = classifier_of(NoConvNet(nn.Flatten(), nn.Linear(16 * 16 * 3, 2)))
    assert not supports_gradcam(classifier)
    with pytest.raises(GradCamUnsupported, match="no.*last_conv|has none"):
        grad_cam(classifier, np.zeros((1, 16, 16, 3), np.uint8))


@pytest.mark.parametrize("shape", [(16, 16), (200, 300), (31, 7)])
def test_overlay_keeps_the_image_size(shape):
    image = np.full((*shape, 3), 128, np.uint8)
    heat = np.linspace(0, 1, 16, dtype=np.float32).reshape(4, 4)
    out = overlay(image, heat)
    assert out.shape == (*shape, 3) and out.dtype == np.uint8
    assert not np.array_equal(out, image)


def test_examples_cover_every_class_in_turn():
    labels = np.array([0] * 10 + [1] * 3 + [2] * 1)
    picked = pick_examples(labels, count=7)
    assert len(picked) == 7 and set(labels[picked]) == {0, 1, 2}
    assert np.count_nonzero(labels[picked] == 1) == 3
