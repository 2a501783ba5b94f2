"""scenesweep's command line: sweep, resume, status, best, promote, predict, serve, explain, ui.

It wires the parts and nothing more: flags -> SweepSpec -> checks (tracking,
data) -> parent run -> Ray Tune (Optuna search, ASHA/FIFO, resources) ->
summary read back from MLflow. Training lives in trainables/, MLflow in
tracking/, search spaces in search_spaces/.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
import time
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

# Quiet, offline-friendly defaults; set before mlflow/ray are imported anywhere.
os.environ.setdefault("RAY_AUTH_MODE", "disabled")
os.environ.setdefault("MLFLOW_LOGGING_LEVEL", "WARNING")
os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
os.environ.setdefault("MLFLOW_SERVER_ENABLE_JOB_EXECUTION", "false")
os.environ.setdefault("RAY_DEDUP_LOGS", "1")
os.environ.setdefault("PYTHONWARNINGS", "ignore::DeprecationWarning,ignore::FutureWarning")
os.environ.setdefault("TUNE_WARN_EXCESSIVE_EXPERIMENT_CHECKPOINT_SYNC_THRESHOLD_S", "0")
# A tracking-server outage is ridden out: each MLflow HTTP call retries with exponential backoff
# (0, 4, 8, ... capped at 120 s; about 4 minutes in all), then fails the trial, which Tune retries.
os.environ.setdefault("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "7")
os.environ.setdefault("MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR", "2")
os.environ.setdefault("MLFLOW_HTTP_REQUEST_TIMEOUT", "120")

from trainables.data import DEMO, DataError, DataSpec, default_cache_dir  # noqa: E402
from trainables.options import COMPILE_MODES, PRECISIONS  # noqa: E402
from trainables.families import FAMILIES, Family, get_family  # noqa: E402

SPEC_FILE = "scenesweep.json"
EXIT_USAGE = 2
EXIT_INTERRUPTED = 130
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$")


class UsageError(Exception):
    """Bad input: printed as one line, exit code 2."""


@dataclass(frozen=True)
class SweepSpec:
    family: str
    data: DataSpec
    name: str
    samples: int = 20
    epochs: int = 30
    search: str = "tpe"
    scheduler: str = "auto"  # asha for per-epoch families, fifo otherwise
    max_concurrent: int = 0  # 0: as many as the resources allow
    cpus_per_trial: float = 1.0
    gpus_per_trial: float | None = None  # None: 1 when the cluster has GPUs, else 0
    address: str | None = None
    tracking_uri: str = ""
    experiment: str = ""
    seed: int = 0
    storage: str = "sweeps"
    fixed: dict = field(default_factory=dict)  # parameters pinned with --fix
    options: dict = field(default_factory=dict)  # family flags that are not searched, handed to every trial
    trial_timeout: float | None = None  # seconds; a trial stops training at the next epoch end after it

    @property
    def sweep_dir(self) -> Path:
        return Path(self.storage) / self.name

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, raw: dict) -> "SweepSpec":
        return cls(**{**raw, "data": DataSpec(**raw["data"])})


# --- command line ----------------------------------------------------------------------


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="scenesweep", description="Hyperparameter sweeps for scene classification "
                                     "on Ray Tune + Optuna, every trial tracked in MLflow.")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    sweep = commands.add_parser("sweep", help="run a hyperparameter sweep")
    sweep.add_argument("--space", default="tinynet", choices=sorted(FAMILIES), help="model family to search")
    sweep.add_argument("--data", default=DEMO, help="'demo' (built-in, offline) or a folder: MIT_split "
                       "(train/<class>/, test/<class>/) or one folder per class")
    sweep.add_argument("--samples", type=int, default=20, help="number of trials (default 20; 1 runs the paper's config)")
    sweep.add_argument("--epochs", type=int, default=30, help="maximum epochs per trial (default 30)")
    sweep.add_argument("--search", choices=["tpe", "random"], default="tpe", help="Optuna sampler (default tpe)")
    sweep.add_argument("--scheduler", choices=["auto", "asha", "fifo"], default="auto",
                       help="trial scheduler; auto = ASHA for per-epoch families, FIFO otherwise")
    sweep.add_argument("--max-concurrent", type=int, default=0, help="most trials at once (default: as resources allow)")
    sweep.add_argument("--cpus-per-trial", type=float, default=1.0, help="CPUs (and threads) per trial (default 1)")
    sweep.add_argument("--gpus-per-trial", type=float, default=None,
                       help="GPUs per trial, fractions allowed (default: 1 if the cluster has GPUs, else 0)")
    sweep.add_argument("--name", default=None, help="sweep name (default: FAMILY-YYYYmmdd-HHMMSS)")
    sweep.add_argument("--experiment", default=None, help="MLflow experiment (default: scenesweep-FAMILY)")
    sweep.add_argument("--seed", type=int, default=0, help="seed for splits, sampler and training (default 0)")
    sweep.add_argument("--val-fraction", type=float, default=0.15, help="validation share of train (default 0.15)")
    sweep.add_argument("--per-class", type=int, default=None, help="train on N images per class (tiny-data setting)")
    sweep.add_argument("--image-size", type=int, default=64, help="decode images to this square size (default 64)")
    sweep.add_argument("--cache-dir", default=None, help="decoded-data cache (default: STORAGE/cache)")
    sweep.add_argument("--trial-timeout", type=float, default=None, metavar="SECONDS",
                       help="stop a trial's training at the first epoch end past this many seconds, then "
                            "evaluate it as usual (default: no limit)")
    sweep.add_argument("--cv-folds", type=int, default=None, metavar="K",
                       help="cross-validation folds for families scored by CV (bovw; default 8, as in the paper)")
    sweep.add_argument("--fix", action="append", default=[], metavar="KEY=VALUE",
                       help="pin a search-space parameter (repeatable), e.g. --fix input_size=64")
    sweep.add_argument("--weights", default=None, metavar="imagenet|none|PATH",
                       help="inception: starting weights: imagenet (torchvision's IMAGENET1K_V1 from its cache, "
                       "$TORCH_HOME; never downloaded), none (random init) or a state-dict file (default imagenet)")
    sweep.add_argument("--precision", choices=PRECISIONS, default="auto",
                       help="training arithmetic for neural families (default auto: bf16 on GPUs that have it, "
                       "fp16 on older GPUs, fp32 on CPUs; bf16 on a CPU is faster but can give NaN gradients)")
    sweep.add_argument("--compile", nargs="?", const="default", default=None, choices=COMPILE_MODES,
                       metavar="MODE", help="torch.compile each trial's network (MODE: default, reduce-overhead, "
                       "max-autotune); pays only for long trials, see README Performance")
    _add_cluster_flags(sweep)
    sweep.set_defaults(handler=cmd_sweep)

    resume = commands.add_parser("resume", help="finish an interrupted sweep, searcher state included")
    resume.add_argument("sweep", help="sweep name")
    _add_cluster_flags(resume, defaults=False)
    resume.set_defaults(handler=cmd_resume)

    status = commands.add_parser("status", help="a sweep's trials, from MLflow")
    status.add_argument("sweep", help="sweep name")
    status.add_argument("--tracking-uri", default=None)
    status.set_defaults(handler=cmd_status)

    best = commands.add_parser("best", help="a sweep's best trial(s), from MLflow")
    best.add_argument("sweep", help="sweep name")
    best.add_argument("--metric", default=None, help="rank by this metric (default: the family's validation metric)")
    best.add_argument("--top", type=int, default=1, help="how many trials to show (default 1)")
    best.add_argument("--params", default=None, metavar="KEY,...",
                      help="param columns to show (default: the first 8 the search varied)")
    best.add_argument("--tracking-uri", default=None)
    best.set_defaults(handler=cmd_best)

    promote = commands.add_parser("promote", help="register a sweep's best trial in the MLflow model registry")
    promote.add_argument("sweep", help="sweep name")
    promote.add_argument("--metric", default=None,
                         help="select by this validation/CV metric (default: the family's; never a test metric)")
    promote.add_argument("--model-name", default=None, help="registered model name (default: scenesweep-FAMILY)")
    promote.add_argument("--alias", default="champion", help="alias to point at the new version (default champion)")
    promote.add_argument("--force", action="store_true",
                         help="move the alias even when its current version is better on the same data")
    promote.add_argument("--tracking-uri", default=None)
    promote.set_defaults(handler=cmd_promote)

    predict = commands.add_parser("predict", help="classify image files or folders with a registered model")
    predict.add_argument("paths", nargs="+", metavar="PATH", help="image files or folders (searched recursively)")
    predict.add_argument("--model", required=True, help="models:/NAME@champion, models:/NAME/VERSION, "
                         "runs:/RUN_ID/model or a model folder")
    predict.add_argument("--top", type=int, default=1, help="print the K most likely classes (default 1)")
    predict.add_argument("--json", action="store_true", help="one JSON document instead of lines")
    predict.add_argument("--tracking-uri", default=None)
    predict.set_defaults(handler=cmd_predict)

    serve = commands.add_parser("serve", help="serve a model over HTTP (MLflow's scoring server)")
    serve.add_argument("--model", required=True, help="models:/NAME@champion or any model URI or folder")
    serve.add_argument("--host", default="127.0.0.1", help="bind address (default 127.0.0.1: this machine only)")
    serve.add_argument("--port", type=int, default=5001, help="port (default 5001)")
    serve.add_argument("--tracking-uri", default=None)
    serve.set_defaults(handler=cmd_serve)

    explain = commands.add_parser("explain", help="Grad-CAM heat map of a CNN model's prediction for one image")
    explain.add_argument("image", help="image file")
    explain.add_argument("--model", required=True, help="models:/NAME@champion or any model URI or folder")
    explain.add_argument("--out", required=True, help="where to write the heat map (PNG, the image's size)")
    explain.add_argument("--class", dest="target", default=None,
                         help="explain this class instead of the predicted one")
    explain.add_argument("--tracking-uri", default=None)
    explain.set_defaults(handler=cmd_explain)

    ui = commands.add_parser("ui", help="open the MLflow UI on the tracking store")
    ui.add_argument("--tracking-uri", default=None)
    ui.add_argument("--host", default="127.0.0.1", help="bind address (default 127.0.0.1: this machine only)")
    ui.add_argument("--port", type=int, default=5000)
    ui.set_defaults(handler=cmd_ui)
    return parser


def _add_cluster_flags(parser, *, defaults: bool = True) -> None:
    parser.add_argument("--address", default=None if not defaults else os.environ.get("RAY_ADDRESS"),
                        help="Ray cluster address (default $RAY_ADDRESS, else an embedded Ray)")
    parser.add_argument("--tracking-uri", default=None,
                        help="MLflow tracking URI (default $MLFLOW_TRACKING_URI, else sqlite:///mlruns.db)")
    parser.add_argument("--storage", default="sweeps", help="where Tune keeps sweep state (default ./sweeps)")


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    from tracking.runs import TrackingError

    try:
        return args.handler(args) or 0
    except (UsageError, DataError, TrackingError) as exc:
        print(f"scenesweep: error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        print("scenesweep: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    except BrokenPipeError:  # `predict DIR | head`: the reader has had enough, which is not an error
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0


# --- sweep / resume --------------------------------------------------------------------


def spec_from_args(args) -> SweepSpec:
    from search_spaces import parse_pins

    family = get_family(args.space)
    try:
        fixed = parse_pins(family.name, args.fix)
    except ValueError as exc:
        raise UsageError(str(exc)) from None
    name = args.name or f"{family.name}-{time.strftime('%Y%m%d-%H%M%S')}"
    storage = str(Path(args.storage).resolve())
    data_source = args.data if args.data == DEMO else str(Path(args.data).expanduser().resolve())
    spec = SweepSpec(
        family=family.name,
        data=DataSpec(source=data_source, image_size=args.image_size, val_fraction=args.val_fraction,
                      per_class=args.per_class, seed=args.seed,
                      cache_dir=str(Path(args.cache_dir or Path(storage) / "cache").resolve())),
        name=name,
        samples=args.samples,
        epochs=args.epochs,
        search=args.search,
        scheduler=args.scheduler,
        max_concurrent=args.max_concurrent,
        cpus_per_trial=args.cpus_per_trial,
        gpus_per_trial=args.gpus_per_trial,
        address=args.address or None,
        tracking_uri=_tracking_uri(args.tracking_uri),
        experiment=args.experiment or f"scenesweep-{family.name}",
        seed=args.seed,
        storage=storage,
        fixed=fixed,
        trial_timeout=args.trial_timeout,
        options=family_options(family.name, args),
    )
    validate(spec)
    return spec


def family_options(family: str, args) -> dict:
    """The family's non-searched flags, for SweepSpec.options (every trial gets them)."""
    options = {}
    if args.cv_folds is not None:
        if family != "bovw":
            raise UsageError(f"--cv-folds applies to --space bovw, not {family}; drop it")
        options["cv_folds"] = args.cv_folds
    if family == "inception":
        from trainables.inception import canonical_weights

        options["weights"] = canonical_weights(args.weights or "imagenet")
    elif args.weights is not None:
        raise UsageError(f"--weights applies to --space inception, not {family}; drop it")
    return options


