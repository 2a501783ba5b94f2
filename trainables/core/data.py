"""Datasets: find images on disk (or draw the demo), decode once, cache, split.

`load_dataset(spec)` is the only entry point. Images are decoded to RGB uint8 at
`spec.image_size` and cached on disk keyed by the files' paths, sizes and
mtimes, so a second sweep over the same folder starts in milliseconds. The
returned `Dataset` is plain numpy arrays: cheap to put in Ray's object store
once and share with every trial.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from trainables.core.demo_data import generate_demo
from trainables.core.images import IMAGE_SUFFIXES, ImageDecodeError, decode_image, resize_square

CACHE_VERSION = 1
DEMO = "demo"


class DataError(ValueError):
    """The data given cannot be used; the message says what is wrong and how to fix it."""


@dataclass(frozen=True)
class DataSpec:
    source: str = DEMO  # "demo" or a folder
    image_size: int = 64
    val_fraction: float = 0.15
    test_fraction: float = 0.2  # only for a single class-folder tree (no train/ and test/)
    per_class: int | None = None  # train on N images per class (the paper's tiny-data setting)
    seed: int = 0
    cache_dir: str | None = None


@dataclass(frozen=True, eq=False)
class Dataset:
    class_names: tuple[str, ...]
    x_train: np.ndarray  # uint8 (N, S, S, 3)
    y_train: np.ndarray  # int64 (N,)
    x_val: np.ndarray
    y_val: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    test_names: tuple[str, ...]  # where each test image came from, for per-image reports
    fingerprint: str  # identifies pixels + split; equal fingerprints mean identical data

    @property
    def num_classes(self) -> int:
        return len(self.class_names)

    @property
    def image_size(self) -> int:
        return int(self.x_train.shape[1])

    def summary(self) -> str:
        return (
            f"{self.num_classes} classes, {len(self.y_train)} train / {len(self.y_val)} val / "
            f"{len(self.y_test)} test images at {self.image_size}x{self.image_size}"
        )


def load_dataset(spec: DataSpec) -> Dataset:
    """Load, cache and split the data `spec` names. Raises DataError for unusable input."""
    _check_spec(spec)
    if spec.source == DEMO:
        x_train, y_train, x_test, y_test, class_names = generate_demo(spec.image_size)
        test_names = tuple(f"demo/test/{class_names[y]}/{i:04d}.png" for i, y in enumerate(y_test))
        content_key = f"demo-v{CACHE_VERSION}-{spec.image_size}"
    else:
        x_train, y_train, x_test, y_test, class_names, test_names, content_key = _load_folder(spec)
    return _split(spec, x_train, y_train, x_test, y_test, tuple(class_names), tuple(test_names), content_key)


def check_data_spec(spec: DataSpec) -> None:
    """The checks that read no image (ranges, the folder exists): a sweep runs them before it starts Ray."""
    _check_spec(spec)
    if spec.source != DEMO:
        _check_root(Path(spec.source).expanduser())


def _check_spec(spec: DataSpec) -> None:
    if not 8 <= spec.image_size <= 1024:
        raise DataError(f"--image-size {spec.image_size} is out of range; use 8 to 1024 pixels")
    if not 0.0 < spec.val_fraction < 0.9:
        raise DataError(f"--val-fraction {spec.val_fraction} must be between 0 and 0.9 (e.g. 0.15)")
    if spec.per_class is not None and spec.per_class < 1:
        raise DataError(f"--per-class {spec.per_class} must be a positive number of images per class")


# --- folders on disk -----------------------------------------------------------------------


def _check_root(root: Path) -> None:
    if not root.exists():
        raise DataError(
            f"data path {root} does not exist; pass --data demo, a folder of class folders, "
            "or an MIT_split folder with train/ and test/"
        )
    if not root.is_dir():
        raise DataError(
            f"data path {root} is a file; pass a folder of class folders (or MIT_split with train/ and test/)"
        )


def _load_folder(spec: DataSpec):
    root = Path(spec.source).expanduser()
    _check_root(root)
    root = root.resolve()
    if (root / "train").is_dir() and (root / "test").is_dir():
        train_files = _class_files(root / "train")
        test_files = _class_files(root / "test")
        if set(train_files) != set(test_files):
            only_train = sorted(set(train_files) - set(test_files))
            only_test = sorted(set(test_files) - set(train_files))
            raise DataError(
                f"train/ and test/ in {root} have different class folders "
                f"(only in train: {only_train or 'none'}; only in test: {only_test or 'none'}); "
                "make both hold the same classes"
            )
    else:
        train_files, test_files = _class_files(root), None
    class_names = sorted(train_files)
    listing = [
        (split, name, path)
        for split, files in (("train", train_files), ("test", test_files or {}))
        for name in class_names
        for path in files.get(name, [])
    ]
    content_key = _content_key(root, listing, spec.image_size)
    images = _cached_decode(spec, root, listing, content_key)
    labels = np.array([class_names.index(name) for _, name, _ in listing], dtype=np.int64)
    is_train = np.array([split == "train" for split, _, _ in listing])
    names = [str(path.relative_to(root)) for _, _, path in listing]
    if test_files is not None:
        test_names = [n for n, train in zip(names, is_train) if not train]
        return (
            images[is_train],
            labels[is_train],
            images[~is_train],
            labels[~is_train],
            class_names,
            test_names,
            content_key,
        )
    # One class-folder tree: carve a seeded, stratified test split.
    test_index = _stratified_pick(labels, spec.test_fraction, seed=spec.seed + 7919)
    keep = np.ones(len(labels), dtype=bool)
    keep[test_index] = False
    test_names = [names[i] for i in test_index]
    return images[keep], labels[keep], images[test_index], labels[test_index], class_names, test_names, content_key


def _class_files(folder: Path) -> dict[str, list[Path]]:
    classes = sorted(p for p in folder.iterdir() if p.is_dir() and not p.name.startswith("."))
    if len(classes) < 2:
        raise DataError(
            f"found {len(classes)} class folder(s) in {folder}; expected one folder per class "
            "(e.g. coast/, forest/) holding images, at least two classes"
        )
    files = {}
    for class_dir in classes:
        images = sorted(p for p in class_dir.rglob("*") if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)
        if not images:
            raise DataError(
                f"class folder {class_dir} holds no images ({', '.join(IMAGE_SUFFIXES[:3])}, ...); add images or remove it"
            )
        files[class_dir.name] = images
    return files


def _content_key(root: Path, listing, image_size: int) -> str:
    digest = hashlib.sha256(f"v{CACHE_VERSION}|{root}|{image_size}".encode())
    for split, name, path in listing:
        stat = path.stat()
        digest.update(f"|{split}/{name}/{path.relative_to(root)}:{stat.st_size}:{stat.st_mtime_ns}".encode())
    return digest.hexdigest()[:24]


def _cached_decode(spec: DataSpec, root: Path, listing, content_key: str) -> np.ndarray:
    cache_file = Path(spec.cache_dir or default_cache_dir()) / "datasets" / f"{content_key}.npy"
    if cache_file.exists():
        try:
            return np.load(cache_file)
        except (OSError, ValueError):
            pass  # a damaged cache entry is rebuilt below
    images, failed = _decode_all([path for _, _, path in listing], spec.image_size)
    if failed:
        shown = ", ".join(str(p.relative_to(root)) for p in failed[:5])
        more = f" and {len(failed) - 5} more" if len(failed) > 5 else ""
        raise DataError(
            f"{len(failed)} unreadable or corrupt image file(s) in {root}: {shown}{more}; fix or remove them"
        )
    _atomic_save(cache_file, images)
    return images


def _decode_all(paths: list[Path], size: int) -> tuple[np.ndarray, list[Path]]:
    out = np.empty((len(paths), size, size, 3), dtype=np.uint8)
    failed = []

    def decode(i):
        try:
            out[i] = resize_square(decode_image(paths[i].read_bytes()), size)
        except (OSError, ImageDecodeError):
            failed.append(paths[i])

    workers = min(8, (os.cpu_count() or 1) * 2)  # OpenCV releases the GIL while decoding
    with ThreadPoolExecutor(max_workers=workers) as pool:
        list(pool.map(decode, range(len(paths))))
    return out, sorted(failed)


def _atomic_save(path: Path, array: np.ndarray) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as handle:
            np.save(handle, array)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def default_cache_dir() -> str:
    return os.path.join("sweeps", "cache")


# --- splits --------------------------------------------------------------------------------


def _stratified_pick(labels: np.ndarray, fraction: float, *, seed: int) -> np.ndarray:
    """Indices of a seeded per-class sample: round(n * fraction) of each class, at least 1."""
    rng = np.random.default_rng(seed)
    picked = []
    for label in np.unique(labels):
        members = np.flatnonzero(labels == label)
        count = max(1, int(round(len(members) * fraction)))
        picked.append(rng.permutation(members)[:count])
    return np.sort(np.concatenate(picked))


def _split(spec, x_train, y_train, x_test, y_test, class_names, test_names, content_key) -> Dataset:
    for label, name in enumerate(class_names):
        if np.count_nonzero(y_train == label) < 2:
            raise DataError(
                f"class {name!r} has fewer than 2 training images; a validation split needs at least 2 per class"
            )
    val_index = _stratified_pick(y_train, spec.val_fraction, seed=spec.seed)
    is_val = np.zeros(len(y_train), dtype=bool)
    is_val[val_index] = True
    train_index = np.flatnonzero(~is_val)
    if spec.per_class is not None:
        rng = np.random.default_rng(spec.seed + 104729)
        chosen = []
        for label, name in enumerate(class_names):
            members = train_index[y_train[train_index] == label]
            if spec.per_class > len(members):
                raise DataError(
                    f"--per-class {spec.per_class} is larger than class {name!r}, which has {len(members)} "
                    f"training images after the validation split; use --per-class {len(members)} or less"
                )
            chosen.append(np.sort(rng.permutation(members)[: spec.per_class]))
        train_index = np.concatenate(chosen)
    split_key = json.dumps([content_key, spec.val_fraction, spec.test_fraction, spec.per_class, spec.seed])
    return Dataset(
        class_names=class_names,
        x_train=x_train[train_index],
        y_train=y_train[train_index].astype(np.int64),
        x_val=x_train[val_index],
        y_val=y_train[val_index].astype(np.int64),
        x_test=x_test,
        y_test=y_test.astype(np.int64),
        test_names=test_names,
        fingerprint=hashlib.sha256(split_key.encode()).hexdigest()[:16],
    )
