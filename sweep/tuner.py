"""The Ray Tune side of a sweep: Optuna searcher, the sampler and scheduler from their tables
(sweep/samplers.py, sweep/schedulers.py), resources, resume."""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING

from trainables.families import Family

if TYPE_CHECKING:
    from ray import tune

    from sweep.spec import SweepSpec
    from tracking.callback import TrialRunCloser
    from trainables.core.data import Dataset


def build_tuner(
    spec: SweepSpec,
    family: Family,
    dataset: Dataset,
    closer: TrialRunCloser,
    *,
    resume: bool,
    callbacks: tuple = (),
    verbose: int = 1,
) -> tune.Tuner:
    """The sweep's Tuner; `callbacks` watch it beside `closer` (the terminal, the parent run),
    `verbose` is Tune's own output (0: none of its tables)."""
    from mlflow.tracking import MlflowClient
    from ray import tune

    from search_spaces import PinnedSpace
    from sweep.driver_callbacks import register_driver_callbacks
    from sweep.pareto import objective_metrics
    from sweep.preflight import gpus_per_trial
    from sweep.refit import reserve_stopper
    from sweep.samplers import make_sampler
    from sweep.scheduler import ChosenRunTheirCourse
    from sweep.schedulers import get_scheduler, make_scheduler, pick_scheduler
    from sweep.searcher import SweepSearch
    from sweep.study import new_study, start_over, study_storage
    from sweep.trial import TrialSettings, run_trial
    from sweep.warm_start import TAG_WARM_START, seed_study

    gpus = gpus_per_trial(spec)
    settings = TrialSettings.of_sweep(spec, family, closer.target)
    trainable = tune.with_resources(
        tune.with_parameters(run_trial, dataset=dataset, settings=settings),
        {"cpu": spec.cpus_per_trial, "gpu": gpus},
    )
    if spec.objective:
        # Size objectives (params) exist only in a trial's final result, not in its per-epoch ones,
        # which Tune would otherwise reject for lacking them; the searcher reads only the final one.
        os.environ["TUNE_DISABLE_STRICT_METRIC_CHECKING"] = "1"
    path = str(spec.sweep_dir)
    # Registered before a restore unpickles the saved RunConfig, which then reaches this driver's
    # callbacks (the tracking URI may have moved) and verbosity through the sweep's name.
    driver_callbacks, verbose = register_driver_callbacks(spec.name, callbacks=[closer, *callbacks], verbose=verbose)
    if resume and tune_state_saved(path):
        print(f"scenesweep: resuming {spec.name}: {restored_search(spec)}")
        return tune.Tuner.restore(path, trainable=trainable, resume_errored=True)
    if resume:
        print(f"scenesweep: resuming {spec.name}: no Tune state was saved yet; starting its search over")

    sampler = make_sampler(
        chosen_search(spec)[0], seed=spec.seed, samples=spec.samples, concurrent=spec.max_concurrent != 1
    )
    space = PinnedSpace(family.space, spec.fixed) if spec.fixed else family.suggest
    # The paper's configuration first (--samples 1 runs it alone), then the space's other starts.
    starts = [{**config, **spec.fixed} for config in family.start_configs(gpu=gpus > 0)]
    # The study lives in real Optuna storage named after the sweep (sweep/study.py): Tune's pickled
    # searcher holds only a handle on it, so resume, optuna.load_study and the dashboard share it.
    storage = study_storage(spec)
    objectives = objective_metrics(spec.objective, family) or [(family.metric, family.mode)]
    metrics, modes = [m for m, _ in objectives], [mode for _, mode in objectives]
    study = new_study(spec, modes, storage, metric_names=metrics)
    if resume:  # a driver killed before Tune's first snapshot: its trials in flight are lost
        start_over(study)
    if warm := seed_study(spec, study):
        print(f"scenesweep: {warm}")
        MlflowClient(closer.target.uri).set_tag(closer.target.parent_run_id, TAG_WARM_START, warm)
    chosen = [*({**config, **spec.fixed} for config in spec.enqueue), *starts]
    if spec.samples:  # none left waiting in the study that the sweep will never run
        chosen = chosen[: spec.samples]
    searcher = SweepSearch(
        space=space,
        metric=metrics if spec.objective else family.metric,  # a list: multi-objective (FIFO only)
        mode=modes if spec.objective else family.mode,
        sampler=sampler,
        points_to_evaluate=chosen,
        study_name=spec.name,
        storage=storage,
        samples=spec.samples,
    )
    scheduler_name = pick_scheduler(spec.scheduler, per_epoch=family.per_epoch, multi_objective=bool(spec.objective))
    scheduler = make_scheduler(scheduler_name, metric=family.metric, mode=family.mode, epochs=spec.epochs)
    if get_scheduler(scheduler_name).spares_chosen:
        scheduler = ChosenRunTheirCourse(scheduler, searcher=searcher, max_t=spec.epochs)
    return tune.Tuner(
        trainable,
        tune_config=tune.TuneConfig(
            search_alg=searcher,
            scheduler=scheduler,
            num_samples=-1,  # the searcher counts --samples against the study (sweep/searcher.py)
            time_budget_s=spec.budget,
            max_concurrent_trials=spec.max_concurrent or None,
            # A trial then starts in a warm worker (torch, MLflow, OpenCV already imported) instead of
            # a fresh process: seconds per trial on a small box (benchmarks/overhead.py).
            reuse_actors=True,
            trial_name_creator=TrialNamer(family.name),
            trial_dirname_creator=TrialNamer(family.name),
        ),
        run_config=tune.RunConfig(
            name=spec.name,
            storage_path=spec.storage,
            failure_config=tune.FailureConfig(max_failures=2),
            checkpoint_config=tune.CheckpointConfig(num_to_keep=2),
            callbacks=driver_callbacks,
            verbose=verbose,
            stop=reserve_stopper(spec, family, dataset),  # --budget keeps the refit's time (sweep/refit.py)
        ),
    )