def validate(spec: SweepSpec) -> None:
    if not _NAME.match(spec.name):
        raise UsageError(f"--name {spec.name!r} is not a valid sweep name; use letters, digits, '.', '_' and '-'")
    if spec.samples < 1:
        raise UsageError(f"--samples {spec.samples} must be at least 1")
    if spec.epochs < 1:
        raise UsageError(f"--epochs {spec.epochs} must be at least 1")
    if spec.trial_timeout is not None and spec.trial_timeout <= 0:
        raise UsageError(f"--trial-timeout {spec.trial_timeout:g} must be a positive number of seconds")
    if spec.max_concurrent < 0:
        raise UsageError(f"--max-concurrent {spec.max_concurrent} must be 0 (no limit) or more")
    if spec.options.get("cv_folds") is not None and spec.options["cv_folds"] < 2:
        raise UsageError(f"--cv-folds {spec.options['cv_folds']} must be at least 2")
    if spec.cpus_per_trial <= 0:
        raise UsageError(f"--cpus-per-trial {spec.cpus_per_trial:g} must be more than 0")
    if spec.gpus_per_trial is not None and spec.gpus_per_trial < 0:
        raise UsageError(f"--gpus-per-trial {spec.gpus_per_trial:g} must be 0 or more (fractions like 0.25 share a GPU)")
    if spec.gpus_per_trial is not None and spec.gpus_per_trial > 1 and spec.gpus_per_trial != int(spec.gpus_per_trial):
        raise UsageError(f"--gpus-per-trial {spec.gpus_per_trial:g}: above 1 it must be a whole number")
    if "weights" in spec.options:  # before anything starts: offline, a missing file must stop the sweep here
        from trainables.inception import WeightsError, read_weights

        try:
            read_weights(spec.options["weights"])
        except WeightsError as exc:
            raise UsageError(str(exc)) from None
    from tracking.runs import is_local_store

    if spec.address and is_local_store(spec.tracking_uri) and not _is_local_address(spec.address):
        raise UsageError(
            f"a Ray cluster at {spec.address} cannot write to the local store {spec.tracking_uri}; "
            "start an MLflow server and pass --tracking-uri http://HOST:PORT (see docker-compose.yml)"
        )


