"""The trial schedulers `--scheduler` names: one table, from which come the CLI's choices and help,
the checks in `sweep.spec.validate` and the scheduler `build_tuner` gives Tune.

Adding a scheduler is one `Scheduler(...)` line in SCHEDULERS (plus its row in
tests/sweep/test_schedulers.py): a name, a one-line help, a factory
`build(metric=, mode=, epochs=)`, and what it needs. `auto` is a rule over the table
(`pick_scheduler`): ASHA for families that report per epoch, FIFO for the others and for --objective.

Importing this module imports no Ray: the CLI builds its flags from it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ray.tune.schedulers import TrialScheduler

AUTO = "auto"
# Every early-stopping scheduler counts a trial's progress in Tune results, one per epoch.
TIME_ATTR = "training_iteration"


@dataclass(frozen=True)
class Scheduler:
    name: str
    help: str
    build: Callable[..., TrialScheduler]  # keyword-only: metric, mode, epochs (the most per trial)
    per_epoch: bool = True  # decides on per-epoch results (a family reporting once per trial gains nothing)
    multi_objective: bool = False  # can run an --objective Pareto search (early stopping ranks one metric)
    # Chosen configurations (--enqueue, the paper's, the starts) run their course under it: its STOP can
    # be overruled (sweep.scheduler.ChosenRunTheirCourse). Not HyperBand's: it drops a trial from its
    # bracket before it says STOP, and a trial that then goes on fails its bookkeeping.
    spares_chosen: bool = True


def grace_epochs(epochs: int) -> int:
    """Epochs every trial gets before early stopping may judge it: a fifth of the course, at least 2."""
    return min(epochs, max(2, epochs // 5))


def _asha(*, metric: str, mode: str, epochs: int):
    from ray.tune.schedulers import ASHAScheduler

    return ASHAScheduler(
        time_attr=TIME_ATTR,
        metric=metric,
        mode=mode,
        max_t=epochs,
        grace_period=grace_epochs(epochs),
        reduction_factor=3,
    )


def _hyperband(*, metric: str, mode: str, epochs: int):
    from sweep.pausing import HyperBandToTheEnd

    return HyperBandToTheEnd(time_attr=TIME_ATTR, metric=metric, mode=mode, max_t=epochs, reduction_factor=3)


def _median(*, metric: str, mode: str, epochs: int):
    from sweep.pausing import MedianStoppingOnly

    return MedianStoppingOnly(
        time_attr=TIME_ATTR, metric=metric, mode=mode, grace_period=grace_epochs(epochs), min_samples_required=3
    )


def _fifo(*, metric: str, mode: str, epochs: int):
    from ray.tune.schedulers import FIFOScheduler

    return FIFOScheduler()


SCHEDULERS: dict[str, Scheduler] = {
    s.name: s
    for s in (
        Scheduler("asha", "asynchronous successive halving: stops trials trailing at rungs of 1/3", _asha),
        Scheduler(
            "hyperband",
            "HyperBand: brackets that pause trials at each rung, then halve (chosen configurations too)",
            _hyperband,
            spares_chosen=False,
        ),
        Scheduler("median", "stops a trial below the median of earlier trials at the same epoch", _median),
        Scheduler("fifo", "every trial runs its course", _fifo, per_epoch=False, multi_objective=True),
    )
}


def scheduler_choices() -> list[str]:
    return [AUTO, *SCHEDULERS]


def scheduler_help() -> str:
    lines = "; ".join(f"{s.name}: {s.help}" for s in SCHEDULERS.values())
    return f"trial scheduler (default {AUTO}: ASHA for per-epoch families, FIFO otherwise and for --objective): {lines}"


def get_scheduler(name: str) -> Scheduler:
    try:
        return SCHEDULERS[name]
    except KeyError:
        raise ValueError(f"unknown scheduler {name!r}; choose one of {', '.join(scheduler_choices())}") from None


def pick_scheduler(name: str, *, per_epoch: bool, multi_objective: bool) -> str:
    """The scheduler a sweep runs: `name`, or for auto ASHA where it can judge, else FIFO."""
    if name != AUTO:
        return get_scheduler(name).name
    return "asha" if per_epoch and not multi_objective else "fifo"


def unsupported(name: str, *, family: str, per_epoch: bool, objective: list[str]) -> str | None:
    """Why scheduler `name` cannot run this sweep (one line, with the way out), or None."""
    if name == AUTO:
        return None
    scheduler = get_scheduler(name)
    if objective and not scheduler.multi_objective:
        able = " or ".join(s.name.upper() for s in SCHEDULERS.values() if s.multi_objective)
        return (
            f"--objective {','.join(objective)} runs under {able} ({name} stops trials on one metric); "
            f"drop --scheduler {name}"
        )
    if scheduler.per_epoch and not per_epoch:
        able = ", ".join(s.name for s in SCHEDULERS.values() if not s.per_epoch)
        return f"--scheduler {name} judges per-epoch results and {family} reports once per trial; use {able}"
    return None


def make_scheduler(name: str, *, metric: str, mode: str, epochs: int) -> TrialScheduler:
    return get_scheduler(name).build(metric=metric, mode=mode, epochs=epochs)
