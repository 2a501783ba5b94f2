"""decode_image reads an image's declared size before decoding it, and refuses one over the cap."""

import cv2
import numpy as np
import pytest

from tests.images import huge_png
from trainables.core.images import MAX_DECODED_PIXELS, ImageDecodeError, declared_size, decode_image


@pytest.mark.parametrize("suffix", [".png", ".jpg", ".bmp"])
@pytest.mark.parametrize(("height", "width"), [(31, 47), (1, 300), (480, 640)])
def test_the_declared_size_is_the_decoded_size(suffix, height, width):
    image = np.random.default_rng(0).integers(0, 255, (height, width, 3), dtype=np.uint8)
    data = cv2.imencode(suffix, image)[1].tobytes()
    assert declared_size(data) == (width, height)
    assert decode_image(data).shape == (height, width, 3)


def test_a_gif_header_is_read():
    assert declared_size(b"GIF89a" + (320).to_bytes(2, "little") + (200).to_bytes(2, "little") + b"\x00" * 8) == (
        320,
        200,
    )


@pytest.mark.parametrize(
    "data", [b"", b"junk", b"\x89PNG\r\n\x1a\n", b"\xff\xd8\xff"], ids=["empty", "junk", "png-cut", "jpeg-cut"]
)
def test_unknown_or_cut_headers_declare_nothing(data):
    assert declared_size(data) is None


def test_an_image_over_the_pixel_cap_is_refused_before_it_is_decoded():
    data = huge_png(16000, 16000)
    assert len(data) < 2**20 and 16000 * 16000 > MAX_DECODED_PIXELS
    with pytest.raises(ImageDecodeError, match=r"declares 16000x16000 pixels, over the limit of [\d,]+ pixels"):
        decode_image(data)


def test_a_large_image_under_the_cap_still_decodes():
    assert decode_image(huge_png(4000, 3000)).shape == (3000, 4000, 3)