def _is_local_address(address: str) -> bool:
    host = address.split("://")[-1].split(":")[0]
    return host in ("", "auto", "local", "localhost", "127.0.0.1")


def _tracking_uri(uri: str | None) -> str:
    from tracking.runs import resolve_tracking_uri

    return resolve_tracking_uri(uri)


def cmd_sweep(args) -> int:
    spec = spec_from_args(args)
    if (spec.sweep_dir / SPEC_FILE).exists():
        raise UsageError(f"sweep {spec.name!r} already exists in {spec.storage}; "
                         f"continue it with `scenesweep resume {spec.name}` or pick another --name")
    return run_sweep(spec, resume=False)


def cmd_resume(args) -> int:
    storage = Path(args.storage).resolve()
    spec_file = storage / args.sweep / SPEC_FILE
    if not spec_file.exists():
        raise UsageError(f"no sweep named {args.sweep!r} in {storage}; pass the --storage it was started with")
    spec = SweepSpec.from_dict(json.loads(spec_file.read_text()))
    spec = replace(
        spec,
        storage=str(storage),
        address=args.address or os.environ.get("RAY_ADDRESS") or spec.address,
        tracking_uri=_tracking_uri(args.tracking_uri) if args.tracking_uri else spec.tracking_uri,
    )
    validate(spec)
    return run_sweep(spec, resume=True)


