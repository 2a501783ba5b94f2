"""Decoding and resizing of raw images, shared by data loading and the served model.

Training and serving must preprocess identically, so both go through
`decode_image` and `resize_square`; nothing else in scenesweep touches codecs.
"""

from __future__ import annotations

import cv2
import numpy as np

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp", ".ppm", ".pgm")


# The most pixels one image may decode to: any camera's photo (a 48-megapixel phone is 8000x6000) and
# about 200 MB as RGB. A small file can declare a huge image (a 275 KB PNG of 16000x16000 took 1.8 GB
# to decode), so the size is read from the header before anything is decoded.
MAX_DECODED_PIXELS = 64 * 2**20


class ImageDecodeError(ValueError):
    """The bytes are not an image OpenCV can decode (or declare one too large to decode)."""


def decode_image(data: bytes) -> np.ndarray:
    """Decode encoded image bytes (JPEG, PNG, ...) to an RGB uint8 array of shape (H, W, 3); refused
    before decoding when the header declares more than MAX_DECODED_PIXELS."""
    size = declared_size(data)
    if size is not None and size[0] * size[1] > MAX_DECODED_PIXELS:
        raise ImageDecodeError(
            f"the image declares {size[0]}x{size[1]} pixels, over the limit of {MAX_DECODED_PIXELS:,} pixels "
            "per image; resize it first"
        )
    buffer = np.frombuffer(data, dtype=np.uint8)
    image = cv2.imdecode(buffer, cv2.IMREAD_UNCHANGED) if buffer.size else None
    if image is None:
        raise ImageDecodeError("not a decodable image")
    return as_rgb(image, channel_order="bgr")


_JPEG_FRAMES = {0xC0, 0xC1, 0xC2, 0xC3, 0xC5, 0xC6, 0xC7, 0xC9, 0xCA, 0xCB, 0xCD, 0xCE, 0xCF}  # SOFn markers


def declared_size(data: bytes) -> tuple[int, int] | None:
    """(width, height) from a PNG, JPEG, GIF or BMP header, without decoding; None for other formats
    (OpenCV's own limit, 2**30 pixels, applies to those) or a header too short to read."""
    if data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) >= 24:
        return int.from_bytes(data[16:20], "big"), int.from_bytes(data[20:24], "big")
    if data[:6] in (b"GIF87a", b"GIF89a") and len(data) >= 10:
        return int.from_bytes(data[6:8], "little"), int.from_bytes(data[8:10], "little")
    if data[:2] == b"BM" and len(data) >= 26:
        return abs(int.from_bytes(data[18:22], "little", signed=True)), abs(
            int.from_bytes(data[22:26], "little", signed=True)
        )
    if data[:2] == b"\xff\xd8":
        at = 2
        while at + 9 <= len(data):
            if data[at] != 0xFF:
                return None
            marker = data[at + 1]
            if marker == 0xFF:  # fill byte before a marker
                at += 1
                continue
            if marker in _JPEG_FRAMES:
                return int.from_bytes(data[at + 7 : at + 9], "big"), int.from_bytes(data[at + 5 : at + 7], "big")
            at += 2 + int.from_bytes(data[at + 2 : at + 4], "big")
    return None


def as_rgb(image: np.ndarray, *, channel_order: str = "rgb") -> np.ndarray:
    """Grey, grey+alpha, RGB or RGBA (uint8 or 16-bit) -> RGB uint8 (H, W, 3)."""
    image = np.asarray(image)
    if image.dtype == np.uint16:
        image = (image >> 8).astype(np.uint8)
    elif image.dtype != np.uint8:
        raise ImageDecodeError(f"unsupported pixel type {image.dtype}; expected uint8 images")
    if image.ndim == 2:
        image = image[:, :, None]
    if image.ndim != 3 or image.shape[2] not in (1, 2, 3, 4):
        raise ImageDecodeError(f"unsupported image shape {image.shape}; expected (H, W[, C])")
    channels = image.shape[2]
    if channels in (1, 2):
        return np.repeat(image[:, :, :1], 3, axis=2)
    image = image[:, :, :3]
    if channel_order == "bgr":
        image = image[:, :, ::-1]
    return np.ascontiguousarray(image)


def resize_square(image: np.ndarray, size: int) -> np.ndarray:
    """Resize to size x size: area averaging when shrinking, bilinear when enlarging."""
    height, width = image.shape[:2]
    if (height, width) == (size, size):
        return image
    interpolation = cv2.INTER_AREA if size < min(height, width) else cv2.INTER_LINEAR
    return cv2.resize(image, (size, size), interpolation=interpolation)


def encode_png(image: np.ndarray) -> bytes:
    """RGB uint8 -> PNG bytes (used for the served model's input example and tests)."""
    ok, buffer = cv2.imencode(".png", np.ascontiguousarray(image[:, :, ::-1]))
    if not ok:
        raise ImageDecodeError("could not encode PNG")
    return buffer.tobytes()
