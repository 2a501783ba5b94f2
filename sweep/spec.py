"""What a sweep is: `SweepSpec`, built from the CLI's flags, checked before anything starts, and
saved beside Tune's state (`scenesweep.json`) so `resume` continues the same sweep."""

from __future__ import annotations

import json
import math
import os
import re
import time
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

from sweep.errors import UsageError
from sweep.samplers import DEFAULT_SEARCH
from tracking.uris import masked, without_credentials
from trainables.core.data import DEMO, DataSpec
from trainables.families import Family, all_options, get_family

SPEC_FILE = "scenesweep.json"
_NAME_MAX = 100
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")


@dataclass(frozen=True)
class SweepSpec:
    family: str
    data: DataSpec
    name: str
    samples: int = 20  # 0: no limit (only with a budget)
    epochs: int = 30
    search: str = DEFAULT_SEARCH  # a name in sweep.samplers.SAMPLERS, or auto
    scheduler: str = "auto"  # a name in sweep.schedulers.SCHEDULERS, or auto: asha for per-epoch families
    max_concurrent: int = 0  # 0: as many as the resources allow
    cpus_per_trial: float = 1.0
    gpus_per_trial: float | None = None  # None: 1 when the cluster has GPUs, else 0
    address: str | None = None
    tracking_uri: str = ""
    experiment: str = ""
    seed: int = 0
    storage: str = "sweeps"
    fixed: dict = field(default_factory=dict)  # parameters pinned with --fix
    options: dict = field(default_factory=dict)  # the family's flags (not searched), handed to every trial
    trial_timeout: float | None = None  # seconds; a trial stops training at the next epoch end after it
    study_storage: str = ""  # Optuna RDB URL of the sweep's study; "" = optuna.journal in the sweep folder
    chance_stop: bool = True  # stop trials still at chance level after their first epochs
    budget: float | None = None  # seconds of wall time for the whole sweep (--budget)
    warm_start: list = field(default_factory=list)  # earlier sweeps whose trials seed the study
    enqueue: list = field(default_factory=list)  # the user's configurations, run first (--enqueue)
    objective: list = field(default_factory=list)  # ["accuracy", "params"]: a Pareto search; []: accuracy
    refit: bool = True  # retrain the best configuration on train+val after the search (sweep/refit.py)

    def resume_command(self) -> str:
        """How to continue this sweep: `scenesweep resume NAME`, with --storage where it is not the default."""
        storage = f" --storage {self.storage}" if Path(self.storage) != Path("sweeps").resolve() else ""
        return f"scenesweep resume {self.name}{storage}"

    @property
    def sweep_dir(self) -> Path:
        return Path(self.storage) / self.name

    @property
    def family_entry(self) -> Family:
        return get_family(self.family)

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, raw: dict) -> SweepSpec:
        return cls(**{**raw, "data": DataSpec(**raw["data"])})

    def save(self) -> None:
        self.sweep_dir.mkdir(parents=True, exist_ok=True)
        stored = {**self.to_dict(), "tracking_uri": without_credentials(self.tracking_uri)}
        if self.address:
            stored["address"] = without_credentials(self.address)
        (self.sweep_dir / SPEC_FILE).write_text(json.dumps(stored, indent=2))

    def tracking_params(self) -> dict:
        """The spec as the parent run's params: no address (it may embed credentials), and the
        tracking URI without credentials."""
        params = self.to_dict()
        params.pop("address", None)
        params["tracking_uri"] = without_credentials(self.tracking_uri)
        return params


def spec_from_args(args) -> SweepSpec:
    """The `sweep` subcommand's flags -> a checked SweepSpec."""
    from search_spaces import parse_pins
    from sweep.enqueue import read_enqueue
    from sweep.pareto import parse_objective

    family = get_family(args.space)
    try:
        fixed = parse_pins(family.space, args.fix)
    except ValueError as exc:
        raise UsageError(str(exc)) from None
    name = args.name or f"{family.name}-{time.strftime('%Y%m%d-%H%M%S')}"
    storage = str(Path(args.storage).resolve())
    data_source = args.data if args.data == DEMO else str(Path(args.data).expanduser().resolve())
    spec = SweepSpec(
        family=family.name,
        data=DataSpec(
            source=data_source,
            image_size=args.image_size,
            val_fraction=args.val_fraction,
            per_class=args.per_class,
            seed=args.seed,
            cache_dir=str(Path(args.cache_dir or Path(storage) / "cache").resolve()),
        ),
        name=name,
        samples=args.samples if args.samples is not None else (0 if args.budget else 20),
        epochs=args.epochs,
        search=args.search,
        scheduler=args.scheduler,
        max_concurrent=args.max_concurrent,
        cpus_per_trial=args.cpus_per_trial,
        gpus_per_trial=args.gpus_per_trial,
        address=args.address or None,
        tracking_uri=tracking_uri(args.tracking_uri),
        experiment=args.experiment or f"scenesweep-{family.name}",
        seed=args.seed,
        storage=storage,
        fixed=fixed,
        trial_timeout=args.trial_timeout,
        study_storage=args.study_storage or "",
        chance_stop=not args.no_chance_stop,
        budget=parse_duration(args.budget, flag="--budget") if args.budget is not None else None,
        options=family_options(family, {option.dest: getattr(args, option.dest, None) for option in all_options()}),
        warm_start=[n.strip() for n in (args.warm_start or "").split(",") if n.strip()],
        enqueue=read_enqueue(args.enqueue, space=family.space) if args.enqueue else [],
        objective=parse_objective(args.objective) if args.objective else [],
        refit=args.refit,
    )
    return validate(spec)


