"""A restored sweep's RunConfig (pickled by Tune with ray.cloudpickle, as into tuner.pkl) reaches the
callbacks and verbosity of the driver that restores it, not the pickled driver's."""

from __future__ import annotations

import io

import pytest
import ray.cloudpickle
from ray import tune
from ray.tune.experiment import Trial

from sweep.console import TrialConsole
from sweep.driver_callbacks import register_driver_callbacks


def console(stream: io.StringIO) -> TrialConsole:
    return TrialConsole(metric="val_accuracy", mode="max", samples=2, max_epochs=3, stream=stream, live=False)


def stub_trial(trial_id: str) -> Trial:
    made = Trial("__fake", trial_id=trial_id, config={}, stub=True)
    made.custom_trial_name = f"tinynet_{trial_id}"
    return made


@pytest.mark.parametrize(("first_verbose", "resumed_verbose"), [(0, 1), (1, 0), (0, 0)])
def test_a_restored_run_config_reaches_the_restoring_drivers_callbacks_and_verbosity(first_verbose, resumed_verbose):
    first_screen, resumed_screen = io.StringIO(), io.StringIO()
    callbacks, verbose = register_driver_callbacks("restored", callbacks=[console(first_screen)], verbose=first_verbose)
    saved = ray.cloudpickle.dumps(tune.RunConfig(name="restored", callbacks=callbacks, verbose=verbose))

    # A new driver: its own terminal and verbosity, registered before the restore unpickles.
    register_driver_callbacks("restored", callbacks=[console(resumed_screen)], verbose=resumed_verbose)
    restored = ray.cloudpickle.loads(saved)
    assert restored.verbose == resumed_verbose
    for callback in restored.callbacks:
        callback.on_trial_start(iteration=1, trials=[], trial=stub_trial("ab12"))
    assert "tinynet_ab12  started" in resumed_screen.getvalue()
    assert first_screen.getvalue() == ""


def test_each_sweep_reaches_only_its_own_callbacks():
    screens = {name: io.StringIO() for name in ("one", "two")}
    run_configs = {}
    for name, screen in screens.items():
        callbacks, verbose = register_driver_callbacks(name, callbacks=[console(screen)], verbose=0)
        run_configs[name] = tune.RunConfig(name=name, callbacks=callbacks, verbose=verbose)
    for callback in ray.cloudpickle.loads(ray.cloudpickle.dumps(run_configs["two"])).callbacks:
        callback.on_trial_start(iteration=1, trials=[], trial=stub_trial("cd34"))
    assert screens["one"].getvalue() == "" and "tinynet_cd34  started" in screens["two"].getvalue()


def test_every_tune_hook_is_passed_on():
    """Ray checks that a callback container overrides each of its hooks; this checks that each
    override calls the registered callback's hook of the same name."""

    class Heard(tune.Callback):
        def __init__(self):
            self.heard: list[str] = []

    hooks = [name for name in vars(tune.Callback) if name == "setup" or name.startswith("on_")]
    heard = Heard()
    for hook in hooks:
        setattr(heard, hook, lambda hook=hook, **info: heard.heard.append(hook))
    (container,), _ = register_driver_callbacks("hooks", callbacks=[heard], verbose=0)
    for hook in hooks:
        getattr(container, hook)(iteration=1, trials=[])
    assert heard.heard == hooks
