"""Plain training, family-agnostic: seed, fit the family on train (+val), evaluate once on test.

No Tune and no tracking: a sweep's trial (sweep/trial.py) is an overlay on this, not a different
code path, and benchmarks train through it as a plain loop would.
"""

from __future__ import annotations

import os
import random
import sys
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from trainables.core.classifier import Evaluation, SceneClassifier
from trainables.core.session import TrialFailed
from trainables.families import Family, get_family

if TYPE_CHECKING:
    from trainables.core.data import Dataset
    from trainables.core.session import TrialSession


@dataclass(frozen=True)
class TrialOutcome:
    classifier: SceneClassifier
    test: Evaluation
    metrics: dict  # the trial's final metrics (test_*, params, fit_seconds, family extras)


def fit_and_evaluate(config: dict, dataset: Dataset, family: Family | str, session: TrialSession) -> TrialOutcome:
    """Plain training: fit the family on train (+val), evaluate once on test."""
    family = get_family(family) if isinstance(family, str) else family
    started, cpu_started = time.perf_counter(), time.process_time()
    try:
        classifier = family.fit(config, dataset, session)
        fit_seconds = time.perf_counter() - started
        # Cores the fit kept busy: about `threads` when the trial has its CPUs to itself, never much
        # more unless something oversubscribes (a library ignoring the thread limit).
        cpu_utilisation = (time.process_time() - cpu_started) / max(fit_seconds, 1e-9)
        test = Evaluation.of(classifier, dataset.x_test, dataset.y_test)
    except RuntimeError as exc:
        if not out_of_memory(exc):
            raise
        release_gpu_memory()
        raise TrialFailed(
            f"out of GPU memory ({str(exc).splitlines()[0][:300]}); this configuration does not fit: "
            "pin a smaller --fix batch_size/input_size or give trials more GPU (--gpus-per-trial)"
        ) from exc
    params = classifier.num_params
    metrics = {
        "test_accuracy": test.accuracy,
        "test_loss": test.loss,
        "params": params,
        "accuracy_per_param": test.accuracy * 1e5 / params if params else 0.0,
        "fit_seconds": fit_seconds,
        "cpu_utilisation": cpu_utilisation,
        "threads": threads_in_use(),
        **classifier.extra_metrics,
    }
    return TrialOutcome(classifier=classifier, test=test, metrics=metrics)


def out_of_memory(exc: BaseException) -> bool:
    """A GPU out-of-memory: deterministic for the configuration, so the trial fails without retry."""
    import torch

    return isinstance(exc, torch.cuda.OutOfMemoryError) or "CUDA out of memory" in str(exc)


def release_gpu_memory() -> None:
    """Give the failed trial's cached blocks back, so the next trial on this GPU starts clean."""
    import gc

    import torch

    gc.collect()
    if torch.cuda.is_available():
        torch.cuda.empty_cache()


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % 2**32)
    try:
        import torch

        torch.manual_seed(seed)
    except ImportError:  # families without torch
        pass


def threads_in_use() -> int:
    """The compute threads this trial's libraries use (torch's when loaded, else OpenCV's)."""
    if "torch" in sys.modules:
        return sys.modules["torch"].get_num_threads()
    import cv2

    return cv2.getNumThreads()


def set_threads(threads: int) -> None:
    """Keep a trial on its own CPUs so concurrent trials don't oversubscribe the machine."""
    threads = max(1, int(threads))
    os.environ["OMP_NUM_THREADS"] = str(threads)
    import cv2

    cv2.setNumThreads(threads)
    try:
        import torch

        torch.set_num_threads(threads)
    except ImportError:
        pass
