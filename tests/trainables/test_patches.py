"""Patch extraction covers every pixel, exactly once where the patch size divides the side."""

import numpy as np
import pytest

from trainables.mlp.patches import extract_patches, patch_starts


@pytest.mark.parametrize(
    "side, patch, starts",
    [
        (64, 32, [0, 32]),
        (64, 64, [0]),
        (64, 8, list(range(0, 64, 8))),
        (64, 24, [0, 20, 40]),
        (64, 48, [0, 16]),
        (30, 7, [0, 6, 12, 17, 23]),
    ],
)
def test_patch_starts(side, patch, starts):
    assert patch_starts(side, patch).tolist() == starts


@pytest.mark.parametrize("patch", [8, 16, 24, 32, 48, 64])
def test_patches_cover_every_pixel(patch):
    images = np.random.default_rng(0).integers(0, 255, (3, 64, 64, 3), dtype=np.uint8)
    patches, centres = extract_patches(images, patch)
    starts = patch_starts(64, patch)
    covered = np.zeros((64, 64), dtype=int)
    for index, (row, col) in enumerate((r, c) for r in starts for c in starts):
        covered[row : row + patch, col : col + patch] += 1
        assert np.array_equal(patches[:, index], images[:, row : row + patch, col : col + patch])
    assert covered.min() >= 1
    if 64 % patch == 0:
        assert covered.max() == 1  # a tiling: no pixel twice
    assert patches.shape == (3, len(starts) ** 2, patch, patch, 3) and centres.shape == (len(starts) ** 2, 2)
    assert (centres > 0).all() and (centres < 1).all()


def test_patch_larger_than_image_is_an_error():
    with pytest.raises(ValueError, match="between 1 and the image side"):
        patch_starts(32, 48)


@pytest.mark.parametrize(
    "side, patch, stride, starts",
    [
        (64, 16, 8, [0, 8, 16, 24, 32, 40, 48]),
        (64, 24, 12, [0, 10, 20, 30, 40]),
        (64, 32, 32, [0, 32]),
    ],
)
def test_dense_starts_overlap_and_reach_the_last_pixel(side, patch, stride, starts):
    got = patch_starts(side, patch, stride)
    assert got.tolist() == starts and got[-1] + patch == side and np.diff(got).max() <= stride


def test_default_stride_is_the_cover():
    for patch in range(1, 65):
        assert patch_starts(64, patch).tolist() == patch_starts(64, patch, patch).tolist()