def family_options(family: Family, given: dict[str, Any]) -> dict:
    """The family's flags as given (or their defaults); a flag of another family is a usage error."""
    options = {}
    for option in all_options():
        value = given.get(option.dest)
        if option not in family.options:
            if value is not None:
                owners = [f.name for f in _families_with(option.flag)]
                raise UsageError(f"{option.flag} applies to --space {' or '.join(owners)}, not {family.name}; drop it")
            continue
        value = option.default if value is None else value
        if value is not None:
            options[option.dest] = value
    return options


def _families_with(flag: str) -> list[Family]:
    from trainables.families import FAMILIES

    return [f for f in FAMILIES.values() if any(o.flag == flag for o in f.options)]


def saved_spec(storage: str | Path, name: str) -> dict | None:
    """What sweep `name` saved in `storage` (its scenesweep.json, as written), or None when it saved
    nothing there (or the file cannot be read)."""
    try:
        saved = json.loads((Path(storage) / name / SPEC_FILE).read_text())
    except (OSError, ValueError):
        return None
    return saved if isinstance(saved, dict) else None


def load_spec(storage: str, name: str, *, address: str | None, uri: str | None, refit: bool | None = None) -> SweepSpec:
    """The saved spec of sweep `name`, with the cluster flags `resume` was given over it (and
    --refit/--no-refit when given; else the saved choice)."""
    root = Path(storage).resolve()
    saved = saved_spec(root, name)
    if saved is None:
        raise UsageError(f"no sweep named {name!r} in {root}; pass the --storage it was started with")
    spec = SweepSpec.from_dict(saved)
    spec = replace(
        spec,
        storage=str(root),
        address=address or os.environ.get("RAY_ADDRESS") or spec.address,
        tracking_uri=tracking_uri(uri) if uri else spec.tracking_uri,
        refit=spec.refit if refit is None else refit,
    )
    return validate(spec)


def validate(spec: SweepSpec) -> SweepSpec:
    """Every check that needs no Ray and no tracking server; returns the spec with the family's
    options in canonical form (an inception weights file as an absolute path, say)."""
    if len(spec.name) > _NAME_MAX:
        raise UsageError(f"--name is {len(spec.name)} characters long; a sweep name has at most {_NAME_MAX}")
    if not _NAME.match(spec.name):
        raise UsageError(
            f"--name {spec.name!r} is not a valid sweep name; use letters, digits, '.', '_' and '-', "
            "starting with a letter or digit"
        )
    if not 0 <= spec.seed < 2**32:  # numpy's and Optuna's samplers take seeds in [0, 2**32)
        raise UsageError(f"--seed {spec.seed} must be a whole number from 0 to {2**32 - 1}")
    if Path(spec.storage).exists() and not Path(spec.storage).is_dir():
        raise UsageError(f"--storage {spec.storage} is a file; name a folder for the sweeps' state (default ./sweeps)")
    for point in spec.enqueue:
        if clash := sorted(k for k in point if k in spec.fixed and point[k] != spec.fixed[k]):
            key = clash[0]
            raise UsageError(
                f"--enqueue sets {key}={point[key]!r} but --fix pins {key}={spec.fixed[key]!r}; "
                f"drop {key} from the enqueued configuration or the --fix"
            )
    # With a budget, --samples 0 means no limit: trials until the budget runs out.
    for flag, value, low in (("--samples", spec.samples, 0 if spec.budget else 1), ("--epochs", spec.epochs, 1)):
        if value < low:
            raise UsageError(f"{flag} {value} must be at least {low}")
    if spec.trial_timeout is not None and not (math.isfinite(spec.trial_timeout) and spec.trial_timeout > 0):
        raise UsageError(f"--trial-timeout {spec.trial_timeout:g} must be a positive number of seconds")
    if spec.max_concurrent < 0:
        raise UsageError(f"--max-concurrent {spec.max_concurrent} must be 0 (no limit) or more")
    if spec.cpus_per_trial <= 0:
        raise UsageError(f"--cpus-per-trial {spec.cpus_per_trial:g} must be more than 0")
    if spec.gpus_per_trial is not None and spec.gpus_per_trial < 0:
        raise UsageError(
            f"--gpus-per-trial {spec.gpus_per_trial:g} must be 0 or more (fractions like 0.25 share a GPU)"
        )
    if spec.gpus_per_trial is not None and spec.gpus_per_trial > 1 and spec.gpus_per_trial != int(spec.gpus_per_trial):
        raise UsageError(f"--gpus-per-trial {spec.gpus_per_trial:g}: above 1 it must be a whole number")
    if why := search_unsupported(spec):
        raise UsageError(why)
    if spec.objective and spec.warm_start:
        raise UsageError("--warm-start seeds single-objective searches only; drop it or --objective")
    if spec.study_storage:
        from sqlalchemy.engine import make_url
        from sqlalchemy.exc import ArgumentError

        try:
            make_url(spec.study_storage)
        except ArgumentError:
            raise UsageError(
                f"--study-storage {spec.study_storage!r} is not an Optuna RDB URL; "
                "write it like postgresql://USER@HOST/DB or sqlite:///optuna.db"
            ) from None
    options = dict(spec.options)
    for option in spec.family_entry.options:
        try:
            options[option.dest] = option.resolve(options.get(option.dest))
        except ValueError as exc:
            raise UsageError(str(exc)) from None
    from tracking.uris import is_local_store

    if spec.address and is_local_store(spec.tracking_uri) and not is_local_address(spec.address):
        raise UsageError(
            f"a Ray cluster at {masked(spec.address)} cannot write to the local store {masked(spec.tracking_uri)}; "
            "start an MLflow server and pass --tracking-uri http://HOST:PORT (see docker-compose.yml)"
        )
    return replace(spec, options={k: v for k, v in options.items() if v is not None})


