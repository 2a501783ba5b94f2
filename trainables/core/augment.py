"""Batch augmentation on the training device: exact flips and shifts, one resample, colour jitter.

Flips and shifts move whole pixels (a mirror copy; a reflect pad and a random crop), so an image
they leave in place is bit-for-bit the image the test set shows. Only the augmentations that must
interpolate (random resized crop, zoom, rotation, shear) resample, all folded into one per-image
2x3 matrix and one bilinear `grid_sample`, and only when one of them is on. No per-image Python
work, no host round trip. Config keys are shared by every net family.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

# key -> default; `aug_<name>` switches an augmentation on, the other key sets its magnitude.
AUGMENT_DEFAULTS = {
    "aug_hflip": False,
    "aug_crop": False,
    "aug_crop_scale": 0.6,  # random resized crop: smallest kept area fraction
    "aug_zoom": False,
    "aug_zoom_fraction": 0.2,  # scale in [1 - f, 1 + f]
    "aug_rotate": False,
    "aug_rotate_degrees": 15.0,
    "aug_shear": False,
    "aug_shear_degrees": 10.0,
    "aug_shift": False,
    "aug_shift_fraction": 0.1,  # of width / height
    "aug_color": False,
    "aug_color_strength": 0.3,  # brightness, contrast and saturation in [1 - s, 1 + s]
    "aug_brightness": False,
    "aug_brightness_strength": 0.2,
}


class DeviceAugmenter:
    def __init__(self, config: dict):
        self.cfg = {key: config.get(key, default) for key, default in AUGMENT_DEFAULTS.items()}

    @property
    def resampling(self) -> bool:
        """An augmentation that needs interpolation is on (crop, zoom, rotation, shear)."""
        return any(self.cfg[k] for k in ("aug_crop", "aug_zoom", "aug_rotate", "aug_shear"))

    def __call__(self, images: torch.Tensor, out_size: int) -> torch.Tensor:
        """images: float (B, 3, H, W) in [0, 1] -> augmented (B, 3, out_size, out_size)."""
        if self.resampling:
            if images.shape[-1] > out_size:
                images = resize(images, out_size)  # antialiased, as at test time; then one resample
            images = self._affine(images, out_size)
        else:
            # Exactly the test-time preprocessing: a bilinear resample here would blur and shift every
            # training image by fractions of a pixel that test images never see (benchmarks/plain_loop.py).
            images = resize(images, out_size)
        # Flips and shifts only move whole pixels, so they never blend them.
        if self.cfg["aug_hflip"]:
            images = _random_hflip(images)
        if self.cfg["aug_shift"]:
            images = _random_shift(images, round(self.cfg["aug_shift_fraction"] * out_size))
        return self._colour(images)

    def _affine(self, images: torch.Tensor, out_size: int) -> torch.Tensor:
        cfg, batch = self.cfg, images.shape[0]
        device, dtype = images.device, images.dtype

        def uniform(low, high):
            return torch.empty(batch, device=device, dtype=dtype).uniform_(low, high)

        ones, zeros = torch.ones(batch, device=device, dtype=dtype), torch.zeros(batch, device=device, dtype=dtype)
        # Output -> input coordinates (normalised to [-1, 1]); built right to left.
        matrix = torch.eye(2, device=device, dtype=dtype).expand(batch, 2, 2).clone()
        offset = torch.zeros(batch, 2, device=device, dtype=dtype)
        if cfg["aug_zoom"]:
            zoom = uniform(1 - cfg["aug_zoom_fraction"], 1 + cfg["aug_zoom_fraction"])
            matrix = matrix * zoom[:, None, None]
        if cfg["aug_shear"]:
            shear = torch.tan(uniform(-1, 1) * math.radians(cfg["aug_shear_degrees"]))
            matrix = _stack2(ones, shear, zeros, ones) @ matrix
        if cfg["aug_rotate"]:
            angle = uniform(-1, 1) * math.radians(cfg["aug_rotate_degrees"])
            cos, sin = torch.cos(angle), torch.sin(angle)
            matrix = _stack2(cos, -sin, sin, cos) @ matrix
        if cfg["aug_crop"]:
            area = uniform(cfg["aug_crop_scale"], 1.0)
            aspect = torch.exp(uniform(math.log(3 / 4), math.log(4 / 3)))
            width, height = torch.sqrt(area * aspect).clamp(max=1), torch.sqrt(area / aspect).clamp(max=1)
            matrix = _stack2(width, zeros, zeros, height) @ matrix
            offset = offset + torch.stack([uniform(-1, 1) * (1 - width), uniform(-1, 1) * (1 - height)], dim=1)
        theta = torch.cat([matrix, offset[:, :, None]], dim=2)
        grid = F.affine_grid(theta, [batch, images.shape[1], out_size, out_size], align_corners=False)
        return F.grid_sample(images, grid, mode="bilinear", padding_mode="reflection", align_corners=False)

    def _colour(self, images: torch.Tensor) -> torch.Tensor:
        cfg, batch = self.cfg, images.shape[0]
        if not (cfg["aug_color"] or cfg["aug_brightness"]):
            return images

        def factor(strength):
            return torch.empty(batch, 1, 1, 1, device=images.device, dtype=images.dtype).uniform_(
                1 - strength, 1 + strength
            )

        if cfg["aug_brightness"]:
            images = images * factor(cfg["aug_brightness_strength"])
        if cfg["aug_color"]:
            strength = cfg["aug_color_strength"]
            images = images * factor(strength)
            mean = images.mean(dim=(1, 2, 3), keepdim=True)
            images = (images - mean) * factor(strength) + mean
            grey = images.mean(dim=1, keepdim=True)
            images = (images - grey) * factor(strength) + grey
        return images.clamp(0, 1)


def resize(images: torch.Tensor, size: int) -> torch.Tensor:
    if images.shape[-1] == size and images.shape[-2] == size:
        return images
    return F.interpolate(images, size=(size, size), mode="bilinear", antialias=True, align_corners=False)


def _random_hflip(images: torch.Tensor) -> torch.Tensor:
    flip = torch.rand(images.shape[0], device=images.device) < 0.5
    return torch.where(flip[:, None, None, None], images.flip(-1), images)


def _random_shift(images: torch.Tensor, pixels: int) -> torch.Tensor:
    """Move each image by a random whole number of pixels in [-pixels, pixels] along each axis,
    reflecting at the border: a reflect pad and a random crop, per image, without a Python loop."""
    batch, channels, height, width = images.shape
    pixels = min(pixels, height - 1, width - 1)  # reflect padding must be smaller than the image
    if pixels < 1:
        return images
    padded = F.pad(images, (pixels, pixels, pixels, pixels), mode="reflect")
    dy, dx = torch.randint(0, 2 * pixels + 1, (2, batch, 1), device=images.device)
    rows = (dy + torch.arange(height, device=images.device))[:, None, :, None]
    cols = (dx + torch.arange(width, device=images.device))[:, None, None, :]
    index = torch.arange(batch, device=images.device)[:, None, None, None]
    return padded[index, torch.arange(channels, device=images.device)[:, None, None], rows, cols]


def _stack2(a, b, c, d):
    return torch.stack([torch.stack([a, b], dim=1), torch.stack([c, d], dim=1)], dim=1)
