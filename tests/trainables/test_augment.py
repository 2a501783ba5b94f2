"""Device augmentation: shapes, exact identities, whole-pixel flips and shifts, each switch acts."""

import pytest
import torch
import torch.nn.functional as F

from trainables.core.augment import AUGMENT_DEFAULTS, DeviceAugmenter

EVERYTHING_OFF = {key: False for key, value in AUGMENT_DEFAULTS.items() if value is False}


@pytest.fixture
def images():
    # Like the loop's batches: uint8 pixels / 255, so every value is exact and distinct values are few.
    torch.manual_seed(0)
    return torch.randint(0, 256, (6, 3, 32, 32)).float().div_(255)


def test_every_augmentation_off_returns_the_image_bit_for_bit(images):
    assert torch.equal(DeviceAugmenter({})(images, 32), images)
    assert torch.equal(DeviceAugmenter(EVERYTHING_OFF)(images, 32), images)


def test_output_is_resized_to_the_input_size(images):
    assert DeviceAugmenter({})(images, 16).shape == (6, 3, 16, 16)
    assert DeviceAugmenter({"aug_rotate": True})(images, 48).shape == (6, 3, 48, 48)
    assert DeviceAugmenter({"aug_shift": True, "aug_hflip": True})(images, 48).shape == (6, 3, 48, 48)


def test_a_flip_only_flips(images):
    torch.manual_seed(1)
    out = DeviceAugmenter({"aug_hflip": True})(torch.cat([images] * 4), 32)
    flipped = [torch.equal(a, torch.flip(b, dims=[-1])) for a, b in zip(out, torch.cat([images] * 4))]
    kept = [torch.equal(a, b) for a, b in zip(out, torch.cat([images] * 4))]
    assert all(f or k for f, k in zip(flipped, kept))
    assert any(flipped) and any(kept)


@pytest.mark.parametrize("fraction, pixels", [(0.1, 3), (0.125, 4), (0.25, 8)])
def test_a_shift_moves_whole_pixels_with_reflection_at_the_border(images, fraction, pixels):
    torch.manual_seed(2)
    batch = torch.cat([images] * 4)
    out = DeviceAugmenter({"aug_shift": True, "aug_shift_fraction": fraction})(batch, 32)
    padded = F.pad(batch, (pixels,) * 4, mode="reflect")
    offsets = set()
    for source, shifted in zip(padded, out):
        # Some crop of the reflect-padded image at whole-pixel offsets within +-pixels: nothing blends.
        matches = [
            (dy, dx)
            for dy in range(2 * pixels + 1)
            for dx in range(2 * pixels + 1)
            if torch.equal(shifted, source[:, dy : dy + 32, dx : dx + 32])
        ]
        assert matches
        offsets.update(matches)
    assert len(offsets) > 1  # random per image, not one offset for the batch


def test_a_flip_and_a_shift_together_create_no_new_pixel_values(images):
    out = DeviceAugmenter({"aug_hflip": True, "aug_shift": True})(images, 32)
    for source, augmented in zip(images, out):
        assert set(augmented.unique().tolist()) <= set(source.unique().tolist())


@pytest.mark.parametrize("switch", [k for k, v in AUGMENT_DEFAULTS.items() if v is False and k != "aug_hflip"])
def test_each_augmentation_changes_pixels_and_stays_in_range(images, switch):
    torch.manual_seed(3)
    out = DeviceAugmenter({switch: True})(images, 32)
    assert out.shape == images.shape
    assert not torch.allclose(out, images)
    assert out.min() >= 0 and out.max() <= 1
