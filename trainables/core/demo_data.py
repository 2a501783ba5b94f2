"""The built-in offline `demo` data: procedurally drawn 8-class outdoor scenes.

Each class has the layout cue of its MIT counterpart (a horizon and sea for
coast, converging lanes for highway, window grids for the city classes, a
jagged ridge for mountain, ...), randomised in geometry, colour, lighting and
noise so a classifier has to learn the layout rather than a colour. Same seed,
same pixels: the data is a pure function of (seed, size).
"""

from __future__ import annotations

import numpy as np

CLASS_NAMES = (
    "Opencountry",
    "coast",
    "forest",
    "highway",
    "inside_city",
    "mountain",
    "street",
    "tallbuilding",
)
TRAIN_PER_CLASS = 60
TEST_PER_CLASS = 20
DEMO_SEED = 2021


def generate_demo(size: int = 64, *, seed: int = DEMO_SEED):
    """Return (x_train, y_train, x_test, y_test, class_names); x are uint8 (N, size, size, 3)."""
    per_class = TRAIN_PER_CLASS + TEST_PER_CLASS
    images = np.empty((len(CLASS_NAMES), per_class, size, size, 3), dtype=np.uint8)
    for label, name in enumerate(CLASS_NAMES):
        for index in range(per_class):
            rng = np.random.default_rng([seed, label, index])
            images[label, index] = _finish(_PAINTERS[name](rng, size), rng)
    labels = np.repeat(np.arange(len(CLASS_NAMES)), per_class).reshape(len(CLASS_NAMES), per_class)
    split = TRAIN_PER_CLASS
    x_train = images[:, :split].reshape(-1, size, size, 3)
    x_test = images[:, split:].reshape(-1, size, size, 3)
    return x_train, labels[:, :split].ravel(), x_test, labels[:, split:].ravel(), list(CLASS_NAMES)


# --- painting ------------------------------------------------------------------------------


def _grid(size):
    coords = (np.arange(size) + 0.5) / size
    return np.meshgrid(coords, coords, indexing="ij")  # y (rows, 0 = top), x


def _colour(rng, base, spread=0.08):
    return np.clip(np.asarray(base, dtype=np.float64) + rng.normal(0, spread, 3), 0, 1)


def _sky(rng, size, y):
    top, bottom = _colour(rng, (0.35, 0.55, 0.85)), _colour(rng, (0.75, 0.85, 0.95))
    t = y[..., None]
    return (1 - t) * top + t * bottom


