"""BoVW step 1: local descriptors per image (OpenCV contrib, headless build).

`extract_descriptors(images, spec, n_jobs=...)` turns uint8 RGB images into a
`DescriptorSet`: every image's descriptors stacked in one array, with each
descriptor's position (x, y in [0, 1) of the image, for the spatial pyramid)
and per-image offsets. An image where nothing is detected simply owns no rows.

Methods (`DescriptorSpec.method`):
- `sift`: SIFT keypoints (at most `keypoints` per image) and their descriptors;
- `dense_sift`: SIFT descriptors on a grid (`step` pixels apart) at one or more
  keypoint sizes (`sizes`; OpenCV's keypoint diameter, a descriptor spans about
  6x it), so every image gets the same number of descriptors;
- `daisy`: DAISY descriptors on the same kind of grid (`radius`);
- `orb`: ORB keypoints with their 256-bit binary descriptors, unpacked to 0/1
  features so k-means and GMMs can work on them (beyond the paper);
- `surf` is recognised only to say why it is unavailable (patented, excluded
  from the pip builds of OpenCV).
RootSIFT is not an extraction method: it is a transform of SIFT descriptors
(`bovw_encoding.DescriptorTransform`), so SIFT and RootSIFT share cache entries.

Colour (`color`): `grey`, or `rgb` / `opponent` (descriptors computed on each
channel at the grey image's keypoints and concatenated; opponent colour space
as in van de Sande et al.). Images can be upscaled first (`upscale`): dense
SIFT on 64-pixel images works better at 128.

Descriptors are stored compactly and losslessly where possible (SIFT values
are integers 0-255 -> uint8; ORB bits -> uint8; DAISY -> float16), so a fresh
extraction and a cached one are the same arrays.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass

import cv2
import numpy as np

from search_spaces.bovw import SURF_UNAVAILABLE

METHODS = ("sift", "dense_sift", "daisy", "orb")
COLORS = ("grey", "rgb", "opponent")
_BASE_DIMS = {"sift": 128, "dense_sift": 128, "daisy": 200, "orb": 256}


class DescriptorError(ValueError):
    """A descriptor configuration that cannot work; the message says why and what to use instead."""


@dataclass(frozen=True)
class DescriptorSpec:
    method: str = "dense_sift"
    color: str = "grey"
    upscale: int = 1  # resize images by this factor before extraction
    keypoints: int = 500  # sift / orb: most keypoints kept per image
    step: int = 8  # dense_sift / daisy: grid spacing, in pixels of the (upscaled) image
    sizes: tuple[int, ...] = (16,)  # dense_sift: keypoint sizes, one descriptor per size per grid point
    radius: int = 15  # daisy: descriptor radius in pixels

    def __post_init__(self):
        if self.method == "surf":
            raise DescriptorError(SURF_UNAVAILABLE)
        if self.method not in METHODS:
            raise DescriptorError(f"unknown descriptor {self.method!r}; choose one of {', '.join(METHODS)}")
        if self.color not in COLORS:
            raise DescriptorError(f"unknown color {self.color!r}; choose one of {', '.join(COLORS)}")
        if self.method == "orb" and self.color != "grey":
            raise DescriptorError("orb descriptors are binary and computed on grey images only; use color=grey")
        if not 1 <= self.upscale <= 4:
            raise DescriptorError(f"upscale {self.upscale} is out of range; use 1 to 4")
        if self.keypoints < 1 or self.step < 1 or self.radius < 1 or not self.sizes or min(self.sizes) < 1:
            raise DescriptorError(f"descriptor sizes must be positive: {self}")

    @classmethod
    def from_config(cls, config: dict) -> DescriptorSpec:
        """Read the search space's keys (descriptor, color, upscale, keypoints, dense_step, patch_sizes, daisy_radius)."""
        sizes = config.get("patch_sizes", "16")
        if not isinstance(sizes, (tuple, list)):  # "8,16" from the space, or 8 read back from MLflow
            sizes = tuple(int(s) for s in str(sizes).replace(" ", "").split(",") if s)
        return cls(
            method=str(config.get("descriptor", "dense_sift")),
            color=str(config.get("color", "grey")),
            upscale=int(config.get("upscale", 1)),
            keypoints=int(config.get("keypoints", 500)),
            step=int(config.get("dense_step", 8)),
            sizes=tuple(int(s) for s in sizes),
            radius=int(config.get("daisy_radius", 15)),
        )

    @property
    def dim(self) -> int:
        channels = 1 if self.color == "grey" else 3
        return _BASE_DIMS[self.method] * channels

    def identity(self) -> dict:
        """The fields that change the descriptors of this method (the cache key; unused fields left out)."""
        used = {"method", "color", "upscale"}
        used |= {
            "sift": {"keypoints"},
            "orb": {"keypoints"},
            "dense_sift": {"step", "sizes"},
            "daisy": {"step", "radius"},
        }[self.method]
        return {k: (list(v) if isinstance(v, tuple) else v) for k, v in asdict(self).items() if k in used}


