"""Descriptors computed once per (images, descriptor settings), shared by every trial and worker.

Extraction is the slow, trial-independent part of BoVW: every trial with the
same descriptor settings on the same images gets the same arrays. The key is a
digest of the images' pixels plus `DescriptorSpec.identity()` (so the dataset's
content, not its path, decides; the test images get their own entry).

`DescriptorCache.get(images, spec)` looks in two layers before computing:
1. a folder on this machine (`--cache-dir`, default sweeps/cache/descriptors):
   entries are written to a temporary file and renamed into place (readers
   never see half a file), and a per-entry `flock` makes a second trial that
   wants the entry while the first computes it wait and then read it;
2. on a Ray cluster of more than one node (no shared filesystem needed): a
   named, detached Ray actor (`DescriptorStore`) that owns the descriptors in
   Ray's object store and hands out references. It also arbitrates: the first
   worker to ask for a missing key computes it, the others wait for it (up to
   `wait_seconds`, then compute it themselves: never a hang). It keeps at most
   `max_bytes` (least recently used entries go first) and exits after an hour
   without requests.
A folder that cannot be created (a remote node without that path) just
disables layer 1 on that node; a lost object (its node died) is a miss.
"""

from __future__ import annotations

import asyncio
import errno
import fcntl
import hashlib
import json
import os
import tempfile
import time
import zipfile
from collections import OrderedDict
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

import numpy as np

from trainables.bovw.descriptors import DescriptorSet, DescriptorSpec, extract_descriptors

CACHE_VERSION = 1
# Versioned: a store left running by an older scenesweep on a long-lived cluster is not reused.
STORE_NAME = f"scenesweep-descriptor-store-v{CACHE_VERSION}"
STORE_NAMESPACE = "scenesweep"
_POLL_SECONDS = 0.2


def cache_key(images: np.ndarray, spec: DescriptorSpec) -> str:
    digest = hashlib.blake2b(digest_size=16)
    digest.update(f"v{CACHE_VERSION}|{images.dtype}|{images.shape}|".encode())
    digest.update(np.ascontiguousarray(images).data)
    digest.update(json.dumps(spec.identity(), sort_keys=True).encode())
    return digest.hexdigest()


@dataclass
class CacheStats:
    """What one trial's lookups did; logged as metrics on the trial's run."""

    hits: int = 0
    misses: int = 0
    cluster_hits: int = 0  # hits served from the Ray object store
    extract_seconds: float = 0.0  # computing descriptors (misses)
    load_seconds: float = 0.0  # reading them (hits)
    events: list[str] = field(default_factory=list)

    def as_metrics(self) -> dict:
        return {
            "descriptor_cache_hits": self.hits,
            "descriptor_cache_misses": self.misses,
            "descriptor_cache_cluster_hits": self.cluster_hits,
            "descriptor_extract_seconds": round(self.extract_seconds, 3),
            "descriptor_load_seconds": round(self.load_seconds, 3),
        }


