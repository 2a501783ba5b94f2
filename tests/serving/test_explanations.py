"""explain's checks on its files, before any model loads."""

import pytest

from serving.explanations import ExplainError, read_explain_inputs
from trainables.core.images import encode_png


@pytest.fixture
def image_file(tmp_path, demo_dataset):
    path = tmp_path / "photos" / "coast.png"
    path.parent.mkdir()
    path.write_bytes(encode_png(demo_dataset.x_test[0]))
    return path


@pytest.mark.parametrize(
    "spelling",
    [
        lambda image: image,  # the same path
        lambda image: image.parent / ".." / image.parent.name / image.name,  # another spelling of it
        lambda image: _link(image),  # a link to it
    ],
    ids=["same-path", "dot-dot", "symlink"],
)
def test_the_heat_map_never_overwrites_the_image_it_explains(image_file, spelling):
    before = image_file.read_bytes()
    with pytest.raises(ExplainError, match="is the image being explained; name another file"):
        read_explain_inputs(image_file, spelling(image_file))
    assert image_file.read_bytes() == before


def test_another_file_beside_the_image_is_fine(image_file):
    image = read_explain_inputs(image_file, image_file.with_name("coast_gradcam.png"))
    assert image.ndim == 3 and image.shape[2] == 3


def _link(image):
    link = image.with_name("link.png")
    link.symlink_to(image)
    return link
