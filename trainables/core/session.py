"""What a family's `fit()` sees of its trial: the epoch budget, the checkpoint to
resume from, and one call per finished epoch.

`report_epoch` logs the epoch to MLflow (one log_batch) and hands it to Tune
with a checkpoint, so ASHA can stop the trial and a retried trial resumes from
its last epoch. The final epoch's report is held back and sent by the trial
after test evaluation and model logging: a scheduler that stops the trial at
that report can then no longer cut those off. A `Stopwatch` adds up the time
spent in MLflow (`epoch_log`) and in Tune's report/checkpoint calls (`tune`)
during training, so every trial records its own bookkeeping overhead.
"""

from __future__ import annotations

import shutil
import tempfile
import time
from collections import defaultdict
from collections.abc import Callable
from contextlib import contextmanager
from pathlib import Path
from typing import TypeVar

T = TypeVar("T")
_EPOCH_FILE = "scenesweep_epoch"


class TrialFailed(Exception):
    """A deterministic failure of this configuration (diverged, impossible combination).

    The trial's run is marked FAILED with this message and the sweep moves on;
    Tune does not retry it, since a retry would fail the same way.
    """


class AtChanceLevel(Exception):
    """The trial's validation accuracy is still at chance level after its first epochs: it is not
    learning (init, learning rate), so it stops and is recorded as pruned instead of using its budget."""


CHANCE_EPOCHS = 2  # epochs a trial gets before the chance-level check
CHANCE_MARGIN = 0.02  # val accuracy up to chance + this counts as chance level


class Stopwatch:
    """Wall seconds per named phase ("epoch_log", "tune", ...), summed over the trial; phases don't nest."""

    def __init__(self) -> None:
        self.seconds: dict[str, float] = defaultdict(float)

    @contextmanager
    def __call__(self, phase: str):
        started = time.perf_counter()
        try:
            yield
        finally:
            self.seconds[phase] += time.perf_counter() - started

    def metrics(self) -> dict[str, float]:
        return {f"{phase}_seconds": seconds for phase, seconds in sorted(self.seconds.items())}


class TrialSession:
    def __init__(
        self,
        *,
        max_epochs: int,
        run=None,
        threads: int = 1,
        report: Callable | None = None,
        checkpoint=None,
        options: dict | None = None,
        time_limit: float | None = None,
        stopwatch: Stopwatch | None = None,
        chance_level: float | None = None,
    ):
        self.max_epochs = int(max_epochs)
        self._deadline = time.monotonic() + time_limit if time_limit else None
        self.timed_out = False
        self.threads = threads
        self.options = dict(options or {})  # sweep-wide settings that are not searched (cache_dir, ...)
        self._run = run  # tracking.runs.TrialRun, or None outside a sweep
        self._report = report  # ray.tune.report, or None outside Tune
        self._checkpoint = checkpoint  # the tune.Checkpoint to resume from, if any
        self.history: dict[str, list[tuple[int, float]]] = {}
        self.held_back: tuple[dict, Path | None] | None = None
        self.stopwatch = stopwatch or Stopwatch()
        self.chance_level = chance_level  # 1/classes: report_epoch stops a trial stuck there; None: never

    def restore(self, load: Callable[[Path], T]) -> T | None:
        """Load the latest checkpoint with `load(folder)`, or None for a fresh start."""
        if self._checkpoint is None:
            return None
        with self._checkpoint.as_directory() as folder:
            state = load(Path(folder))
            marker = Path(folder) / _EPOCH_FILE
            if marker.exists() and self._run is not None:
                self._run.resumed_from(marker.read_text().strip())
            return state

    def log_params(self, params: dict) -> None:
        """Record settings the trial resolved beyond its config (e.g. which weights it started from)."""
        if self._run is not None:
            self._run.log_params(params)

    def report_epoch(self, epoch: int, metrics: dict, *, save: Callable[[Path], None] | None = None) -> None:
        """Record one finished epoch (1-based) with its metrics; `save(folder)` writes the checkpoint."""
        metrics = {k: float(v) for k, v in metrics.items()}
        for key, value in metrics.items():
            self.history.setdefault(key, []).append((epoch, value))
        if self._run is not None:
            with self.stopwatch("epoch_log"):
                self._run.log_epoch(epoch, metrics)
        if self._at_chance_level(epoch, metrics):
            raise AtChanceLevel(
                f"val_accuracy {metrics['val_accuracy']:.3f} after {epoch} epochs, chance is {self.chance_level:.3f}"
            )
        folder = None
        if save is not None and self._report is not None:  # a checkpoint only Tune can use
            with self.stopwatch("tune"):
                folder = Path(tempfile.mkdtemp(prefix="scenesweep-ckpt-"))
                save(folder)
                (folder / _EPOCH_FILE).write_text(str(epoch))  # read back by restore() for the run's record
        result = {**metrics, "epoch": epoch}
        if epoch >= self.max_epochs:
            self._discard_held()
            self.held_back = (result, folder)
            return
        self._send(result, folder)

    def _at_chance_level(self, epoch: int, metrics: dict) -> bool:
        # Checked once, at the end of epoch CHANCE_EPOCHS, and never on the last epoch (that trial is done).
        return (
            self.chance_level is not None
            and epoch == CHANCE_EPOCHS < self.max_epochs
            and "val_accuracy" in metrics
            and metrics["val_accuracy"] <= self.chance_level + CHANCE_MARGIN
        )

    def out_of_time(self) -> bool:
        """True once the trial's --trial-timeout has passed; training loops stop at the next epoch end."""
        if self._deadline is not None and time.monotonic() >= self._deadline:
            self.timed_out = True
        return self.timed_out

    def send_final(self, final_metrics: dict) -> None:
        """The trial's last report: the held-back epoch (if any) merged with the final metrics."""
        result, folder = self.held_back or ({}, None)
        self.held_back = None
        self._send({**result, **final_metrics}, folder)

    def _send(self, result: dict, folder: Path | None) -> None:
        try:
            if self._report is not None:
                with self.stopwatch("tune"):
                    checkpoint = None
                    if folder is not None:
                        from ray.tune import Checkpoint

                        checkpoint = Checkpoint.from_directory(str(folder))
                    self._report(result, checkpoint=checkpoint)
        finally:
            if folder is not None:
                shutil.rmtree(folder, ignore_errors=True)

    def _discard_held(self) -> None:
        if self.held_back and self.held_back[1] is not None:
            shutil.rmtree(self.held_back[1], ignore_errors=True)
        self.held_back = None