class DescriptorCache:
    def __init__(
        self,
        directory: str | Path | None,
        *,
        cluster: bool | None = None,
        wait_seconds: float = 1800.0,
        max_bytes: int = 4 << 30,
    ):
        """`directory`: the on-disk layer (None: none). `cluster`: use the Ray layer (None: when Ray
        runs on more than one node)."""
        self.directory = _usable_directory(directory)
        self._cluster = cluster
        self.wait_seconds = float(wait_seconds)
        self.max_bytes = int(max_bytes)
        self.stats = CacheStats()

    def get(self, images: np.ndarray, spec: DescriptorSpec, *, n_jobs: int = 1) -> DescriptorSet:
        key = cache_key(images, spec)
        started = time.perf_counter()
        found = self._read_disk(key)
        if found is not None:
            return self._hit(found, started, f"disk {key}")
        store = self._store()
        claimed = False
        if store is not None:
            status, refs = _call(store.claim, key, self.wait_seconds) or ("no-store", [])
            if status == "hit":
                found = _fetch(refs[0])
                if found is not None:
                    self._write_disk(key, found)
                    self.stats.cluster_hits += 1
                    return self._hit(found, started, f"cluster {key}")
                _call(store.forget, key)  # its node is gone: recompute below
                status, _ = _call(store.claim, key, 0.0) or ("no-store", [])
            claimed = status == "compute"
        try:
            with self._disk_lock(key):
                found = self._read_disk(key)  # another trial on this machine may have just written it
                if found is not None:
                    return self._hit(found, started, f"disk {key} (after waiting)")
                computing = time.perf_counter()
                found = extract_descriptors(images, spec, n_jobs=n_jobs)
                self.stats.extract_seconds += time.perf_counter() - computing
                self.stats.misses += 1
                self.stats.events.append(f"miss {key}")
                self._write_disk(key, found)
                if store is not None:
                    _call(store.publish, key, found)
                    claimed = False
                return found
        finally:
            if claimed:
                _call(store.release, key)

    def _hit(self, found: DescriptorSet, started: float, event: str) -> DescriptorSet:
        self.stats.hits += 1
        self.stats.load_seconds += time.perf_counter() - started
        self.stats.events.append(f"hit {event}")
        return found

    # -- layer 1: this machine's disk ------------------------------------------------------------

    def _path(self, key: str) -> Path | None:
        return None if self.directory is None else self.directory / f"{key}.npz"

    def _read_disk(self, key: str) -> DescriptorSet | None:
        path = self._path(key)
        if path is None or not path.exists():
            return None
        try:
            with np.load(path) as stored:
                return DescriptorSet(
                    descriptors=stored["descriptors"], positions=stored["positions"], offsets=stored["offsets"]
                )
        except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile):
            return None  # damaged (disk full, killed writer on a filesystem without atomic rename): recompute

    def _write_disk(self, key: str, found: DescriptorSet) -> None:
        path = self._path(key)
        if path is None:
            return
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{key}.", suffix=".tmp")
        try:
            with os.fdopen(fd, "wb") as handle:
                np.savez(handle, descriptors=found.descriptors, positions=found.positions, offsets=found.offsets)
            os.replace(tmp, path)
        except OSError:
            Path(tmp).unlink(missing_ok=True)  # a full disk costs the cache, not the trial

    def _disk_lock(self, key: str):
        return _FileLock(None if self.directory is None else self.directory / f"{key}.lock", self.wait_seconds)

    # -- layer 2: Ray's object store -------------------------------------------------------------

    def _store(self):
        try:
            import ray
        except ImportError:
            return None
        if not ray.is_initialized():
            return None
        if self._cluster is None:
            self._cluster = sum(1 for node in ray.nodes() if node.get("Alive")) > 1
        if not self._cluster:
            return None
        return descriptor_store(max_bytes=self.max_bytes)


def _usable_directory(directory) -> Path | None:
    if directory is None:
        return None
    path = Path(directory) / "descriptors"
    try:
        path.mkdir(parents=True, exist_ok=True)
        probe = tempfile.NamedTemporaryFile(dir=path, prefix=".probe-")
        probe.close()
    except OSError:
        return None  # e.g. the driver's path does not exist on this node: no disk layer here
    return path


def _call(method, *args):
    """A store call; None when the store is gone (it exited when idle, or its node died)."""
    import ray
    from ray.exceptions import RayActorError

    try:
        return ray.get(method.remote(*args))
    except RayActorError:
        return None


def _fetch(ref) -> DescriptorSet | None:
    import ray
    from ray.exceptions import ObjectLostError, OwnerDiedError

    try:
        return ray.get(ref)
    except (ObjectLostError, OwnerDiedError):
        return None


