"""The Ray Tune side of a sweep: Optuna searcher and sampler, scheduler, resources, resume."""

from __future__ import annotations

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
    import ray
    from ray import tune
    from ray.tune.schedulers import ASHAScheduler, FIFOScheduler
    from ray.tune.search.optuna import OptunaSearch

    from search_spaces import PinnedSpace
    from trainables.trial import TrialSettings, run_trial

    gpus = spec.gpus_per_trial
    if gpus is None:
        gpus = 1.0 if ray.cluster_resources().get("GPU", 0) > 0 else 0.0
    settings = TrialSettings(
        family=family,
        max_epochs=spec.epochs,
        seed=spec.seed,
        threads=max(1, int(spec.cpus_per_trial)),
        target=closer.target,
        options={"cache_dir": spec.data.cache_dir, **spec.options},
        time_limit=spec.trial_timeout,
        data_source=spec.data.source,
    )
    trainable = tune.with_resources(
        tune.with_parameters(run_trial, dataset=dataset, settings=settings),
        {"cpu": spec.cpus_per_trial, "gpu": gpus},
    )
    path = str(spec.sweep_dir)
    if resume and tune.Tuner.can_restore(path):
        print(f"scenesweep: resuming {spec.name}: {restored_search(path, family)}")
        tuner = tune.Tuner.restore(path, trainable=trainable, resume_errored=True)
        run_config = tuner._local_tuner.get_run_config()  # type: ignore[union-attr]
        run_config.callbacks = [closer, *callbacks]  # the tracking URI may have moved
        run_config.verbose = verbose
        return tuner
    if resume:
        print(f"scenesweep: resuming {spec.name}: no Tune state was saved yet; starting its search over")

    sampler = make_sampler(spec.search, seed=spec.seed, samples=spec.samples)
    space = PinnedSpace(family.space, spec.fixed) if spec.fixed else family.suggest
    first = {**family.default_config(gpu=gpus > 0), **spec.fixed}
    searcher = OptunaSearch(
        space=space, metric=family.metric, mode=family.mode, sampler=sampler, points_to_evaluate=[first]
    )
    scheduler_name = spec.scheduler if spec.scheduler != "auto" else ("asha" if family.per_epoch else "fifo")
    scheduler: FIFOScheduler
    if scheduler_name == "asha":
        scheduler = ASHAScheduler(
            metric=family.metric,
            mode=family.mode,
            max_t=spec.epochs,
            grace_period=min(spec.epochs, max(2, spec.epochs // 5)),
            reduction_factor=3,
        )
    else:
        scheduler = FIFOScheduler()
    return tune.Tuner(
        trainable,
        tune_config=tune.TuneConfig(
            search_alg=searcher,
            scheduler=scheduler,
            num_samples=spec.samples,
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
            callbacks=[closer, *callbacks],
            verbose=verbose,
        ),
    )


def restored_search(path: str, family: Family) -> str:
    """What a resumed sweep's searcher continues from (the Optuna study Tune saved with the sweep)."""
    study = restored_study(path, family)
    done = sum(t.state.is_finished() for t in study.trials)
    return f"Optuna {type(study.sampler).__name__} restored with {done} finished of {len(study.trials)} trials"


def restored_study(path: str, family: Family):
    """The Optuna study in a sweep's saved searcher state."""
    from ray.tune.search.optuna import OptunaSearch

    searcher = OptunaSearch(metric=family.metric, mode=family.mode)
    searcher.restore_from_dir(path)
    return searcher._ot_study  # no public accessor; the study is what TPE learns from


def make_sampler(search: str, *, seed: int, samples: int):
    """The Optuna sampler of `--search` (also what benchmarks/overhead.py's plain loop uses)."""
    import warnings

    import optuna

    warnings.filterwarnings("ignore", category=optuna.exceptions.ExperimentalWarning)
    if search == "tpe":
        return optuna.samplers.TPESampler(
            seed=seed, multivariate=True, group=True, n_startup_trials=max(3, min(10, samples // 3))
        )
    return optuna.samplers.RandomSampler(seed=seed)


class TrialNamer:
    """Trial names (and folders) read as FAMILY_ID; picklable so a restored sweep keeps them."""

    def __init__(self, family: str):
        self.family = family

    def __call__(self, trial) -> str:
        return f"{self.family}_{trial.trial_id}"
