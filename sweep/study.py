"""A sweep's Optuna study: real Optuna storage named after the sweep, so resume continues it and
`optuna.load_study` (or optuna-dashboard) opens it from outside while the sweep runs.

By default a journal file, `<sweep folder>/optuna.journal` (the file name is a contract: the
dashboard command opens it); on a cluster an Optuna RDB URL (`--study-storage`, e.g. the compose
PostgreSQL), saved in the SweepSpec so resume and the other commands find the same study.
"""

from __future__ import annotations

import warnings
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import optuna

    from sweep.spec import SweepSpec

STUDY_FILE = "optuna.journal"
# Trial user attributes that set a study trial apart from the sweep's own searched trials.
WARM_START_ATTR = "warm_start_from"  # copied in from an earlier sweep (--warm-start); its value names it
ENQUEUED_ATTR = "scenesweep_enqueued"  # chosen before the search (--enqueue, the paper's, SEARCH_STARTS)
# Study user attribute: the numbers of trials asked for by a driver that died before Tune saved them,
# which never ran to an end. On the study, not the trial: Optuna sets a running trial's attributes
# only through its Trial handle, and a restored driver has none for a trial it never saw.
LOST_ATTR = "scenesweep_lost"


def study_storage(spec: SweepSpec) -> optuna.storages.BaseStorage:
    """The sweep's Optuna storage: its RDB URL when given, else the journal in its folder."""
    import optuna
    from optuna.storages.journal import JournalFileBackend, JournalStorage

    if spec.study_storage:
        from sweep.errors import UsageError
        from tracking.uris import without_credentials

        try:
            return optuna.storages.RDBStorage(spec.study_storage)
        except Exception as exc:  # noqa: BLE001 - bad URL, missing driver, server down: one line
            reason = str(exc).splitlines()[0][:300] if str(exc) else type(exc).__name__
            raise UsageError(
                f"--study-storage {without_credentials(spec.study_storage)}: cannot open it ({reason}); "
                "pass an Optuna RDB URL such as postgresql://USER@HOST/DB or sqlite:///optuna.db"
            ) from None
    spec.sweep_dir.mkdir(parents=True, exist_ok=True)
    return JournalStorage(JournalFileBackend(str(spec.sweep_dir / STUDY_FILE)))


def new_study(
    spec: SweepSpec, modes: list[str], storage: optuna.storages.BaseStorage, *, metric_names: list[str] | None = None
) -> optuna.Study:
    """The sweep's study, created (or loaded, on a resume) before Tune's searcher opens it, so the
    warm start can seed it first. One direction per objective, named after its metric
    (`metric_names`), so optuna-dashboard shows e.g. val_accuracy instead of "Objective 0"."""
    import optuna

    directions = [
        optuna.study.StudyDirection.MAXIMIZE if m == "max" else optuna.study.StudyDirection.MINIMIZE for m in modes
    ]
    study = optuna.create_study(study_name=spec.name, storage=storage, directions=directions, load_if_exists=True)
    if metric_names and study.metric_names != metric_names:
        with warnings.catch_warnings():  # set_metric_names is "experimental"
            warnings.simplefilter("ignore")
            study.set_metric_names(list(metric_names))
    return study


def load_sweep_study(spec: SweepSpec, *, sampler: optuna.samplers.BaseSampler | None = None) -> optuna.Study:
    """The sweep's study as any Optuna tool sees it (KeyError when the sweep never created it)."""
    import optuna

    return optuna.load_study(study_name=spec.name, storage=study_storage(spec), sampler=sampler)


def study_summary(study: optuna.Study) -> str:
    """What a resumed sweep's search continues from, in one phrase."""
    done = sum(t.state.is_finished() for t in study.trials)
    return f"Optuna {type(study.sampler).__name__} restored with {done} finished of {len(study.trials)} trials"


def close_stale_trials(study: optuna.Study) -> int:
    """At the end of a sweep, nothing runs: a trial still RUNNING in the study was asked for by a
    driver that died before Tune saved it (resume re-suggests it under a new id). Mark it lost so the
    study holds no trial in flight forever. Returns how many."""
    from optuna.trial import TrialState

    stale = study.get_trials(deepcopy=False, states=(TrialState.RUNNING,))
    for trial in stale:
        mark_lost(study, trial.number)
    return len(stale)


def mark_lost(study: optuna.Study, number: int) -> None:
    """FAIL, listed as lost: it counts neither as a result nor against --samples."""
    from optuna.trial import TrialState

    # Listed before it is told: a driver killed in between leaves it RUNNING, and the next one marks it again.
    study.set_user_attr(LOST_ATTR, sorted(lost_trials(study) | {number}))
    study.tell(number, state=TrialState.FAIL)


def start_over(study: optuna.Study) -> int:
    """`resume` of a sweep whose driver died before Tune saved anything starts its search over on
    the same study: the trials still RUNNING there never end, so they are lost, and the chosen
    configurations among them are queued again (those still waiting stay queued). Returns how many
    were lost."""
    from optuna.trial import TrialState

    stale = study.get_trials(deepcopy=False, states=(TrialState.RUNNING,))
    for trial in stale:
        mark_lost(study, trial.number)
        if trial.user_attrs.get(ENQUEUED_ATTR):
            study.enqueue_trial(trial.params, user_attrs={ENQUEUED_ATTR: True})
    return len(stale)


def lost_trials(study: optuna.Study) -> set[int]:
    """The numbers of the study's lost trials (mark_lost)."""
    return set(study.user_attrs.get(LOST_ATTR, []))


def sweep_trials_taken(study: optuna.Study, in_flight: set[int]) -> int:
    """How much of --samples a sweep has used: its trials that ended, whichever driver ran them (a
    lost driver's trial that completed counts once), plus those `in_flight` (numbers), not counting
    warm-start copies or lost trials."""
    from optuna.trial import TrialState

    lost = lost_trials(study)
    ended = {
        trial.number
        for trial in study.get_trials(deepcopy=False, states=(TrialState.COMPLETE, TrialState.PRUNED, TrialState.FAIL))
        if WARM_START_ATTR not in trial.user_attrs and trial.number not in lost
    }
    return len(ended | in_flight)


def close_sweep_study(spec: SweepSpec) -> int:
    """The end of a sweep that was not interrupted: no trial of its study may stay RUNNING."""
    try:
        study = load_sweep_study(spec)
    except KeyError:  # the search never started
        return 0
    return close_stale_trials(study)