def run_sweep(spec: SweepSpec, *, resume: bool) -> int:
    from mlflow.tracking import MlflowClient

    from tracking.callback import TrialRunCloser
    from tracking.runs import check_tracking, get_or_create_experiment, start_sweep_run
    from trainables.data import load_dataset

    family = get_family(spec.family)
    check_tracking(spec.tracking_uri)
    dataset = load_dataset(spec.data)
    print(f"scenesweep: {spec.name}: {family.name} on {spec.data.source} ({dataset.summary()})")
    client = MlflowClient(spec.tracking_uri)
    experiment_id = get_or_create_experiment(client, spec.experiment, spec.tracking_uri)
    target = start_sweep_run(client, uri=spec.tracking_uri, experiment_id=experiment_id, sweep=spec.name,
                             family=family.name, search=spec.search,
                             params={**_spec_params(spec), "data_fingerprint": dataset.fingerprint})
    spec.sweep_dir.mkdir(parents=True, exist_ok=True)
    (spec.sweep_dir / SPEC_FILE).write_text(json.dumps(spec.to_dict(), indent=2))

    _connect_ray(spec)
    _hide_tune_resume_hint()
    closer = TrialRunCloser(target)
    try:
        tuner = _build_tuner(spec, family, dataset, closer, resume=resume)
        tuner.fit()  # Ctrl-C: Tune stops the trials, saves its state and returns
        interrupted = closer.interrupted
    except KeyboardInterrupt:  # a second Ctrl-C skips Tune's graceful stop
        interrupted = True
    if interrupted:
        closer.record_interruption()
    code = _finish(spec, family, client, target, interrupted=interrupted)
    if code == 0:
        _log_gradcam(spec, client, target, dataset)
    return code


