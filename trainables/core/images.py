"""Decoding and resizing of raw images, shared by data loading and the served model.

Training and serving must preprocess identically, so both go through
`decode_image` and `resize_square`; nothing else in scenesweep touches codecs.
"""

from __future__ import annotations

import cv2
import numpy as np

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp", ".ppm", ".pgm")


class ImageDecodeError(ValueError):
    """The bytes are not an image OpenCV can decode."""


def decode_image(data: bytes) -> np.ndarray:
    """Decode encoded image bytes (JPEG, PNG, ...) to an RGB uint8 array of shape (H, W, 3)."""
    buffer = np.frombuffer(data, dtype=np.uint8)
    image = cv2.imdecode(buffer, cv2.IMREAD_UNCHANGED) if buffer.size else None
    if image is None:
        raise ImageDecodeError("not a decodable image")
    return as_rgb(image, channel_order="bgr")


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