class _FileLock:
    """An exclusive flock on `path` (released by the kernel if the holder dies); waits at most
    `timeout` seconds, then goes on without it (the entry is still written atomically)."""

    def __init__(self, path: Path | None, timeout: float):
        self.path = path
        self.timeout = timeout
        self.handle: IO[str] | None = None

    def __enter__(self):
        if self.path is None:
            return self
        handle = open(self.path, "a+")
        deadline = time.monotonic() + self.timeout
        while True:
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
                self.handle = handle
                return self
            except OSError as exc:
                if exc.errno not in (errno.EAGAIN, errno.EACCES) or time.monotonic() >= deadline:
                    handle.close()
                    return self
            time.sleep(_POLL_SECONDS)

    def __exit__(self, *exc):
        if self.handle is not None:
            fcntl.flock(self.handle, fcntl.LOCK_UN)
            self.handle.close()
            self.handle = None
        return False


# --- the cluster layer ----------------------------------------------------------------------------


def descriptor_store(*, max_bytes: int = 4 << 30, idle_seconds: float = 3600.0, name: str = STORE_NAME):
    """The cluster's one DescriptorStore actor (created on first use, found by name afterwards)."""
    import ray

    actor = ray.remote(num_cpus=0, max_restarts=0)(DescriptorStore)
    return actor.options(name=name, namespace=STORE_NAMESPACE, lifetime="detached", get_if_exists=True).remote(
        max_bytes=max_bytes, idle_seconds=idle_seconds
    )


class DescriptorStore:
    """Owns cached descriptors in Ray's object store (a Ray actor: see `descriptor_store`).

    Detached so that it outlives the trial that created it; it exits by itself
    after `idle_seconds` without a request, so a finished sweep leaves nothing
    behind on a long-running cluster. The objects live as long as it does.
    """

    def __init__(self, *, max_bytes: int, idle_seconds: float):
        self.max_bytes = max_bytes
        self.idle_seconds = idle_seconds
        self.entries: OrderedDict = OrderedDict()  # key -> (ObjectRef, bytes), oldest use first
        self.pending: dict[str, asyncio.Event] = {}  # keys some worker is computing
        self.last_request = time.monotonic()
        self.watchdog: asyncio.Task | None = None

    async def claim(self, key: str, wait_seconds: float):
        """("hit", [ref]) when stored; ("compute", []) when the caller should compute and publish it.
        While another worker computes the key, wait up to `wait_seconds` for it."""
        self._touch()
        deadline = time.monotonic() + wait_seconds
        while True:
            if key in self.entries:
                self.entries.move_to_end(key)
                return "hit", [self.entries[key][0]]
            event = self.pending.get(key)
            if event is None:
                self.pending[key] = asyncio.Event()
                return "compute", []
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return "wait-expired", []  # compute it too, without taking over the claim
            try:
                await asyncio.wait_for(event.wait(), remaining)
            except asyncio.TimeoutError:
                pass

    async def publish(self, key: str, value) -> None:
        import ray

        self._touch()
        self.entries[key] = (ray.put(value), int(getattr(value, "nbytes", 0)))  # owned by this actor
        self.entries.move_to_end(key)
        while sum(size for _, size in self.entries.values()) > self.max_bytes and len(self.entries) > 1:
            self.entries.popitem(last=False)
        await self.release(key)

    async def release(self, key: str) -> None:
        event = self.pending.pop(key, None)
        if event is not None:
            event.set()

    async def forget(self, key: str) -> None:
        self.entries.pop(key, None)

    async def contents(self) -> dict:
        return {key: size for key, (_, size) in self.entries.items()}

    async def shutdown(self) -> None:
        import ray

        ray.actor.exit_actor()

    def _touch(self) -> None:
        self.last_request = time.monotonic()
        if self.watchdog is None:
            self.watchdog = asyncio.get_running_loop().create_task(self._exit_when_idle())

    async def _exit_when_idle(self) -> None:
        import ray

        while True:
            await asyncio.sleep(min(60.0, self.idle_seconds))
            if time.monotonic() - self.last_request >= self.idle_seconds:
                ray.get_runtime_context().current_actor.shutdown.remote()
                return