def tune_state_saved(path: str) -> bool:
    """Tune has saved a snapshot to resume from. Its tuner.pkl comes first, the first snapshot
    (experiment_state-*.json) seconds later: a driver killed in between left nothing to restore."""
    from ray import tune

    return tune.Tuner.can_restore(path) and any(Path(path).glob("experiment_state-*.json"))


def restored_trials(path: str) -> dict[str, dict]:
    """The trials in a sweep's saved Tune state, id -> its last result (empty when none was saved)."""
    from ray.tune import ExperimentAnalysis

    if not tune_state_saved(path):
        return {}
    return {trial.trial_id: dict(trial.last_result or {}) for trial in ExperimentAnalysis(path).trials}


def restored_search(spec: SweepSpec) -> str:
    """What a resumed sweep's searcher continues from: the sweep's study in its Optuna storage."""
    from sweep.study import study_summary

    try:
        return study_summary(restored_study(spec))
    except KeyError:  # a sweep from before studies were persistent: Tune's pickle holds its study
        return "its search state as Tune saved it"


def restored_study(spec: SweepSpec):
    """The sweep's Optuna study, with the sampler its search uses."""
    from sweep.samplers import make_sampler
    from sweep.study import load_sweep_study

    return load_sweep_study(spec, sampler=make_sampler(chosen_search(spec)[0], seed=spec.seed, samples=spec.samples))


def chosen_search(spec: SweepSpec) -> tuple[str, str]:
    """The sampler the sweep runs, and why when --search auto picked it ("" when named). The pick is
    a function of the saved spec, so a resumed sweep picks the same."""
    from sweep.samplers import AUTO, pick_sampler, space_shape

    if spec.search != AUTO:
        return spec.search, ""
    family = spec.family_entry
    return pick_sampler(
        shape=space_shape(family.space, spec.fixed), samples=spec.samples, multi_objective=bool(spec.objective)
    )


class TrialNamer:
    """Trial names (and folders) read as FAMILY_ID; picklable so a restored sweep keeps them."""

    def __init__(self, family: str):
        self.family = family

    def __call__(self, trial) -> str:
        return f"{self.family}_{trial.trial_id}"
