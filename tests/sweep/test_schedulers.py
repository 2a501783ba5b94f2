"""The scheduler table: every entry builds a real Ray Tune scheduler with today's settings; the CLI's
choices and help come from the table; `auto` and the unsupported combinations."""

from __future__ import annotations

import pytest
from ray.tune.schedulers import ASHAScheduler, FIFOScheduler

from sweep.pausing import HyperBandToTheEnd, MedianStoppingOnly
from sweep.schedulers import (
    AUTO,
    SCHEDULERS,
    grace_epochs,
    make_scheduler,
    pick_scheduler,
    scheduler_choices,
    unsupported,
)

# One row per table entry: the Ray class it builds. A new scheduler adds its row here.
BUILDS = {
    "asha": ASHAScheduler,
    "hyperband": HyperBandToTheEnd,
    "median": MedianStoppingOnly,
    "fifo": FIFOScheduler,
}


def test_every_entry_has_its_row():
    assert set(BUILDS) == set(SCHEDULERS)


@pytest.mark.parametrize("name", sorted(SCHEDULERS))
def test_every_entry_builds_its_scheduler(name):
    scheduler = make_scheduler(name, metric="val_accuracy", mode="max", epochs=30)
    assert isinstance(scheduler, BUILDS[name])


def test_early_stopping_waits_a_fifth_of_the_epochs_at_least_2():
    assert [grace_epochs(e) for e in (1, 2, 10, 30)] == [1, 2, 2, 6]


def test_the_cli_choices_and_help_come_from_the_table():
    from orchestrator import build_parser

    sweep = build_parser()._subparsers._group_actions[0].choices["sweep"]  # type: ignore[union-attr]
    action = next(a for a in sweep._actions if a.dest == "scheduler")
    assert list(action.choices) == scheduler_choices() == [AUTO, *SCHEDULERS]
    for entry in SCHEDULERS.values():
        assert f"{entry.name}: {entry.help}" in action.help


@pytest.mark.parametrize(
    "name, per_epoch, multi_objective, picked",
    [
        (AUTO, True, False, "asha"),
        (AUTO, False, False, "fifo"),
        (AUTO, True, True, "fifo"),
        ("median", True, False, "median"),
    ],
)
def test_auto_is_asha_where_it_can_judge(name, per_epoch, multi_objective, picked):
    assert pick_scheduler(name, per_epoch=per_epoch, multi_objective=multi_objective) == picked


@pytest.mark.parametrize(
    "name, per_epoch, objective, message",
    [
        ("asha", True, ["accuracy", "params"], "--objective accuracy,params runs under FIFO"),
        ("hyperband", True, ["accuracy", "params"], "drop --scheduler hyperband"),
        ("median", True, ["accuracy", "params"], "drop --scheduler median"),
        ("asha", False, [], "--scheduler asha judges per-epoch results and bovw reports once per trial; use fifo"),
        ("hyperband", False, [], "bovw reports once per trial"),
        ("median", False, [], "bovw reports once per trial"),
        ("fifo", False, ["accuracy", "params"], None),
        (AUTO, False, ["accuracy", "params"], None),
    ],
)
def test_what_a_scheduler_cannot_run_is_one_line(name, per_epoch, objective, message):
    why = unsupported(name, family="bovw", per_epoch=per_epoch, objective=objective)
    assert why == message if message is None else (why and message in why and "\n" not in why)


def test_unknown_name_names_the_choices():
    with pytest.raises(ValueError, match="unknown scheduler 'pbt'; choose one of auto, asha, hyperband"):
        pick_scheduler("pbt", per_epoch=True, multi_objective=False)
