"""The descriptor cache: identical arrays, hits across trials and processes, one computation when
two want the same entry at once, and the Ray object-store layer for clusters without shared disks."""

import time
from concurrent.futures import ProcessPoolExecutor
from multiprocessing import get_context
from pathlib import Path

import numpy as np
import pytest

from tests.trainables.bovw_images import real_images
from trainables.bovw.cache import STORE_NAMESPACE, DescriptorCache, cache_key, descriptor_store
from trainables.bovw.descriptors import DescriptorSpec

SPEC = DescriptorSpec(step=8, sizes=(8, 16), upscale=2)  # ~0.1 s per image: long enough to overlap


@pytest.fixture(scope="module")
def images(mit_split_64):
    return real_images(mit_split_64, per_class=2)[0]


def same(a, b) -> bool:
    return all(
        np.array_equal(getattr(a, k), getattr(b, k)) and getattr(a, k).dtype == getattr(b, k).dtype
        for k in ("descriptors", "positions", "offsets")
    )


def test_second_trial_hits_the_disk_and_gets_identical_arrays(images, tmp_path):
    first = DescriptorCache(tmp_path)
    computed = first.get(images, SPEC)
    assert (first.stats.hits, first.stats.misses) == (0, 1) and first.stats.extract_seconds > 0
    assert len(list((tmp_path / "descriptors").glob("*.npz"))) == 1
    again = first.get(images, SPEC)
    another_trial = DescriptorCache(tmp_path)
    loaded = another_trial.get(images, SPEC)
    assert same(computed, again) and same(computed, loaded)
    assert (another_trial.stats.hits, another_trial.stats.misses) == (1, 0)
    assert another_trial.stats.as_metrics()["descriptor_cache_hits"] == 1


def test_key_follows_pixels_and_the_descriptor_settings_that_matter(images):
    key = cache_key(images, SPEC)
    assert key == cache_key(
        images.copy(), DescriptorSpec(step=8, sizes=(8, 16), upscale=2, keypoints=7)
    )  # unused field
    assert key != cache_key(images, DescriptorSpec(step=8, sizes=(8, 16), upscale=1))
    assert key != cache_key(images[:-1], SPEC)
    changed = images.copy()
    changed[0, 0, 0, 0] ^= 1
    assert key != cache_key(changed, SPEC)


def test_a_damaged_entry_is_recomputed(images, tmp_path):
    cache = DescriptorCache(tmp_path)
    good = cache.get(images[:3], SPEC)
    entry = next((tmp_path / "descriptors").glob("*.npz"))
    entry.write_bytes(entry.read_bytes()[:100])
    again = DescriptorCache(tmp_path)
    assert same(good, again.get(images[:3], SPEC)) and again.stats.misses == 1


def test_an_unusable_folder_only_disables_the_disk_layer(images, tmp_path):
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    cache = DescriptorCache(blocker / "cache")  # cannot be created (as on a node without the driver's path)
    assert cache.directory is None
    assert len(cache.get(images[:2], SPEC)) == 2 and cache.stats.misses == 1


def _get_when_both_ready(folder: str, images: np.ndarray, name: str):
    """One 'trial' in its own process; waits for the other so both ask at the same moment."""
    Path(folder, f"ready-{name}").touch()
    deadline = time.monotonic() + 60
    while len(list(Path(folder).glob("ready-*"))) < 2 and time.monotonic() < deadline:
        time.sleep(0.01)
    cache = DescriptorCache(folder)
    found = cache.get(images, SPEC)
    return cache.stats.hits, cache.stats.misses, found.descriptors, found.offsets


def test_two_processes_wanting_the_same_entry_compute_it_once(images, tmp_path):
    with ProcessPoolExecutor(2, mp_context=get_context("spawn")) as pool:
        futures = [pool.submit(_get_when_both_ready, str(tmp_path), images, name) for name in "ab"]
        results = [f.result(timeout=300) for f in futures]
    assert sorted((hits, misses) for hits, misses, _, _ in results) == [(0, 1), (1, 0)]
    assert np.array_equal(results[0][2], results[1][2]) and np.array_equal(results[0][3], results[1][3])
    assert not list((tmp_path / "descriptors").glob("*.tmp"))  # no temporary file left behind


def test_ray_object_store_shares_descriptors_without_a_shared_disk(images, local_ray):
    ray = local_ray

    @ray.remote(num_cpus=1)
    def trial(batch):
        cache = DescriptorCache(None, cluster=True)  # no disk at all: only the object store
        found = cache.get(batch, SPEC)
        return cache.stats.hits, cache.stats.cluster_hits, cache.stats.misses, found.descriptors

    batch = images[:8]
    both = ray.get([trial.remote(batch), trial.remote(batch)])  # at once: one computes, one waits
    assert sorted((h, c, m) for h, c, m, _ in both) == [(0, 0, 1), (1, 1, 0)]
    later = ray.get(trial.remote(batch))
    assert later[:3] == (1, 1, 0) and np.array_equal(later[3], both[0][3])
    store = descriptor_store()
    assert list(ray.get(store.contents.remote())) == [cache_key(batch, SPEC)]
    ray.kill(store)


def test_store_actor_exits_when_idle(local_ray):
    ray = local_ray
    store = descriptor_store(name="scenesweep-test-idle-store", idle_seconds=1.0)
    assert ray.get(store.claim.remote("some-key", 0.0)) == ("compute", [])
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            ray.get_actor("scenesweep-test-idle-store", namespace=STORE_NAMESPACE)
        except ValueError:
            return  # gone, and its objects with it
        time.sleep(0.5)
    pytest.fail("the idle descriptor store did not exit")