@dataclass(frozen=True, eq=False)
class DescriptorSet:
    """Descriptors of a batch of images: image i owns rows offsets[i]:offsets[i+1]."""

    descriptors: np.ndarray  # (total, dim): uint8, float16 or float32
    positions: np.ndarray  # (total, 2) float32: (x, y) in [0, 1) of the image
    offsets: np.ndarray  # (images + 1,) int64

    def __post_init__(self):
        if self.descriptors.ndim != 2 or self.positions.shape != (len(self.descriptors), 2):
            raise ValueError("descriptors must be (total, dim) and positions (total, 2)")
        if self.offsets[0] != 0 or self.offsets[-1] != len(self.descriptors) or np.any(np.diff(self.offsets) < 0):
            raise ValueError("offsets must run from 0 to the number of descriptors, never decreasing")

    @classmethod
    def from_arrays(
        cls, descriptors: list[np.ndarray], positions: list[np.ndarray], *, dim: int | None = None
    ) -> DescriptorSet:
        """Per-image (n_i, dim) descriptors and (n_i, 2) positions in [0, 1) -> one set (n_i may be 0)."""
        if len(descriptors) != len(positions):
            raise ValueError(f"{len(descriptors)} descriptor arrays but {len(positions)} position arrays")
        if dim is None:
            dims = {np.asarray(d).shape[1] for d in descriptors if np.asarray(d).ndim == 2}
            if len(dims) != 1:
                raise ValueError(f"descriptor widths {sorted(dims)}: pass (n_i, dim) arrays of one width, or dim=")
            dim = dims.pop()
        dtype = np.result_type(*[np.asarray(d).dtype for d in descriptors]) if descriptors else np.float32
        rows = [np.asarray(d, dtype=dtype).reshape(-1, dim) for d in descriptors]
        where = [np.asarray(p, dtype=np.float32).reshape(-1, 2) for p in positions]
        for index, (d, p) in enumerate(zip(rows, where)):
            if len(d) != len(p):
                raise ValueError(f"image {index}: {len(d)} descriptors but {len(p)} positions")
        counts = np.array([len(d) for d in rows], dtype=np.int64)
        offsets = np.concatenate([[0], np.cumsum(counts)]).astype(np.int64)
        stacked = np.concatenate(rows) if rows else np.zeros((0, dim), dtype)
        placed = np.concatenate(where) if where else np.zeros((0, 2), np.float32)
        return cls(descriptors=stacked, positions=np.clip(placed, 0.0, np.nextafter(np.float32(1), 0)), offsets=offsets)

    def __len__(self) -> int:
        return len(self.offsets) - 1

    @property
    def dim(self) -> int:
        return int(self.descriptors.shape[1])

    @property
    def counts(self) -> np.ndarray:
        return np.diff(self.offsets)

    @property
    def nbytes(self) -> int:
        return int(self.descriptors.nbytes + self.positions.nbytes + self.offsets.nbytes)

    def image(self, index: int) -> tuple[np.ndarray, np.ndarray]:
        start, stop = self.offsets[index], self.offsets[index + 1]
        return self.descriptors[start:stop], self.positions[start:stop]

    def images(self, start: int, stop: int) -> DescriptorSet:
        """Images start..stop-1 as their own set (views, no copy)."""
        first, last = self.offsets[start], self.offsets[stop]
        return DescriptorSet(
            self.descriptors[first:last], self.positions[first:last], self.offsets[start : stop + 1] - first
        )

    def sample(self, count: int, *, seed: int) -> np.ndarray:
        """A seeded uniform sample of at most `count` descriptors, as float32."""
        total = len(self.descriptors)
        if total <= count:
            return self.descriptors.astype(np.float32)
        rows = np.sort(np.random.default_rng(seed).choice(total, size=count, replace=False))
        return self.descriptors[rows].astype(np.float32)


