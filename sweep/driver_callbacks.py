"""The driver's Tune callbacks and Tune's own verbosity, held by this process and named in the Tuner.

Tune pickles a Tuner's RunConfig (callbacks and verbosity included) into the sweep's folder, and
`Tuner.restore` takes no new ones. A resumed sweep would then call the killed driver's copies: their
tracking URI (which may have moved since), an interrupt flag this driver never reads, the old
terminal settings. So the RunConfig holds only the sweep's name: `RegisteredCallbacks` passes each of
Tune's events on to the callbacks this process registered under that name, and `TuneVerbosity`
unpickles as the verbosity registered now. Registering comes first: `Tuner.restore` unpickles.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from ray.tune import Callback


@dataclass
class _Registered:
    callbacks: list[Callback]
    verbose: int


_REGISTERED: dict[str, _Registered] = {}  # sweep name -> what this driver watches it with


def register_driver_callbacks(sweep: str, *, callbacks: Sequence[Callback], verbose: int) -> tuple[list[Callback], int]:
    """Register this driver's `callbacks` and Tune `verbose` level for `sweep`; returns the RunConfig's
    `callbacks` and `verbose`, which reach them by the sweep's name (also after a restore)."""
    _REGISTERED[sweep] = _Registered(list(callbacks), verbose)
    return [RegisteredCallbacks(sweep)], TuneVerbosity(verbose, sweep=sweep)


class TuneVerbosity(int):
    """RunConfig.verbose that unpickles as the verbosity its sweep's driver registered (else as saved)."""

    sweep: str

    def __new__(cls, value: int, *, sweep: str):
        verbosity = super().__new__(cls, value)
        verbosity.sweep = sweep
        return verbosity

    def __reduce__(self):
        return (registered_verbosity, (self.sweep, int(self)))


def registered_verbosity(sweep: str, saved: int) -> TuneVerbosity:
    registered = _REGISTERED.get(sweep)
    return TuneVerbosity(saved if registered is None else registered.verbose, sweep=sweep)


class RegisteredCallbacks(Callback):
    """One Tune callback that passes every event on to the callbacks registered for its sweep.

    Ray checks at class creation that a callback container overrides every hook, so a hook added in
    a later Ray fails this import instead of going unheard."""

    IS_CALLBACK_CONTAINER = True

    def __init__(self, sweep: str):
        self.sweep = sweep  # all that is pickled

    @property
    def callbacks(self) -> list[Callback]:
        registered = _REGISTERED.get(self.sweep)
        return registered.callbacks if registered is not None else []

    def setup(self, **info):
        for callback in self.callbacks:
            callback.setup(**info)

    def on_step_begin(self, **info):
        for callback in self.callbacks:
            callback.on_step_begin(**info)

    def on_step_end(self, **info):
        for callback in self.callbacks:
            callback.on_step_end(**info)

    def on_trial_start(self, **info):
        for callback in self.callbacks:
            callback.on_trial_start(**info)

    def on_trial_restore(self, **info):
        for callback in self.callbacks:
            callback.on_trial_restore(**info)

    def on_trial_save(self, **info):
        for callback in self.callbacks:
            callback.on_trial_save(**info)

    def on_trial_result(self, **info):
        for callback in self.callbacks:
            callback.on_trial_result(**info)

    def on_trial_complete(self, **info):
        for callback in self.callbacks:
            callback.on_trial_complete(**info)

    def on_trial_recover(self, **info):
        for callback in self.callbacks:
            callback.on_trial_recover(**info)

    def on_trial_error(self, **info):
        for callback in self.callbacks:
            callback.on_trial_error(**info)

    def on_checkpoint(self, **info):
        for callback in self.callbacks:
            callback.on_checkpoint(**info)

    def on_experiment_end(self, **info):
        for callback in self.callbacks:
            callback.on_experiment_end(**info)