def _hide_tune_resume_hint() -> None:
    """Tune's own 'Resume experiment with: Tuner.restore(...)' would mislead; _finish names the command."""
    import logging

    class Hide(logging.Filter):
        def filter(self, record):
            return "Resume experiment with" not in record.getMessage()

    logging.getLogger("ray.tune.tune").addFilter(Hide())


def _spec_params(spec: SweepSpec) -> dict:
    params = spec.to_dict()
    params.pop("address", None)  # may embed credentials (ray://user:pass@host)
    params["tracking_uri"] = _without_credentials(spec.tracking_uri)
    return params


def _without_credentials(uri: str) -> str:
    return re.sub(r"//[^/@]*@", "//", uri)


def _connect_ray(spec: SweepSpec) -> None:
    import logging

    import ray

    if ray.is_initialized():
        return
    if spec.address:
        modules = [__import__(name) for name in ("search_spaces", "trainables", "tracking")]
        ray.init(address=spec.address, logging_level=logging.WARNING,
                 runtime_env={"py_modules": modules, "env_vars": _forwarded_env()})
    else:
        ray.init(include_dashboard=False, logging_level=logging.WARNING, configure_logging=True)


def _forwarded_env() -> dict:
    """Credentials reach remote workers through their environment, never through params or tags."""
    names = ("MLFLOW_TRACKING_USERNAME", "MLFLOW_TRACKING_PASSWORD", "MLFLOW_TRACKING_TOKEN",
             "MLFLOW_S3_ENDPOINT_URL", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_DEFAULT_REGION",
             "MLFLOW_LOGGING_LEVEL", "MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "MLFLOW_HTTP_REQUEST_MAX_RETRIES",
             "MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR", "MLFLOW_HTTP_REQUEST_TIMEOUT")
    return {name: os.environ[name] for name in names if name in os.environ}