def _texture(rng, size, scale):
    """Smooth random texture in [-1, 1]: upsampled coarse noise."""
    coarse = rng.normal(0, 1, (max(2, size // scale), max(2, size // scale)))
    reps = int(np.ceil(size / coarse.shape[0]))
    fine = np.kron(coarse, np.ones((reps, reps)))[:size, :size]
    return np.clip(fine / 2.0, -1, 1)


def _windows(image, rng, top, bottom, left, right, wall, light):
    """Paint a facade with a grid of windows inside the box (pixel coordinates)."""
    image[top:bottom, left:right] = wall
    step_y, step_x = rng.integers(4, 8), rng.integers(4, 8)
    for row in range(top + 2, bottom - 2, step_y):
        for col in range(left + 1, right - 2, step_x):
            lit = light if rng.random() < 0.7 else wall * 0.5
            image[row : row + max(1, step_y // 2), col : col + max(1, step_x // 2)] = lit


def _paint_opencountry(rng, size):
    y, x = _grid(size)
    horizon = rng.uniform(0.35, 0.6)
    image = _sky(rng, size, y)
    field = _colour(rng, (0.55, 0.6, 0.3), 0.1)
    ground = (y > horizon)[..., None]
    shade = 0.85 + 0.15 * _texture(rng, size, 4)[..., None]
    image = np.where(ground, field * shade, image)
    for _ in range(rng.integers(0, 4)):  # bushes on the horizon
        cx, r = rng.uniform(0, 1), rng.uniform(0.02, 0.06)
        bush = ((x - cx) ** 2 + ((y - horizon) * 1.5) ** 2) < r**2
        image[bush] = _colour(rng, (0.2, 0.35, 0.15))
    return image


def _paint_coast(rng, size):
    y, x = _grid(size)
    horizon = rng.uniform(0.3, 0.5)
    shore = horizon + rng.uniform(0.2, 0.4) + 0.1 * (x - 0.5) * rng.uniform(-1, 1)
    image = _sky(rng, size, y)
    sea = _colour(rng, (0.1, 0.3, 0.55)) * (0.9 + 0.1 * np.sin(y * rng.uniform(60, 120)))[..., None]
    sand = _colour(rng, (0.8, 0.72, 0.55)) * (0.9 + 0.1 * _texture(rng, size, 8))[..., None]
    image = np.where((y > horizon)[..., None], sea, image)
    return np.where((y > shore)[..., None], sand, image)


def _paint_forest(rng, size):
    y, x = _grid(size)
    canopy = _colour(rng, (0.15, 0.35, 0.12), 0.06)
    image = canopy * (0.7 + 0.3 * _texture(rng, size, 3))[..., None]
    for _ in range(rng.integers(6, 14)):  # trunks
        cx, width = rng.uniform(0, 1), rng.uniform(0.015, 0.05)
        trunk = np.abs(x - cx) < width
        image[trunk] = _colour(rng, (0.3, 0.22, 0.12), 0.05) * rng.uniform(0.6, 1.0)
    if rng.random() < 0.3:  # a glimpse of sky through the canopy
        image[y < rng.uniform(0.05, 0.15)] = _colour(rng, (0.7, 0.8, 0.9))
    return image


def _paint_highway(rng, size):
    y, x = _grid(size)
    horizon = rng.uniform(0.35, 0.5)
    vanish = rng.uniform(0.35, 0.65)
    image = _sky(rng, size, y)
    depth = np.clip((y - horizon) / (1 - horizon), 0, 1)
    half_width = 0.02 + depth * rng.uniform(0.45, 0.7)
    road = (y > horizon) & (np.abs(x - vanish - (0.5 - vanish) * depth) < half_width)
    verge = _colour(rng, (0.4, 0.5, 0.25))
    image = np.where((y > horizon)[..., None], verge, image)
    image = np.where(road[..., None], _colour(rng, (0.38, 0.38, 0.4), 0.04), image)
    centre = np.abs(x - vanish - (0.5 - vanish) * depth) < 0.004 + 0.012 * depth
    dashes = np.sin(np.log1p(depth * 20) * rng.uniform(10, 16)) > 0
    image[road & centre & dashes] = (0.95, 0.95, 0.85)
    return image


def _paint_inside_city(rng, size):
    image = np.ones((size, size, 3)) * _colour(rng, (0.45, 0.4, 0.35), 0.1)
    left = 0
    while left < size:  # adjacent facades, each with its own wall colour
        right = min(size, left + int(rng.integers(size // 4, size // 2 + 1)))
        wall = _colour(rng, (0.5, 0.42, 0.35), 0.12)
        _windows(image, rng, int(rng.integers(0, size // 5)), size, left, right, wall, _colour(rng, (0.2, 0.22, 0.25)))
        left = right
    image[int(size * rng.uniform(0.85, 0.95)) :] = _colour(rng, (0.3, 0.3, 0.3))  # pavement
    return image


def _paint_mountain(rng, size):
    y, x = _grid(size)
    image = _sky(rng, size, y)
    walk = np.cumsum(rng.normal(0, 0.06, size))
    ridge = rng.uniform(0.25, 0.45) + walk - np.linspace(0, walk[-1], size)
    peak = rng.uniform(0.2, 0.8)
    ridge = ridge + rng.uniform(0.15, 0.35) * np.abs(np.linspace(0, 1, size) - peak) * 2 - 0.1
    ridge = np.clip(ridge, 0.1, 0.75)[None, :]
    rock = _colour(rng, (0.42, 0.38, 0.36), 0.08) * (0.8 + 0.2 * _texture(rng, size, 4))[..., None]
    image = np.where((y > ridge)[..., None], rock, image)
    snow = (y > ridge) & (y < ridge + rng.uniform(0.03, 0.1))
    image[snow] = (0.92, 0.93, 0.95)
    return image


def _paint_street(rng, size):
    y, x = _grid(size)
    vanish_y, vanish_x = rng.uniform(0.35, 0.5), rng.uniform(0.4, 0.6)
    image = _sky(rng, size, y)
    dx, dy = np.abs(x - vanish_x), y - vanish_y
    ground = dx * rng.uniform(0.5, 0.9)  # where facades meet the pavement
    roof = dx * rng.uniform(1.2, 3.0)  # facades' top edges converge on the vanishing point
    for side, base in ((x < vanish_x, (0.55, 0.45, 0.4)), (x >= vanish_x, (0.5, 0.5, 0.55))):
        wall = side & (dx > 0.03) & (dy > -roof) & (dy < ground)
        colour = _colour(rng, base, 0.1)
        floors = (np.sin(dy / np.maximum(dx, 0.03) * rng.uniform(6, 10)) > 0.3)[..., None]
        image = np.where(wall[..., None], np.where(floors, colour * 0.55, colour), image)
    road = dy >= ground
    image = np.where(road[..., None], _colour(rng, (0.3, 0.3, 0.32), 0.04), image)
    return image


def _paint_tallbuilding(rng, size):
    y, _ = _grid(size)
    image = _sky(rng, size, y)
    for _ in range(rng.integers(1, 4)):
        width = int(rng.integers(size // 6, size // 2.5))
        left = int(rng.integers(-width // 3, size - width // 2))
        top = int(rng.integers(0, size // 4))
        wall = _colour(rng, (0.55, 0.58, 0.62), 0.12)
        box = (top, size, max(0, left), min(size, left + width))
        if box[3] - box[2] > 3:
            _windows(image, rng, *box, wall, _colour(rng, (0.25, 0.35, 0.5)))
    return image


_PAINTERS = {
    "Opencountry": _paint_opencountry,
    "coast": _paint_coast,
    "forest": _paint_forest,
    "highway": _paint_highway,
    "inside_city": _paint_inside_city,
    "mountain": _paint_mountain,
    "street": _paint_street,
    "tallbuilding": _paint_tallbuilding,
}


def _finish(image, rng):
    """Photographic variation: mirror, exposure, white balance, sensor noise."""
    if rng.random() < 0.5:
        image = image[:, ::-1]
    image = image * rng.uniform(0.7, 1.25) * rng.uniform(0.9, 1.1, 3) + rng.uniform(-0.08, 0.08)
    image = image + rng.normal(0, 0.04, image.shape)
    return (np.clip(image, 0, 1) * 255).round().astype(np.uint8)
