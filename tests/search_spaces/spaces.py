"""Helpers the search-space tests share: sample a space, check a config is one of its points."""

import optuna

from search_spaces import contains, parameter_distributions


def sample_configs(count, seed=0, *, space):
    """`count` configs (params plus the space's constants) drawn by random search."""
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=seed))
    configs = []
    for _ in range(count):
        trial = study.ask()
        constants = space(trial) or {}
        configs.append({**trial.params, **constants})
        study.tell(trial, 0.0)
    return configs


def assert_point_of_space(family: str, config: dict) -> None:
    """Every key of `config` is a parameter of the family's space and its value is in range."""
    distributions = parameter_distributions(family)
    for key, value in config.items():
        assert key in distributions, key
        assert contains(distributions[key], value), key


def assert_replays(space, config: dict) -> None:
    """Enqueued in a study, `config` comes back whole from the space: every key asked for, none sampled."""
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0))
    study.enqueue_trial(config)
    trial = study.ask()
    constants = space(trial) or {}
    assert {**trial.params, **constants} == config
