"""load_dataset on real files: layouts, splits, the cache, and every bad-input error."""

from __future__ import annotations

import os

import cv2
import numpy as np
import pytest

from trainables.core.data import DataError, DataSpec, load_dataset

CLASSES = ("beach", "city", "woods")


def write_images(folder, count, *, size=(40, 30), grey=False, seed=0):
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    for i in range(count):
        shape = (size[1], size[0]) if grey else (size[1], size[0], 3)
        cv2.imwrite(str(folder / f"img{i:03d}.png"), rng.integers(0, 255, shape, dtype=np.uint8))


def make_tree(root, counts=(10, 12, 8), **kwargs):
    for name, count in zip(CLASSES, counts):
        write_images(root / name, count, **kwargs)
    return root


def make_mit_split(root):
    make_tree(root / "train", (10, 12, 8))
    make_tree(root / "test", (4, 4, 4), seed=1)
    return root


def spec(root, tmp_path, **kwargs):
    return DataSpec(source=str(root), cache_dir=str(tmp_path / "cache"), image_size=32, **kwargs)


def test_mit_split_layout(tmp_path):
    data = load_dataset(spec(make_mit_split(tmp_path / "mit"), tmp_path))
    assert data.class_names == CLASSES
    assert len(data.y_train) + len(data.y_val) == 30 and len(data.y_test) == 12
    assert data.x_train.shape[1:] == (32, 32, 3) and data.x_train.dtype == np.uint8
    assert sorted(np.unique(data.y_val)) == [0, 1, 2]  # stratified: every class in validation
    assert data.test_names[0].startswith("test/beach/")


def test_single_tree_gets_seeded_stratified_test_split(tmp_path):
    root = make_tree(tmp_path / "tree")
    first = load_dataset(spec(root, tmp_path, seed=3))
    again = load_dataset(spec(root, tmp_path, seed=3))
    other = load_dataset(spec(root, tmp_path, seed=4))
    assert sorted(np.unique(first.y_test)) == [0, 1, 2]
    assert first.test_names == again.test_names and first.fingerprint == again.fingerprint
    assert first.test_names != other.test_names and first.fingerprint != other.fingerprint
    assert len(first.y_train) + len(first.y_val) + len(first.y_test) == 30


def test_validation_never_overlaps_train_or_test(demo_dataset):
    rows = lambda x: {a.tobytes() for a in x}  # noqa: E731
    assert not rows(demo_dataset.x_val) & rows(demo_dataset.x_train)
    assert not rows(demo_dataset.x_val) & rows(demo_dataset.x_test)


def test_grey_and_odd_sized_images_become_rgb_squares(tmp_path):
    root = make_tree(tmp_path / "tree", grey=True, size=(50, 21))
    data = load_dataset(spec(root, tmp_path))
    assert data.x_train.shape[1:] == (32, 32, 3)
    assert np.array_equal(data.x_train[..., 0], data.x_train[..., 2])


def test_per_class_keeps_exactly_n_per_class(tmp_path):
    data = load_dataset(spec(make_mit_split(tmp_path / "mit"), tmp_path, per_class=5))
    assert np.bincount(data.y_train).tolist() == [5, 5, 5]


def test_cache_is_reused_and_invalidated_by_a_changed_file(tmp_path):
    root = make_mit_split(tmp_path / "mit")
    first = load_dataset(spec(root, tmp_path))
    entries = list((tmp_path / "cache" / "datasets").glob("*.npy"))
    assert len(entries) == 1
    second = load_dataset(spec(root, tmp_path))
    assert np.array_equal(first.x_train, second.x_train) and first.fingerprint == second.fingerprint
    changed = root / "train" / "beach" / "img000.png"
    cv2.imwrite(str(changed), np.zeros((30, 40, 3), np.uint8))
    os.utime(changed, ns=(1, 1))
    third = load_dataset(spec(root, tmp_path))
    assert len(list((tmp_path / "cache" / "datasets").glob("*.npy"))) == 2
    assert third.fingerprint != first.fingerprint


def _corrupt(root):
    make_mit_split(root)
    (root / "train" / "city" / "broken.jpg").write_bytes(b"not a jpeg")
    (root / "test" / "woods" / "empty.png").write_bytes(b"")


def _mismatch(root):
    make_mit_split(root)
    write_images(root / "train" / "desert", 3)


def _empty_class(root):
    make_tree(root)
    (root / "empty").mkdir()
    (root / "empty" / "notes.txt").write_text("no images here")


def _one_class(root):
    write_images(root / "only", 5)


@pytest.mark.parametrize(
    "build, extra, message",
    [
        (lambda root: None, {}, "does not exist"),
        (lambda root: root.write_text("x"), {}, "is a file"),
        (lambda root: root.mkdir(), {}, "found 0 class folder(s)"),
        (_one_class, {}, "at least two classes"),
        (_empty_class, {}, "holds no images"),
        (_mismatch, {}, "only in train: ['desert']"),
        (_corrupt, {}, "2 unreadable or corrupt image file(s)"),
        (make_mit_split, {"per_class": 50}, "--per-class 50 is larger than class"),
        (make_mit_split, {"val_fraction": 0.95}, "--val-fraction"),
    ],
)
def test_bad_input_is_one_clear_data_error(tmp_path, build, extra, message):
    root = tmp_path / "data"
    build(root)
    with pytest.raises(DataError) as error:
        load_dataset(spec(root, tmp_path, **extra))
    text = str(error.value)
    assert message in text and "\n" not in text


def test_corrupt_files_are_named(tmp_path):
    root = tmp_path / "data"
    _corrupt(root)
    with pytest.raises(
        DataError, match=r"train/city/broken.jpg.*test/woods/empty.png|test/woods/empty.png.*train/city/broken.jpg"
    ):
        load_dataset(spec(root, tmp_path))


def test_real_mit_split_matches_the_paper_split(mit_split_64, tmp_path):
    data = load_dataset(DataSpec(source=str(mit_split_64), cache_dir=str(tmp_path)))
    assert data.num_classes == 8
    assert len(data.y_train) + len(data.y_val) == 1881 and len(data.y_test) == 807
    assert data.class_names[0] == "Opencountry"
