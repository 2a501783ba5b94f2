"""A few real photographs per class for the BoVW step tests (decoded directly: no dataset cache)."""

from __future__ import annotations

import numpy as np

from trainables.core.images import IMAGE_SUFFIXES, decode_image, resize_square


def real_images(root, *, per_class: int = 3, split: str = "train", size: int = 64):
    """(images uint8 (N, size, size, 3), labels) with `per_class` images of every class, sorted by class."""
    images, labels = [], []
    classes = sorted(p for p in (root / split).iterdir() if p.is_dir())
    for label, folder in enumerate(classes):
        files = sorted(p for p in folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)[:per_class]
        for path in files:
            images.append(resize_square(decode_image(path.read_bytes()), size))
            labels.append(label)
    return np.stack(images), np.array(labels)