def search_unsupported(spec: SweepSpec) -> str | None:
    """Why the sweep's --search or --scheduler cannot run it (one line naming what can), or None.
    Read from the tables (sweep/samplers.py, sweep/schedulers.py); a sampler that cannot take
    every space has the family's space, with the --fix pins, asked through Optuna."""
    from sweep import samplers, schedulers

    if spec.search not in samplers.search_choices():
        return f"--search {spec.search!r} is not a sampler; choose one of {', '.join(samplers.search_choices())}"
    if spec.scheduler not in schedulers.scheduler_choices():
        return (
            f"--scheduler {spec.scheduler!r} is not a scheduler; "
            f"choose one of {', '.join(schedulers.scheduler_choices())}"
        )
    family = spec.family_entry
    why = schedulers.unsupported(
        spec.scheduler, family=family.name, per_epoch=family.per_epoch, objective=spec.objective
    )
    if why or spec.search == samplers.AUTO:
        return why
    shape = samplers.space_shape(family.space, spec.fixed) if samplers.needs_shape(spec.search) else None
    return samplers.unsupported(
        spec.search, shape=shape, multi_objective=bool(spec.objective), concurrent=spec.max_concurrent != 1
    )


_DURATION = re.compile(r"^\s*(\d+(?:\.\d*)?)\s*([smh]?)\s*$", re.IGNORECASE)
_UNIT_SECONDS = {"": 1, "s": 1, "m": 60, "h": 3600}


def parse_duration(text: str, *, flag: str) -> float:
    """'90s', '30m', '2h' (or plain seconds) -> seconds; UsageError for anything else or zero."""
    match = _DURATION.match(text)
    if not match:
        raise UsageError(f"{flag} {text!r} is not a duration; write it like 90s, 30m or 2h")
    seconds = float(match.group(1)) * _UNIT_SECONDS[match.group(2).lower()]
    if seconds <= 0:
        raise UsageError(f"{flag} {text!r} must be more than zero (e.g. 30m)")
    return seconds


def is_local_address(address: str) -> bool:
    host = address.split("://")[-1].split(":")[0]
    return host in ("", "auto", "local", "localhost", "127.0.0.1")


def sweep_tracking_uri(sweep: str, uri: str | None, *, storage: str = "sweeps") -> str:
    """--tracking-uri; else, beside the sweep's storage, the URI it was run with (its saved spec); else
    the default (tracking_uri)."""
    if uri:
        return tracking_uri(uri)
    saved = (saved_spec(storage, sweep) or {}).get("tracking_uri")
    return saved or tracking_uri(None)


def tracking_flag(uri: str) -> str:
    """` --tracking-uri URI` where a pasted command could look in another store (a non-default URI,
    or one that came from $MLFLOW_TRACKING_URI, which another shell may lack); else ""."""
    default = tracking_uri(None) if "MLFLOW_TRACKING_URI" not in os.environ else None
    return "" if uri == default else f" --tracking-uri {without_credentials(uri)}"


def tracking_uri(uri: str | None) -> str:
    from tracking.uris import resolve_tracking_uri

    return resolve_tracking_uri(uri)
