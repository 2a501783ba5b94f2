"""Search spaces: one module per family, each with `suggest(trial) -> dict` and `PAPER_BEST`.

`suggest` is an Optuna define-by-run function: it calls trial.suggest_* (so
conditional parameters are plain `if`s) and returns any constants to add.
`PinnedSpace` pins some parameters to fixed values (`--fix key=value`).

Spaces are pure Optuna: they import neither torch nor the trainables, and probe
no hardware. A space is named by its module path (`Family.space`); a bare name
such as "tinynet" means the module of that name in this package.
"""

from __future__ import annotations

import functools
import importlib


def space_module(space: str):
    return importlib.import_module(space if "." in space else f"{__name__}.{space}")


def space_of(space: str):
    return space_module(space).suggest


class PinnedSpace:
    """A family's space with some parameters fixed; picklable, so a resumed search keeps it."""

    def __init__(self, space: str, pins: dict):
        self.space = space
        self.pins = dict(pins)

    def __call__(self, trial) -> dict:
        constants = space_of(self.space)(_PinningTrial(trial, self.pins)) or {}
        return {**constants, **self.pins}


class _PinningTrial:
    """Answers suggest_* for pinned names itself and passes everything else to the real trial."""

    def __init__(self, trial, pins: dict):
        self._trial = trial
        self._pins = pins

    def suggest_categorical(self, name, choices):
        return self._pins[name] if name in self._pins else self._trial.suggest_categorical(name, choices)

    def suggest_int(self, name, low, high, **kwargs):
        return self._pins[name] if name in self._pins else self._trial.suggest_int(name, low, high, **kwargs)

    def suggest_float(self, name, low, high, **kwargs):
        return self._pins[name] if name in self._pins else self._trial.suggest_float(name, low, high, **kwargs)

    def __getattr__(self, name):
        return getattr(self._trial, name)


def parameter_distributions(space: str, *, samples: int = 200) -> dict:
    """Every parameter the space can ask for (under any branch), with its distribution."""
    return dict(_explored_distributions(space, samples))


@functools.cache  # 200 random asks of the space take ~0.5 s, and a sweep needs them several times
def _explored_distributions(space: str, samples: int) -> dict:
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0))
    suggest = space_of(space)
    found: dict = {}
    for _ in range(samples):
        trial = study.ask()
        suggest(trial)
        for name, distribution in trial.distributions.items():
            found[name] = _widest(found.get(name), distribution)
        study.tell(trial, 0.0)
    return found


def _widest(seen, new):
    """A numeric range may depend on earlier answers (sgd's lr reaches 0.3, adam's 1e-2; an upper
    bound that shrinks with the pyramid levels): --fix accepts anything inside the widest range the
    space can ask for."""
    from optuna.distributions import FloatDistribution, IntDistribution

    if seen is None or type(seen) is not type(new) or not isinstance(new, (IntDistribution, FloatDistribution)):
        return new
    kwargs = {"log": new.log} if new.log or new.step is None else {"step": new.step}
    return type(new)(min(seen.low, new.low), max(seen.high, new.high), **kwargs)


def reachable_distributions(space: str) -> dict:
    """What --fix accepts: the searched distributions widened by the space's REACHABLE_WITH_FIX
    ({name: extra categorical choices, or a (low, high) numeric range}), the values a space keeps
    out of its default search because they waste its budget, but that a user may still ask for."""
    from optuna.distributions import CategoricalDistribution, FloatDistribution, IntDistribution

    distributions = parameter_distributions(space)
    for name, extra in getattr(space_module(space), "REACHABLE_WITH_FIX", {}).items():
        searched = distributions[name]
        if isinstance(searched, CategoricalDistribution):
            choices = list(searched.choices) + [choice for choice in extra if choice not in searched.choices]
            numeric = all(isinstance(choice, (int, float)) and not isinstance(choice, bool) for choice in choices)
            distributions[name] = CategoricalDistribution(sorted(choices) if numeric else choices)
        else:
            low, high = extra
            kind = IntDistribution if isinstance(searched, IntDistribution) else FloatDistribution
            distributions[name] = _widest(searched, kind(low, high, log=searched.log))
    return distributions


def unavailable(space: str) -> dict:
    """{parameter: {value: why}}: known values a family cannot offer (e.g. BoVW's patented SURF)."""
    return getattr(space_module(space), "UNAVAILABLE", {})


def parse_pins(space: str, assignments: list[str]) -> dict:
    """'key=value' strings -> {key: typed value}, checked against the space. Raises ValueError."""
    distributions = reachable_distributions(space) if assignments else {}
    family = space.rsplit(".", 1)[-1]
    pins = {}
    for assignment in assignments:
        key, sep, raw = assignment.partition("=")
        key = key.strip()
        if not sep or not key:
            raise ValueError(f"--fix {assignment!r} is not KEY=VALUE (e.g. --fix input_size=64)")
        if key not in distributions:
            raise ValueError(
                f"--fix {key}: {family} has no parameter {key!r}; it has {', '.join(sorted(distributions))}"
            )
        reason = unavailable(space).get(key, {}).get(raw.strip().lower())
        if reason:
            raise ValueError(f"--fix {key}={raw.strip()}: {reason}")
        pins[key] = _typed(raw.strip(), distributions[key], key)
    return pins


def _typed(raw: str, distribution, key: str):
    from optuna.distributions import CategoricalDistribution, FloatDistribution, IntDistribution

    if isinstance(distribution, CategoricalDistribution):
        for choice in distribution.choices:
            if str(choice).lower() == raw.lower():
                return choice
        raise ValueError(f"--fix {key}={raw}: choose {describe(distribution)}")
    try:
        value = int(raw) if isinstance(distribution, IntDistribution) else float(raw)
    except ValueError:
        raise ValueError(f"--fix {key}={raw}: expected a number") from None
    if (
        isinstance(distribution, (IntDistribution, FloatDistribution))
        and not distribution.low <= value <= distribution.high
    ):
        raise ValueError(f"--fix {key}={raw}: out of the space's range {describe(distribution)}")
    return value


def contains(distribution, value) -> bool:
    """Whether `value` is one `distribution` can suggest (what Optuna's enqueue_trial and create_trial
    replay): one of a categorical's choices; a number, not a bool, inside a numeric one's bounds and on
    its step (a whole number for an integer one)."""
    import math
    from numbers import Real

    from optuna.distributions import CategoricalDistribution, FloatDistribution, IntDistribution

    if isinstance(distribution, CategoricalDistribution):
        try:
            distribution.to_internal_repr(value)  # the choice's index; ValueError when it is none of them
        except (ValueError, TypeError):
            return False
        return True
    if isinstance(value, bool) or not isinstance(value, Real):
        return False
    number = float(value)
    if not math.isfinite(number) or not distribution.low <= number <= distribution.high:
        return False
    if isinstance(distribution, IntDistribution):
        return number.is_integer() and (int(number) - distribution.low) % distribution.step == 0
    if isinstance(distribution, FloatDistribution) and distribution.step is not None:
        steps = (number - distribution.low) / distribution.step
        return abs(steps - round(steps)) < 1e-8  # Optuna's own tolerance for a float on its step
    return isinstance(distribution, FloatDistribution)


def describe(distribution) -> str:
    """A distribution's values as messages name them: 'one of a, b, c' or '[low, high]'."""
    from optuna.distributions import CategoricalDistribution

    if isinstance(distribution, CategoricalDistribution):
        return "one of " + ", ".join(map(str, distribution.choices))
    return f"[{distribution.low}, {distribution.high}]"