def extract_descriptors(images: np.ndarray, spec: DescriptorSpec, *, n_jobs: int = 1) -> DescriptorSet:
    """uint8 (N, H, W, 3) RGB images -> their descriptors. Threads: OpenCV releases the GIL."""
    images = np.asarray(images)
    if images.ndim != 4 or images.shape[-1] != 3 or images.dtype != np.uint8:
        raise ValueError(f"expected uint8 images of shape (N, H, W, 3), got {images.dtype} {images.shape}")
    jobs = max(1, min(int(n_jobs), len(images)))
    chunks = np.array_split(np.arange(len(images)), jobs) if len(images) else []

    def run(indices):
        extractor = _Extractor(spec)  # OpenCV algorithm objects are not shared between threads
        return [extractor(images[i]) for i in indices]

    if jobs == 1:
        results = [r for chunk in chunks for r in run(chunk)]
    else:
        with ThreadPoolExecutor(max_workers=jobs) as pool:
            results = [r for part in pool.map(run, chunks) for r in part]
    descriptors = [d for d, _ in results]
    positions = [p for _, p in results]
    dtype = np.uint8 if spec.method in ("sift", "dense_sift", "orb") else np.float16
    return DescriptorSet.from_arrays([d.astype(dtype) for d in descriptors], positions, dim=spec.dim)


class _Extractor:
    def __init__(self, spec: DescriptorSpec):
        self.spec = spec
        if spec.method in ("sift", "dense_sift"):
            self.computer = cv2.SIFT_create(nfeatures=spec.keypoints if spec.method == "sift" else 0)  # type: ignore[attr-defined]  # opencv's stubs lack it
        elif spec.method == "daisy":
            self.computer = cv2.xfeatures2d.DAISY_create(radius=float(spec.radius))  # type: ignore[attr-defined]  # opencv's stubs lack it
        else:
            # Small images: ORB's default 31-pixel border and patch would leave almost nothing to detect.
            self.computer = cv2.ORB_create(nfeatures=spec.keypoints, edgeThreshold=15, patchSize=15, fastThreshold=10)  # type: ignore[attr-defined]  # opencv's stubs lack it
        self._grid_cache: dict[tuple[int, int], list] = {}

    def __call__(self, image: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        spec = self.spec
        if spec.upscale > 1:
            height, width = image.shape[:2]
            image = cv2.resize(image, (width * spec.upscale, height * spec.upscale), interpolation=cv2.INTER_LINEAR)
        height, width = image.shape[:2]
        channels = _channels(image, spec.color)
        grey = channels[0] if spec.color == "grey" else cv2.cvtColor(image, cv2.COLOR_RGB2GRAY)
        if spec.method in ("dense_sift", "daisy"):
            keypoints = self._grid(height, width)
        else:
            keypoints = self.computer.detect(grey, None)
        if not keypoints:
            return np.zeros((0, spec.dim), np.float32), np.zeros((0, 2), np.float32)
        parts: list[np.ndarray] = []
        for channel in channels:
            # compute() may drop keypoints (ORB near borders); later channels use the first one's survivors.
            keypoints, values = self.computer.compute(channel, keypoints)
            if values is None or not keypoints:
                return np.zeros((0, spec.dim), np.float32), np.zeros((0, 2), np.float32)
            if parts and len(values) != len(parts[0]):
                raise RuntimeError(
                    f"{spec.method}: channels kept different keypoints ({len(values)} vs {len(parts[0])})"
                )
            parts.append(values)
        if spec.method == "orb":
            parts = [np.unpackbits(values, axis=1) for values in parts]
        xy = np.array([kp.pt for kp in keypoints], dtype=np.float32) / np.array([width, height], np.float32)
        return np.concatenate(parts, axis=1), xy

    def _grid(self, height: int, width: int) -> list:
        if (height, width) not in self._grid_cache:
            step = self.spec.step
            sizes = self.spec.sizes if self.spec.method == "dense_sift" else (float(2 * self.spec.radius),)
            ys = np.arange(step / 2, height, step)
            xs = np.arange(step / 2, width, step)
            self._grid_cache[(height, width)] = [
                cv2.KeyPoint(float(x), float(y), float(size)) for size in sizes for y in ys for x in xs
            ]
        return self._grid_cache[(height, width)]


def _channels(image: np.ndarray, color: str) -> list[np.ndarray]:
    if color == "grey":
        return [cv2.cvtColor(image, cv2.COLOR_RGB2GRAY)]
    if color == "rgb":
        return [np.ascontiguousarray(image[:, :, c]) for c in range(3)]
    r, g, b = (image[:, :, c].astype(np.float32) for c in range(3))
    # Opponent colour space, each channel rescaled to 0..255 so OpenCV's 8-bit descriptors apply.
    o1 = (r - g) / 2 + 127.5
    o2 = (r + g - 2 * b) / 4 + 127.5
    o3 = (r + g + b) / 3
    return [np.clip(np.rint(o), 0, 255).astype(np.uint8) for o in (o1, o2, o3)]
