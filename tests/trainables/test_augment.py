"""Device augmentation: shapes, exact identities, and that each switch changes pixels."""

import pytest
import torch

from trainables.core.augment import AUGMENT_DEFAULTS, DeviceAugmenter


@pytest.fixture
def images():
    torch.manual_seed(0)
    return torch.rand(6, 3, 32, 32)


def test_no_augmentation_is_identity(images):
    assert torch.equal(DeviceAugmenter({})(images, 32), images)


def test_output_is_resized_to_the_input_size(images):
    assert DeviceAugmenter({})(images, 16).shape == (6, 3, 16, 16)
    assert DeviceAugmenter({"aug_rotate": True})(images, 48).shape == (6, 3, 48, 48)


def test_flip_mirrors_exactly_or_not_at_all(images):
    torch.manual_seed(1)
    out = DeviceAugmenter({"aug_hflip": True})(images, 32)
    for original, augmented in zip(images, out):
        same = torch.allclose(augmented, original, atol=1e-5)
        mirrored = torch.allclose(augmented, original.flip(-1), atol=1e-5)
        assert same or mirrored


@pytest.mark.parametrize("switch", [k for k, v in AUGMENT_DEFAULTS.items() if v is False and k != "aug_hflip"])
def test_each_augmentation_changes_pixels_and_stays_in_range(images, switch):
    out = DeviceAugmenter({switch: True})(images, 32)
    assert out.shape == images.shape
    assert not torch.allclose(out, images)
    assert out.min() >= 0 and out.max() <= 1
