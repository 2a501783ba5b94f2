"""The sweep's terminal: one line per trial event and a live progress line, instead of Ray's tables.

A Tune Callback on the driver. Each line names the trial as MLflow does (its run name), so a line
on the screen is one search away from its run in the UI. `--verbose` brings Ray's own tables back
(this callback then stays quiet); `--quiet` prints only the closing summary.
"""

from __future__ import annotations

import math
import sys
import time
from typing import TextIO

from ray.tune import Callback

from tracking.live import duration

QUIET, DEFAULT, VERBOSE = "quiet", "default", "verbose"
_CLEAR = "\r\033[K"


class TrialConsole(Callback):
    """Prints `started`, `pruned`, `finished` (with validation and test scores) and `failed` (with
    the reason) as trials get there; on a terminal, a progress line below them is kept current."""

    def __init__(
        self,
        *,
        metric: str,
        mode: str,
        samples: int,
        max_epochs: int,
        error_of=None,
        stream: TextIO | None = None,
        live: bool | None = None,
        clock=time.monotonic,
    ):
        self.metric, self.mode, self.samples, self.max_epochs = metric, mode, samples, max_epochs
        self.error_of = error_of  # trial id -> the failure reason its run recorded ("" if none)
        # None: whatever sys.stdout is when a line is written. Tune pickles its callbacks, and a
        # stream held here pickles only if it is still sys.stdout then.
        self.stream = stream
        self.live = (stream or sys.stdout).isatty() if live is None else live
        self.clock = clock
        self.started_at = clock()
        self.ended: dict[str, str] = {}  # trial id -> finished / pruned / failed
        self.running: set[str] = set()
        self.best: tuple[float, str] | None = None  # (value, trial name)
        self._shown = False  # a live progress line is on screen
        self._last_live = 0.0

    # --- Tune's events ------------------------------------------------------------------------

    def on_trial_start(self, iteration, trials, trial, **info):
        self.running.add(trial.trial_id)
        self._event(f"{_name(trial)}  started")

    def on_trial_complete(self, iteration, trials, trial, **info):
        result = trial.last_result or {}
        if result.get("trial_failed"):
            self._end(trial, "failed", self._reason(trial.trial_id))
            return
        if "test_accuracy" not in result and not result.get("already_finished"):
            epoch = result.get("epoch") or result.get("training_iteration")
            self._end(trial, "pruned", f"at epoch {epoch}: {self._score(result)}".rstrip(": "))
            return
        self._note_best(trial, result)
        self._end(trial, "finished", f"{self._score(result)}  test_accuracy {_fmt(result.get('test_accuracy'))}")

    def on_trial_error(self, iteration, trials, trial, **info):
        from tracking.callback import error_text

        self._end(trial, "failed", self._reason(trial.trial_id) or error_text(trial))

    def on_step_end(self, iteration, trials, **info):
        if self.live and self.clock() - self._last_live >= 1.0:
            self._last_live = self.clock()
            self._write(_CLEAR + self.progress())
            self._shown = True

    def on_experiment_end(self, trials, **info):
        self._clear()

    # --- lines --------------------------------------------------------------------------------

    def progress(self) -> str:
        """`3/8 done (2 finished, 1 pruned) · 2 running · best val_accuracy 0.5833 (tinynet_ab12) · 1m20s, ETA 2m10s`"""
        done = len(self.ended)
        counts = ", ".join(f"{n} {k}" for k in ("finished", "pruned", "failed") if (n := self.count(k)))
        parts = [f"{done}/{self.samples} done" + (f" ({counts})" if counts else "")]
        if self.running:
            parts.append(f"{len(self.running)} running")
        if self.best is not None:
            parts.append(f"best {self.metric} {self.best[0]:.4f} ({self.best[1]})")
        elapsed = self.clock() - self.started_at
        timing = duration(elapsed)
        if 0 < done < self.samples:
            timing += f", ETA {duration(elapsed / done * (self.samples - done))}"
        parts.append(timing)
        return " · ".join(parts)

    def count(self, how: str) -> int:
        return sum(1 for v in self.ended.values() if v == how)

    def _end(self, trial, how: str, detail: str) -> None:
        if trial.trial_id in self.ended:  # Tune can report an end twice (error after complete on a resume)
            return
        self.running.discard(trial.trial_id)
        self.ended[trial.trial_id] = how
        self._event(f"{_name(trial)}  {how:8}  {detail}   [{self.progress()}]")

    def _event(self, line: str) -> None:
        self._clear()
        self._write(line + "\n")

    def _clear(self) -> None:
        if self._shown:
            self._write(_CLEAR)
            self._shown = False

    def _write(self, text: str) -> None:
        stream = self.stream or sys.stdout
        stream.write(text)
        stream.flush()

    def _score(self, result: dict) -> str:
        value = result.get(self.metric)
        return f"{self.metric} {_fmt(value)}" if value is not None else ""

    def _note_best(self, trial, result: dict) -> None:
        value = result.get(self.metric)
        if value is None or not math.isfinite(value):
            return
        better = self.best is None or (value > self.best[0] if self.mode == "max" else value < self.best[0])
        if better:
            self.best = (float(value), _name(trial))

    def _reason(self, trial_id: str) -> str:
        if self.error_of is None:
            return ""
        try:
            return self.error_of(trial_id)
        except Exception:  # noqa: BLE001 - a line on the screen is not worth failing the sweep over
            return ""


def tune_verbosity(level: str) -> int:
    """Tune's own output: its tables only with --verbose."""
    return 1 if level == VERBOSE else 0


def _name(trial) -> str:
    return str(trial)  # the trial name, as its MLflow run is named


def _fmt(value) -> str:
    return "-" if value is None else f"{value:.4f}"
