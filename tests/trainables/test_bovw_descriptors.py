"""BoVW descriptors on real photographs: shapes, grids, colour, binary features, empty images, SURF."""

import numpy as np
import pytest

from tests.trainables.bovw_images import real_images
from trainables.bovw.descriptors import (
    SURF_UNAVAILABLE,
    DescriptorError,
    DescriptorSet,
    DescriptorSpec,
    extract_descriptors,
)


@pytest.fixture(scope="module")
def images(mit_split_64):
    return real_images(mit_split_64, per_class=1)[0]  # 8 real 64x64 photographs


SPECS = [
    DescriptorSpec(method="dense_sift", step=8, sizes=(8,)),
    DescriptorSpec(method="dense_sift", step=16, sizes=(4, 8), upscale=2),
    DescriptorSpec(method="dense_sift", step=16, sizes=(8,), color="opponent"),
    DescriptorSpec(method="sift", keypoints=50, color="rgb"),
    DescriptorSpec(method="daisy", step=16, radius=8),
    DescriptorSpec(method="orb", keypoints=100, upscale=2),
]


@pytest.mark.parametrize("spec", SPECS, ids=lambda s: f"{s.method}-{s.color}-x{s.upscale}")
def test_every_method_gives_descriptors_with_positions(images, spec):
    found = extract_descriptors(images, spec)
    assert len(found) == len(images) and found.dim == spec.dim
    assert found.descriptors.shape == (found.offsets[-1], spec.dim)
    assert found.positions.min() >= 0 and found.positions.max() < 1
    assert found.counts.sum() > 0
    if spec.method in ("dense_sift", "daisy"):
        side = 64 * spec.upscale // spec.step
        per_size = len(spec.sizes) if spec.method == "dense_sift" else 1
        assert (found.counts == side * side * per_size).all()  # a full grid on every image
    if spec.method in ("sift", "dense_sift"):
        assert found.descriptors.dtype == np.uint8  # SIFT values are integers 0..255: stored losslessly
    if spec.method == "orb":
        assert set(np.unique(found.descriptors)) <= {0, 1}  # 256 unpacked bits


def test_colour_descriptors_are_three_grey_sized_blocks(images):
    grey = extract_descriptors(images, DescriptorSpec(step=16, sizes=(8,)))
    rgb = extract_descriptors(images, DescriptorSpec(step=16, sizes=(8,), color="rgb"))
    assert rgb.dim == 3 * grey.dim and (rgb.counts == grey.counts).all()
    assert np.allclose(rgb.positions, grey.positions)


def test_threads_do_not_change_the_result(images):
    spec = DescriptorSpec(method="sift", keypoints=60)
    one, two = extract_descriptors(images, spec, n_jobs=1), extract_descriptors(images, spec, n_jobs=3)
    assert np.array_equal(one.descriptors, two.descriptors) and np.array_equal(one.offsets, two.offsets)


@pytest.mark.parametrize("method", ["sift", "orb"])
def test_flat_images_have_no_keypoints_and_do_not_crash(images, method):
    flat = np.full((3, 64, 64, 3), 120, np.uint8)
    found = extract_descriptors(np.concatenate([flat, images[:2]]), DescriptorSpec(method=method))
    assert list(found.counts[:3]) == [0, 0, 0] and found.counts[3:].sum() > 0
    descriptors, positions = found.image(0)
    assert descriptors.shape == (0, found.dim) and positions.shape == (0, 2)


@pytest.mark.parametrize(
    "config, message",
    [
        ({"method": "surf"}, "SURF is patented"),
        ({"method": "hog"}, "unknown descriptor 'hog'"),
        ({"color": "hsv"}, "unknown color 'hsv'"),
        ({"method": "orb", "color": "rgb"}, "grey images only"),
    ],
)
def test_impossible_descriptors_say_why(config, message):
    with pytest.raises(DescriptorError, match=message):
        DescriptorSpec(**config)
    assert "pip builds" in SURF_UNAVAILABLE


def test_spec_from_search_space_keys_and_identity():
    spec = DescriptorSpec.from_config(
        {
            "descriptor": "dense_sift",
            "patch_sizes": "8,16",
            "dense_step": 6,
            "upscale": 2,
            "keypoints": 999,
            "rootsift": True,
        }
    )
    assert spec.sizes == (8, 16) and spec.step == 6 and spec.upscale == 2
    assert "keypoints" not in spec.identity()  # unused by dense SIFT: does not split the cache
    assert DescriptorSpec.from_config({"patch_sizes": 8}).sizes == (8,)  # as `best` reads it back from MLflow


def test_descriptor_sets_from_arbitrary_arrays():
    """The reuse path (e.g. the MLP family's per-patch features): ragged per-image arrays in."""
    rng = np.random.default_rng(0)
    arrays = [rng.random((n, 5), dtype=np.float32) for n in (3, 0, 4)]
    where = [rng.random((n, 2), dtype=np.float32) for n in (3, 0, 4)]
    found = DescriptorSet.from_arrays(arrays, where)
    assert list(found.counts) == [3, 0, 4] and found.dim == 5
    assert np.array_equal(found.image(2)[0], arrays[2])
    assert len(found.images(1, 3)) == 2 and found.images(1, 3).counts.tolist() == [0, 4]
    with pytest.raises(ValueError, match="position arrays"):
        DescriptorSet.from_arrays(arrays, where[:2])
