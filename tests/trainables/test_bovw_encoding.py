"""BoVW encodings on real descriptors: dimensions, normalisation, pyramid weights, empty images."""

import numpy as np
import pytest

from tests.trainables.bovw_images import real_images
from trainables.bovw.descriptors import DescriptorSet, DescriptorSpec, extract_descriptors
from trainables.bovw.encoding import BovwEncoder, EncodingError, cell_index, pyramid_cells, pyramid_weights


@pytest.fixture(scope="module")
def descriptors(mit_split_64):
    images, _ = real_images(mit_split_64, per_class=3)  # 24 photographs, 64 dense SIFT each
    found = extract_descriptors(images, DescriptorSpec(step=8, sizes=(8,)))
    flat = DescriptorSet.from_arrays([np.zeros((0, 128), np.uint8)], [np.zeros((0, 2))])  # no keypoints at all
    return DescriptorSet.from_arrays(
        [found.image(i)[0] for i in range(len(found))] + [flat.image(0)[0]],
        [found.image(i)[1] for i in range(len(found))] + [flat.image(0)[1]],
    )


@pytest.mark.parametrize("levels, weights", [(0, [1.0]), (1, [0.5, 0.5]), (2, [0.25, 0.25, 0.5])])
def test_pyramid_weights_are_lazebniks(levels, weights):
    assert np.allclose(pyramid_weights(levels), weights) and pyramid_weights(levels).sum() == pytest.approx(1)
    assert pyramid_cells(levels) == [1, 5, 21][levels]


def test_cells_are_row_major_per_level():
    positions = np.array([[0.1, 0.1], [0.9, 0.1], [0.1, 0.9], [0.6, 0.3]], np.float32)
    cells = cell_index(positions, 2)
    assert cells[:, 0].tolist() == [0, 0, 0, 0]
    assert cells[:, 1].tolist() == [1, 2, 3, 2]  # 2x2 cells numbered 1..4
    assert cells[:, 2].tolist() == [5, 8, 17, 11]  # 4x4 cells numbered 5..20


ENCODERS = [
    dict(encoding="histogram", codebook_size=40),
    dict(encoding="fisher", gmm_components=8, descriptor_pca=16),
    dict(encoding="vlad", vlad_clusters=8, descriptor_pca=16, rootsift=True),
]


@pytest.mark.parametrize("levels", [0, 1, 2])
@pytest.mark.parametrize("params", ENCODERS, ids=lambda p: p["encoding"])
def test_encodings_shapes_and_normalisation(descriptors, params, levels):
    encoder = BovwEncoder(**params, pyramid_levels=levels, seed=0).fit(descriptors)
    features = encoder.transform(descriptors)
    words = params.get("codebook_size") or params.get("gmm_components") or params.get("vlad_clusters")
    per_cell = {"histogram": words, "fisher": 2 * words * 16, "vlad": words * 16}[params["encoding"]]
    assert (
        features.shape
        == (len(descriptors), per_cell * pyramid_cells(levels))
        == (len(descriptors), encoder.feature_dim)
    )
    assert features.dtype == np.float32 and np.isfinite(features).all()
    assert not features[-1].any()  # the image without descriptors encodes to zeros
    assert encoder.empty_images(descriptors) == 1
    blocks = features[:-1].reshape(len(descriptors) - 1, pyramid_cells(levels), per_cell)
    level_of_cell = np.repeat(np.arange(levels + 1), [4**lv for lv in range(levels + 1)])
    weight = pyramid_weights(levels)[level_of_cell]
    if params["encoding"] == "histogram":
        assert (features >= 0).all() and np.allclose(features[:-1].sum(axis=1), 1.0)  # L1 over the pyramid
        per_level = np.stack([blocks[:, level_of_cell == lv].sum(axis=(1, 2)) for lv in range(levels + 1)], axis=1)
        assert np.allclose(per_level, pyramid_weights(levels))
    else:
        # Power + L2 per cell, then the level weight: each non-empty cell has norm = its weight.
        norms = np.linalg.norm(blocks, axis=2)
        assert np.allclose(norms[norms > 0], np.broadcast_to(weight, norms.shape)[norms > 0], atol=1e-5)
        assert (norms[:, 0] > 0).all()


def test_encoder_is_deterministic_for_a_seed(descriptors):
    first = BovwEncoder(encoding="fisher", gmm_components=8, descriptor_pca=16, seed=3).fit(descriptors)
    second = BovwEncoder(encoding="fisher", gmm_components=8, descriptor_pca=16, seed=3).fit(descriptors)
    assert np.array_equal(first.transform(descriptors), second.transform(descriptors))


@pytest.mark.parametrize(
    "params, message",
    [
        (dict(encoding="histogram", codebook_size=5000), "codebook_size 5000 is more than the"),
        (dict(encoding="fisher", gmm_components=2000, descriptor_pca=16), "gmm_components 2000 is more than the"),
        (dict(encoding="fisher", gmm_components=8, descriptor_pca=200), "descriptor_pca 200 is more than"),
        (dict(encoding="bag"), "unknown encoding 'bag'"),
    ],
)
def test_impossible_encoders_say_why(descriptors, params, message):
    with pytest.raises(EncodingError, match=message):
        BovwEncoder(**params).fit(descriptors)


def test_arbitrary_descriptors_encode(descriptors):
    """Any per-image float descriptors with positions (the MLP family's patches) go through unchanged."""
    rng = np.random.default_rng(0)
    patches = DescriptorSet.from_arrays(
        [rng.normal(size=(16, 12)).astype(np.float32) for _ in range(10)], [rng.random((16, 2)) for _ in range(10)]
    )
    encoder = BovwEncoder(encoding="vlad", vlad_clusters=4, pyramid_levels=1).fit(patches)
    assert encoder.transform(patches).shape == (10, 4 * 12 * 5)


@pytest.mark.parametrize("params", ENCODERS, ids=lambda p: p["encoding"])
def test_each_pyramid_cell_encodes_exactly_its_own_descriptors(descriptors, params):
    import copy

    pyramid = BovwEncoder(**params, pyramid_levels=1, seed=0).fit(descriptors)
    flat = copy.deepcopy(pyramid)
    flat.pyramid_levels, flat.weights_ = 0, pyramid_weights(0)
    image = descriptors.images(4, 5)
    encoded = pyramid.transform(image)[0].reshape(5, -1)
    assert np.allclose(encoded[0] / 0.5, flat.transform(image)[0], atol=1e-5)  # level 0 = the whole image
    values, where = image.image(0)
    quadrant = (where[:, 0] >= 0.5) & (where[:, 1] < 0.5)  # top right = cell 2 of level 1
    alone = DescriptorSet.from_arrays([values[quadrant]], [where[quadrant]])
    expected = flat.transform(alone)[0]
    if params["encoding"] == "histogram":
        expected = expected * quadrant.mean()  # counts are over the whole image's descriptors
    assert np.allclose(encoded[2] / 0.5, expected, atol=1e-5)
