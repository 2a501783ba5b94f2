"""Optuna's NSGA-II sampler, picklable."""

from __future__ import annotations

import functools

from optuna.samplers import NSGAIISampler


class RebuiltNSGAII(NSGAIISampler):
    """NSGAIISampler holds a thread lock (optuna 5.1), which no pickle takes, and Tune pickles the
    searcher with its sampler (tuner.pkl, the searcher's checkpoint). Pickled, it is rebuilt from
    its arguments instead: its generations live in the study's trials, not in the sampler."""

    def __init__(self, *, seed: int, population_size: int):
        super().__init__(seed=seed, population_size=population_size)
        self.arguments = {"seed": seed, "population_size": population_size}

    def __reduce__(self):
        return functools.partial(RebuiltNSGAII, **self.arguments), ()