def _build_tuner(spec: SweepSpec, family: Family, dataset, closer, *, resume: bool):
    import ray
    from ray import tune
    from ray.tune.schedulers import ASHAScheduler, FIFOScheduler
    from ray.tune.search.optuna import OptunaSearch

    from search_spaces import PinnedSpace
    from trainables.trial import TrialSettings, run_trial

    gpus = spec.gpus_per_trial
    if gpus is None:
        gpus = 1.0 if ray.cluster_resources().get("GPU", 0) > 0 else 0.0
    settings = TrialSettings(family=family.name, max_epochs=spec.epochs, seed=spec.seed,
                             threads=max(1, int(spec.cpus_per_trial)), target=closer.target,
                             options={"cache_dir": spec.data.cache_dir, **spec.options},
                             time_limit=spec.trial_timeout)
    trainable = tune.with_resources(
        tune.with_parameters(run_trial, dataset=dataset, settings=settings),
        {"cpu": spec.cpus_per_trial, "gpu": gpus},
    )
    path = str(spec.sweep_dir)
    if resume and tune.Tuner.can_restore(path):
        print(f"scenesweep: resuming {spec.name}: {restored_search(path, family)}")
        tuner = tune.Tuner.restore(path, trainable=trainable, resume_errored=True)
        tuner._local_tuner.get_run_config().callbacks = [closer]  # the tracking URI may have moved
        return tuner
    if resume:
        print(f"scenesweep: resuming {spec.name}: no Tune state was saved yet; starting its search over")

    sampler = make_sampler(spec.search, seed=spec.seed, samples=spec.samples)
    space = PinnedSpace(family.name, spec.fixed) if spec.fixed else family.suggest
    searcher = OptunaSearch(space=space, metric=family.metric, mode=family.mode, sampler=sampler,
                            points_to_evaluate=[{**family.default_config, **spec.fixed}])
    scheduler_name = spec.scheduler if spec.scheduler != "auto" else ("asha" if family.per_epoch else "fifo")
    if scheduler_name == "asha":
        scheduler = ASHAScheduler(metric=family.metric, mode=family.mode, max_t=spec.epochs,
                                  grace_period=min(spec.epochs, max(2, spec.epochs // 5)), reduction_factor=3)
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
            callbacks=[closer],
            verbose=1,
        ),
    )


def restored_search(path: str, family: Family) -> str:
    """What a resumed sweep's searcher continues from (the Optuna study Tune saved with the sweep)."""
    from ray.tune.search.optuna import OptunaSearch

    searcher = OptunaSearch(metric=family.metric, mode=family.mode)
    searcher.restore_from_dir(path)
    study = searcher._ot_study  # no public accessor; the study is what TPE learns from
    done = sum(t.state.is_finished() for t in study.trials)
    return f"Optuna {type(study.sampler).__name__} restored with {done} finished of {len(study.trials)} trials"


def make_sampler(search: str, *, seed: int, samples: int):
    """The Optuna sampler of `--search` (also what benchmarks/overhead.py's plain loop uses)."""
    import warnings

    import optuna

    warnings.filterwarnings("ignore", category=optuna.exceptions.ExperimentalWarning)
    if search == "tpe":
        return optuna.samplers.TPESampler(seed=seed, multivariate=True, group=True,
                                          n_startup_trials=max(3, min(10, samples // 3)))
    return optuna.samplers.RandomSampler(seed=seed)


class TrialNamer:
    """Trial names (and folders) read as FAMILY_ID; picklable so a restored sweep keeps them."""

    def __init__(self, family: str):
        self.family = family

    def __call__(self, trial) -> str:
        return f"{self.family}_{trial.trial_id}"


def _finish(spec: SweepSpec, family: Family, client, target, *, interrupted: bool) -> int:
    from tracking.runs import close_open_trial_runs
    from tracking.summary import format_failures, format_table, record_sweep_result, summarise

    if interrupted:
        close_open_trial_runs(client, target, status="KILLED", reason="sweep interrupted")
    summary = summarise(client, target, metric=family.metric, mode=family.mode)
    close_open_trial_runs(client, target, status="KILLED", reason="sweep ended while the trial was open")
    status = "KILLED" if interrupted else ("FINISHED" if summary.finished else "FAILED")
    record_sweep_result(client, target, summary, status=status)
    counts = ", ".join(f"{v} {k.lower()}" for k, v in sorted(summary.counts().items()))
    print(f"\nscenesweep: sweep {spec.name}: {len(summary.rows)} trials ({counts})")
    if interrupted:
        print(f"scenesweep: interrupted; running trials were stopped and their runs marked KILLED; "
              f"continue with: scenesweep resume {spec.name}"
              + (f" --storage {spec.storage}" if Path(spec.storage) != Path("sweeps").resolve() else ""))
        return EXIT_INTERRUPTED
    best = summary.best
    if best is None:
        print("scenesweep: error: no trial finished; distinct errors:", file=sys.stderr)
        for error, count in summary.errors.most_common():
            print(f"  {count} x {error}", file=sys.stderr)
        return 1
    print(format_table(summary.ranked()[:5], metric=family.metric))
    if failures := format_failures(summary.rows):
        print(f"failed (see scenesweep.error on their runs):\n{failures}")
    print(f"\nBest trial {best.trial_id} (run {best.run_id}): {family.metric} {best.metrics[family.metric]:.4f}, "
          f"test_accuracy {best.metrics.get('test_accuracy', float('nan')):.4f}")
    print("config: " + json.dumps(best.config, sort_keys=True))
    print(f"model: {best.model_uri}")
    print(f"\nSee every trial in the MLflow UI: {_ui_hint(spec.tracking_uri)}")
    return 0


def _log_gradcam(spec: SweepSpec, client, target, dataset) -> None:
    """gradcam.png on the best trial (CNN families); the sweep is recorded already, so never fatal."""
    from tracking.explanations import GRADCAM_FILE, log_best_trial_gradcam

    try:
        run_id = log_best_trial_gradcam(client, target.parent_run_id, dataset, tracking_uri=spec.tracking_uri)
    except Exception as exc:  # noqa: BLE001
        print(f"scenesweep: warning: no {GRADCAM_FILE} for the best trial: {type(exc).__name__}: {exc}", file=sys.stderr)
        return
    if run_id:
        print(f"Grad-CAM of the best trial: {GRADCAM_FILE} in run {run_id}")


def _ui_hint(uri: str) -> str:
    from tracking.runs import is_local_store

    if not is_local_store(uri):
        return uri
    default = _tracking_uri(None) if "MLFLOW_TRACKING_URI" not in os.environ else None
    return "python orchestrator.py ui" + ("" if uri == default else f" --tracking-uri {uri}")


# --- reading sweeps back ----------------------------------------------------------------


def _load_summary(sweep: str, tracking_uri: str | None, metric: str | None = None):
    from mlflow.tracking import MlflowClient

    from tracking.runs import check_tracking, find_sweep_run, target_from_run
    from tracking.summary import metric_mode, summarise

    uri = _tracking_uri(tracking_uri)
    check_tracking(uri)
    client = MlflowClient(uri)
    run = find_sweep_run(client, sweep)
    if run is None:
        raise UsageError(f"no sweep named {sweep!r} in {uri}; list sweeps in the MLflow UI or pass --tracking-uri")
    target = target_from_run(run)
    family = get_family(target.family)
    metric = metric or family.metric
    mode = family.mode if metric == family.metric else metric_mode(metric, default=family.mode)
    return run, family, summarise(client, target, metric=metric, mode=mode)


def cmd_status(args) -> int:
    from tracking.summary import format_failures, format_table

    run, family, summary = _load_summary(args.sweep, args.tracking_uri)
    counts = ", ".join(f"{v} {k.lower()}" for k, v in sorted(summary.counts().items()))
    print(f"sweep {args.sweep} ({family.name}, run {run.info.run_id}, {run.info.status}): {len(summary.rows)} trials ({counts})")
    print(format_table(summary.rows, metric=family.metric))
    if failures := format_failures(summary.rows):
        print(f"failed:\n{failures}")
    if summary.best:
        print(f"best: {summary.best.trial_id} {family.metric} {summary.best.metrics[family.metric]:.4f}")
    return 0


def cmd_best(args) -> int:
    from search_spaces import parameter_distributions
    from tracking.summary import format_table, varying_params

    if args.top < 1:
        raise UsageError(f"--top {args.top} must be at least 1")
    _, family, summary = _load_summary(args.sweep, args.tracking_uri, args.metric)
    ranked = summary.ranked()
    if not ranked:
        raise UsageError(f"sweep {args.sweep!r} has no finished trial with metric {summary.metric!r}")
    if args.params:
        key_params = [name.strip() for name in args.params.split(",") if name.strip()]
    else:
        key_params = varying_params(summary.finished, order=parameter_distributions(family.name))
    print(format_table(ranked[: args.top], metric=summary.metric, also=(family.metric,), run_ids=True,
                       key_params=key_params))
    best = ranked[0]
    print(f"\nbest trial {best.trial_id} (run {best.run_id}) by {summary.metric}")
    print("config: " + json.dumps(best.config, sort_keys=True))
    print(f"model: {best.model_uri}")
    print(f"promote it: python orchestrator.py promote {args.sweep}"
          + (f" --metric {summary.metric}" if summary.metric != family.metric else ""))
    return 0


# --- the model registry workflow: promote, predict, serve, explain -------------------------


def cmd_promote(args) -> int:
    from tracking.registry import candidate_from, promote

    run, family, summary = _load_summary(args.sweep, args.tracking_uri, args.metric)
    best = summary.best
    if best is None:
        raise UsageError(f"sweep {args.sweep!r} has no finished trial with metric {summary.metric!r}; nothing to promote")
    candidate = candidate_from(best, sweep_run=run, metric=summary.metric, mode=summary.mode)
    name = args.model_name or f"scenesweep-{family.name}"
    result = promote(candidate, tracking_uri=_tracking_uri(args.tracking_uri), name=name, alias=args.alias,
                     force=args.force)
    how = "registered as" if result.created else "already registered as"
    print(f"trial {best.trial_id} (run {best.run_id}) of sweep {args.sweep}: {candidate.metric} {candidate.score:.4f}, "
          f"test_accuracy {best.metrics.get('test_accuracy', float('nan')):.4f}")
    print(f"{how} {name} version {result.version}; alias {result.alias} -> version {result.version}"
          + (f" (was version {result.previous})" if result.previous and result.previous != result.version else ""))
    if result.note:
        print(f"note: {result.note}")
    print(result.uri)
    return 0


def _load_model(uri: str, tracking_uri: str | None):
    from tracking.registry import load_model
    from tracking.runs import check_tracking

    tracking = _tracking_uri(tracking_uri)
    if uri.startswith(("models:/", "runs:/")):
        check_tracking(tracking)
    return load_model(uri, tracking_uri=tracking)


def cmd_predict(args) -> int:
    from trainables.predict import Failure, predict_files

    if args.top < 1:
        raise UsageError(f"--top {args.top} must be at least 1")
    model = _load_model(args.model, args.tracking_uri)
    predictions, failures = [], []
    for item in predict_files(model, args.paths, top=args.top):
        if isinstance(item, Failure):
            failures.append(item)
            print(f"scenesweep: error: {item.path}: {item.reason}; skipped", file=sys.stderr)
        elif args.json:
            predictions.append(item)
        else:
            print(item.line(), flush=True)
    if args.json:
        print(json.dumps({"model": args.model, "predictions": [p.as_dict() for p in predictions],
                          "errors": [f.as_dict() for f in failures]}, indent=2))
    return EXIT_USAGE if failures else 0


def cmd_serve(args) -> int:
    import socket

    from tracking.registry import serve

    with socket.socket() as probe:  # a taken port is a usage error, found before the model loads
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as uvicorn does
        try:
            probe.bind((args.host, args.port))
        except OSError as exc:
            raise UsageError(f"cannot listen on {args.host}:{args.port} ({exc.strerror}); pick another --port") from None
    model = _load_model(args.model, args.tracking_uri)
    url = f"http://{args.host}:{args.port}"
    body = """'{"dataframe_split": {"columns": ["image"], "data": [["'$(base64 -w0 IMAGE.jpg)'"]]}}'"""
    print(f"scenesweep: serving {args.model} at {url}/invocations (Ctrl-C to stop); try:\n"
          f"  curl -s {url}/invocations -H 'Content-Type: application/json' -d {body}", flush=True)
    try:
        serve(model, host=args.host, port=args.port)
    except KeyboardInterrupt:
        pass
    return 0


def cmd_explain(args) -> int:
    import cv2
    import numpy as np

    from tracking.registry import scene_classifier
    from trainables.gradcam import GradCamUnsupported, grad_cam, overlay
    from trainables.images import ImageDecodeError, decode_image, resize_square

    image_path, out = Path(args.image), Path(args.out)
    if not image_path.is_file():
        raise UsageError(f"image {image_path} does not exist; pass an image file")
    try:
        image = decode_image(image_path.read_bytes())
    except (OSError, ImageDecodeError) as exc:
        raise UsageError(f"cannot read image {image_path}: {exc}") from None
    if out.suffix.lower() not in (".png", ".jpg", ".jpeg"):
        raise UsageError(f"--out {out}: name a .png (or .jpg) file")
    if not out.parent.is_dir():
        raise UsageError(f"--out {out}: folder {out.parent} does not exist")
    classifier = scene_classifier(_load_model(args.model, args.tracking_uri))
    names = classifier.class_names
    if args.target is not None and args.target not in names:
        raise UsageError(f"--class {args.target!r} is not one of the model's classes: {', '.join(names)}")
    target = names.index(args.target) if args.target is not None else None
    try:
        cam = grad_cam(classifier, resize_square(image, classifier.image_size)[None], target=target)
    except GradCamUnsupported as exc:
        raise UsageError(f"cannot explain {args.model}: {exc}; Grad-CAM is for the CNN families") from None
    picture = overlay(image, cam.heatmaps[0])
    if not cv2.imwrite(str(out), np.ascontiguousarray(picture[:, :, ::-1])):
        raise UsageError(f"--out {out}: could not write the image there")
    predicted = int(cam.probabilities[0].argmax())
    explained = names[int(cam.targets[0])]
    print(f"{image_path}: predicted {names[predicted]} ({cam.probabilities[0, predicted]:.4f}); "
          f"Grad-CAM of {explained!r} written to {out} ({picture.shape[1]}x{picture.shape[0]})")
    return 0


def cmd_ui(args) -> int:
    import subprocess

    from tracking.runs import is_local_store

    uri = _tracking_uri(args.tracking_uri)
    if not is_local_store(uri):
        print(f"The tracking server serves its own UI: open {uri}")
        return 0
    command = [sys.executable, "-m", "mlflow", "ui", "--backend-store-uri", uri,
               "--host", args.host, "--port", str(args.port), "--workers", "1"]
    print(f"MLflow UI for {uri} at http://{args.host}:{args.port} (Ctrl-C to stop)", flush=True)
    try:
        return subprocess.call(command)
    except KeyboardInterrupt:
        return 0


if __name__ == "__main__":
    sys.exit(main())
