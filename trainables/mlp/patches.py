"""Cut images into square patches that cover every pixel.

Rule: along each axis, n = ceil((side - P) / stride) + 1 patches start at
round(linspace(0, side - P, n)). With the default stride P this is a cover:
when P divides the side the patches tile it exactly (64 px, P = 32: a 2x2
grid); otherwise neighbours overlap by the few pixels needed so no border
pixel is lost (64 px, P = 24: starts 0, 20, 40). A smaller stride gives dense,
overlapping patches (64 px, P = 16, stride 8: 7 starts per axis), still
reaching the last pixel.
"""

from __future__ import annotations

import math

import numpy as np


def patch_starts(side: int, patch: int, stride: int | None = None) -> np.ndarray:
    if not 1 <= patch <= side:
        raise ValueError(f"patch size {patch} must be between 1 and the image side {side}")
    stride = patch if stride is None else stride
    if stride < 1:
        raise ValueError(f"patch stride {stride} must be at least 1")
    count = math.ceil((side - patch) / stride) + 1
    return np.round(np.linspace(0, side - patch, count)).astype(int)


def extract_patches(images: np.ndarray, patch: int, stride: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """(N, H, W, C) -> patches (N, K, P, P, C) and their centres (K, 2) as (x, y) in (0, 1)."""
    _, height, width, _ = images.shape
    rows, cols = patch_starts(height, patch, stride), patch_starts(width, patch, stride)
    patches = np.stack([images[:, r : r + patch, c : c + patch] for r in rows for c in cols], axis=1)
    centres = np.array([((c + patch / 2) / width, (r + patch / 2) / height) for r in rows for c in cols])
    return patches, centres
