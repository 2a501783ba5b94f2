"""The sampler table: every entry builds a real Optuna sampler that searches a real study; the CLI's
choices and help come from the table; `auto` picks by the space and the budget."""

from __future__ import annotations

import optuna
import pytest

from sweep.samplers import (
    AUTO,
    GP_MOST_TRIALS,
    SAMPLERS,
    SpaceShape,
    make_sampler,
    pick_sampler,
    search_choices,
    space_shape,
    startup_trials,
    unsupported,
)

# One row per table entry: the Optuna class it builds. A new sampler adds its row here.
BUILDS = {
    "tpe": optuna.samplers.TPESampler,
    "gp": optuna.samplers.GPSampler,
    "cmaes": optuna.samplers.CmaEsSampler,
    "random": optuna.samplers.RandomSampler,
    "qmc": optuna.samplers.QMCSampler,
    "nsga2": optuna.samplers.NSGAIISampler,
}
NUMERIC = SpaceShape(categorical=(), conditional=())
TINYNET_LIKE = SpaceShape(categorical=("base_width",), conditional=("lr", "momentum"))


def test_every_entry_has_its_row():
    assert set(BUILDS) == set(SAMPLERS)


def space(trial):
    trial.suggest_float("lr", 1e-4, 1e-1, log=True)
    trial.suggest_int("blocks", 2, 5)


@pytest.mark.parametrize("name", sorted(SAMPLERS))
def test_every_entry_builds_its_sampler_and_searches(name):
    sampler = make_sampler(name, seed=0, samples=6, concurrent=True)
    assert isinstance(sampler, BUILDS[name])
    directions = ["maximize", "minimize"] if SAMPLERS[name].multi_objective else ["maximize"]
    study = optuna.create_study(directions=directions, sampler=sampler)
    for _ in range(6):
        trial = study.ask()
        space(trial)
        values = [trial.params["lr"], float(trial.params["blocks"])]
        study.tell(trial, values[: len(directions)])
    assert len(study.trials) == 6 and {"lr", "blocks"} <= set(study.trials[-1].params)


@pytest.mark.parametrize("name", sorted(SAMPLERS))
def test_every_sampler_pickles_as_tune_saves_it(name):
    import pickle

    sampler = make_sampler(name, seed=0, samples=6)
    assert type(pickle.loads(pickle.dumps(sampler))) is type(sampler)


@pytest.mark.parametrize("name", sorted(SAMPLERS))
def test_the_same_seed_suggests_the_same(name):
    first, second = (
        optuna.create_study(sampler=make_sampler(name, seed=3, samples=6)).ask().suggest_float("x", 0, 1)
        for _ in range(2)
    )
    assert first == second


def test_model_based_samplers_start_after_a_third_of_a_small_budget():
    assert [startup_trials(n) for n in (0, 6, 9, 30, 300)] == [10, 3, 3, 10, 10]


def test_the_cli_choices_and_help_come_from_the_table():
    from orchestrator import build_parser

    parser = build_parser()
    sweep = parser._subparsers._group_actions[0].choices["sweep"]  # type: ignore[union-attr]
    action = next(a for a in sweep._actions if a.dest == "search")
    assert list(action.choices) == search_choices() == [*SAMPLERS, AUTO]
    for entry in SAMPLERS.values():
        assert f"{entry.name}: {entry.help}" in action.help
    assert parser.parse_args(["sweep"]).search == "tpe"


def test_unknown_name_names_the_choices():
    with pytest.raises(ValueError, match="unknown sampler 'bayes'; choose one of tpe, gp, cmaes"):
        make_sampler("bayes", seed=0, samples=0)


@pytest.mark.parametrize(
    "shape, samples, multi_objective, picked",
    [
        (NUMERIC, 20, False, "gp"),
        (NUMERIC, GP_MOST_TRIALS, False, "gp"),
        (NUMERIC, GP_MOST_TRIALS + 1, False, "tpe"),
        (NUMERIC, 0, False, "tpe"),  # --budget with no --samples: open-ended
        (TINYNET_LIKE, 20, False, "tpe"),
        (SpaceShape(categorical=("k",), conditional=()), 20, False, "gp"),  # GP models categoricals
        (NUMERIC, 20, True, "tpe"),
    ],
)
def test_auto_picks_by_space_and_budget_and_says_why(shape, samples, multi_objective, picked):
    name, why = pick_sampler(shape=shape, samples=samples, multi_objective=multi_objective)
    assert name == picked and why
    assert unsupported(name, shape=shape, multi_objective=multi_objective, concurrent=True) is None


@pytest.mark.parametrize(
    "name, shape, multi_objective, message",
    [
        ("cmaes", NUMERIC, True, "--search cmaes optimises one objective; for --objective use one of tpe, gp"),
        ("cmaes", TINYNET_LIKE, False, "--search cmaes cannot search categorical parameters (base_width)"),
        ("cmaes", SpaceShape(categorical=(), conditional=("lr",)), False, "cannot search conditional parameters (lr)"),
        ("tpe", TINYNET_LIKE, True, None),
        ("gp", TINYNET_LIKE, True, None),
        ("nsga2", TINYNET_LIKE, True, None),
        ("cmaes", NUMERIC, False, None),
    ],
)
def test_what_a_sampler_cannot_search_is_one_line(name, shape, multi_objective, message):
    why = unsupported(name, shape=shape, multi_objective=multi_objective, concurrent=False)
    assert why == message if message is None else (why and message in why and "\n" not in why)


@pytest.mark.parametrize(
    "family, pins, categorical, conditional",
    [
        ("tinynet", {}, True, ("lr", "momentum")),
        ("tinynet", {"lr_finder": False, "optimizer": "adam"}, True, ()),
        ("bovw", {}, True, None),  # its descriptor and classifier decide which parameters follow
    ],
)
def test_the_space_shape_is_asked_through_optuna(family, pins, categorical, conditional):
    shape = space_shape(family, pins)
    assert bool(shape.categorical) == categorical
    assert shape.conditional == conditional if conditional is not None else shape.conditional
    assert not set(pins) & set(shape.categorical + shape.conditional)  # a pinned parameter is not searched
