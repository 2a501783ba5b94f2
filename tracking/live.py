"""The sweep's parent run while the sweep runs: best-so-far metrics, a progress tag, a heartbeat and a
Markdown description, kept current by a Tune Callback on the driver.

The MLflow UI then shows a running sweep as it goes: `best_<metric>` charts against the number of
trials ended, the Overview's description holds the command, the data and a top-5 table, and
`scenesweep status` tells a sweep whose driver is gone (its heartbeat stops) from a running one.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field

from mlflow.entities import Metric, RunTag
from mlflow.tracking import MlflowClient
from ray.tune import Callback

from tracking.provenance import NOTE_TAG
from tracking.runs import SweepTarget

TAG_PROGRESS = "scenesweep.progress"
TAG_HEARTBEAT = "scenesweep.heartbeat"  # unix seconds, written by a running driver
HEARTBEAT_SECONDS = 30.0
# A trial's start shows in the progress tag within this long: with short trials it then rides on the
# next trial's end instead of costing Tune's loop a request of its own between two trials.
START_LAG_SECONDS = 2.0
STALE_AFTER_SECONDS = 4 * HEARTBEAT_SECONDS  # a RUNNING sweep this quiet has lost its driver
TOP = 5


@dataclass
class TrialEnd:
    name: str
    how: str  # finished, pruned, failed
    value: float | None  # the sweep's metric (finished and pruned trials)
    test_accuracy: float | None = None
    params: float | None = None
    epochs: int | None = None


@dataclass
class SweepAbout:
    """What the description says besides the trials: how the sweep was started and on what."""

    command: str
    data: str
    space: str
    budget: str
    extra: dict = field(default_factory=dict)


class SweepProgress(Callback):
    def __init__(self, target: SweepTarget, *, metric: str, mode: str, about: SweepAbout, clock=time.time):
        self.target, self.metric, self.mode, self.about = target, metric, mode, about
        self.clock = clock
        self.started_at = clock()
        self.ended: dict[str, TrialEnd] = {}
        self.running: set[str] = set()
        self._last_beat = 0.0
        self._unwritten_start = False  # a trial started since the progress tag was last written
        self._best: float | None = None

    @property
    def client(self) -> MlflowClient:
        return MlflowClient(self.target.uri)

    def seed(self, rows) -> None:
        """Trials an earlier driver ended (tracking.summary.TrialRow), so a resumed sweep counts on."""
        for row in rows:
            if row.status == "RUNNING":
                continue
            how = "pruned" if row.pruned else {"FINISHED": "finished"}.get(row.status, "failed")
            self.ended[row.trial_id] = TrialEnd(
                f"{self.target.family}_{row.trial_id}",
                how,
                _number(row.metrics.get(self.metric)),
                test_accuracy=_number(row.metrics.get("test_accuracy")),
                params=_number(row.metrics.get("params")),
                epochs=row.epochs,
            )
            value = self.ended[row.trial_id].value
            if how == "finished" and value is not None:
                self._improve(value)

    # --- Tune's events ------------------------------------------------------------------------

    def setup(self, **info):  # type: ignore[override]  # Tune passes its hooks' arguments by keyword
        self._write(tags=self._state_tags())

    def on_trial_start(self, iteration, trials, trial, **info):
        self.running.add(trial.trial_id)
        if self.clock() - self._last_beat >= START_LAG_SECONDS:
            self._write_progress()
        else:
            self._unwritten_start = True

    def on_trial_complete(self, iteration, trials, trial, **info):
        result = trial.last_result or {}
        if result.get("trial_failed"):
            self._end(trial, TrialEnd(str(trial), "failed", None))
            return
        finished = "test_accuracy" in result or bool(result.get("already_finished"))
        self._end(
            trial,
            TrialEnd(
                str(trial),
                "finished" if finished else "pruned",
                _number(result.get(self.metric)),
                test_accuracy=_number(result.get("test_accuracy")),
                params=_number(result.get("params")),
                epochs=result.get("epoch") or result.get("training_iteration"),
            ),
        )

    def on_trial_error(self, iteration, trials, trial, **info):
        self._end(trial, TrialEnd(str(trial), "failed", None))

    def on_step_end(self, iteration, trials, **info):
        quiet = self.clock() - self._last_beat
        if quiet >= HEARTBEAT_SECONDS or (self._unwritten_start and quiet >= START_LAG_SECONDS):
            self._write_progress()

    def _write_progress(self) -> None:
        self._write(tags={TAG_PROGRESS: self.progress(), TAG_HEARTBEAT: self._beat()})

    # --- what is written ----------------------------------------------------------------------

    def progress(self) -> str:
        """`3 finished, 1 pruned, 0 failed, 2 running; 4m10s`"""
        counts = [f"{sum(e.how == how for e in self.ended.values())} {how}" for how in ("finished", "pruned", "failed")]
        return ", ".join([*counts, f"{len(self.running)} running"]) + f"; {duration(self.clock() - self.started_at)}"

    def ranked(self) -> list[TrialEnd]:
        done = [e for e in self.ended.values() if e.how == "finished" and e.value is not None]
        return sorted(done, key=lambda e: e.value or 0.0, reverse=self.mode == "max")

    def description(self) -> str:
        about = self.about
        lines = [
            f"**Sweep `{self.target.sweep}`** ({self.target.family}): {self.progress()}",
            "",
            f"- command: `{about.command}`",
            f"- data: {about.data}",
            f"- space: {about.space}",
            f"- budget: {about.budget}",
            *(f"- {key}: {value}" for key, value in about.extra.items()),
            "",
        ]
        top = self.ranked()[:TOP]
        if top:
            lines += [
                f"| # | trial | {self.metric} | test_accuracy | params | epochs |",
                "|---|---|---|---|---|---|",
                *(
                    f"| {i} | {e.name} | {_fmt(e.value)} | {_fmt(e.test_accuracy)} | {_fmt_int(e.params)} | "
                    f"{e.epochs or ''} |"
                    for i, e in enumerate(top, 1)
                ),
            ]
        else:
            lines.append("_No trial has finished yet._")
        return "\n".join(lines)

    def _end(self, trial, end: TrialEnd) -> None:
        if trial.trial_id in self.ended:
            return
        self.running.discard(trial.trial_id)
        self.ended[trial.trial_id] = end
        metrics = []
        if end.how == "finished" and end.value is not None:
            self._improve(end.value)
        if self._best is not None:
            # Step = trials ended: the chart reads as the sweep's progress, flat where a trial did not improve.
            metrics.append(Metric(f"best_{self.metric}", self._best, int(self.clock() * 1000), len(self.ended)))
        self._write(metrics=metrics, tags=self._state_tags())

    def _improve(self, value: float) -> None:
        if self._best is None or (value > self._best if self.mode == "max" else value < self._best):
            self._best = value

    def _state_tags(self) -> dict:
        return {TAG_PROGRESS: self.progress(), TAG_HEARTBEAT: self._beat(), NOTE_TAG: self.description()}

    def _beat(self) -> str:  # every write of the progress tag carries the heartbeat
        self._unwritten_start = False
        self._last_beat = self.clock()
        return str(int(self._last_beat))

    def _write(self, *, metrics: list | None = None, tags: dict | None = None) -> None:
        try:
            self.client.log_batch(
                self.target.parent_run_id,
                metrics=metrics or [],
                tags=[RunTag(k, str(v)) for k, v in (tags or {}).items()],
            )
        except Exception:  # noqa: BLE001 - progress on the parent run must never stop the sweep
            pass


def driver_gone(tags: dict, *, now: float | None = None) -> float | None:
    """Seconds since a RUNNING sweep's last heartbeat when that is too long ago (its driver is gone);
    None while it beats, or for a sweep that never wrote one."""
    try:
        beat = float(tags[TAG_HEARTBEAT])
    except (KeyError, ValueError):
        return None
    silent = (time.time() if now is None else now) - beat
    return silent if silent > STALE_AFTER_SECONDS else None


def _number(value) -> float | None:
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if math.isfinite(number) else None


def _fmt(value) -> str:
    return "" if value is None else f"{value:.4f}"


def _fmt_int(value) -> str:
    return "" if value is None else f"{int(value):,}"


def duration(seconds: float) -> str:
    """`42s`, `4m10s`, `2h05m`."""
    seconds = int(round(seconds))
    minutes, seconds = divmod(seconds, 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h{minutes:02d}m" if hours else (f"{minutes}m{seconds:02d}s" if minutes else f"{seconds}s")
