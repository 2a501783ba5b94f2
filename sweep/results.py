"""A sweep read back from MLflow: what `status`, `best` and `promote` show and act on."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from sweep.spec import UsageError, sweep_tracking_uri, tracking_flag, tracking_uri
from trainables.families import FAMILIES, Family, get_family

if TYPE_CHECKING:
    from tracking.summary import SweepSummary


@dataclass(frozen=True)
class SweepRecord:
    run: Any  # the parent mlflow.entities.Run
    family: Family
    summary: SweepSummary
    tracking_uri: str


def load_sweep(sweep: str, uri: str | None, metric: str | None = None) -> SweepRecord:
    from mlflow.tracking import MlflowClient

    from tracking.runs import TrackingError, check_tracking, find_sweep_run, require_existing_store, target_from_run
    from tracking.summary import metric_mode, summarise
    from tracking.uris import masked

    uri = sweep_tracking_uri(sweep, uri)
    try:
        require_existing_store(uri)
    except TrackingError as exc:
        raise UsageError(f"no sweep named {sweep!r}: {exc}") from None
    check_tracking(uri)
    client = MlflowClient(uri)
    run = find_sweep_run(client, sweep)
    if run is None:
        raise UsageError(
            f"no sweep named {sweep!r} in {masked(uri)}; list the sweeps there with: scenesweep list{tracking_flag(uri)}"
        )
    target = target_from_run(run)
    try:
        family = get_family(target.family)
    except ValueError as exc:
        raise UsageError(f"sweep {sweep!r}: {exc}") from None
    metric = metric or family.metric
    mode = family.mode if metric == family.metric else metric_mode(metric, default=family.mode)
    return SweepRecord(
        run=run, family=family, summary=summarise(client, target, metric=metric, mode=mode), tracking_uri=uri
    )


def status_report(sweep: str, uri: str | None) -> str:
    from tracking.live import driver_gone, duration
    from tracking.summary import format_failures, format_refits, format_table

    record = load_sweep(sweep, uri)
    family, summary, run = record.family, record.summary, record.run
    counts = ", ".join(f"{v} {k.lower()}" for k, v in sorted(summary.counts().items()))
    state = run.info.status
    if state == "RUNNING" and (silent := driver_gone(run.data.tags)) is not None:
        state = f"RUNNING but its driver is gone: no heartbeat for {duration(silent)}; continue it with: scenesweep resume {sweep}"
    lines = [
        f"sweep {sweep} ({family.name}, run {run.info.run_id}, {state}): {len(summary.rows)} trials ({counts})",
        format_table(summary.rows, metric=family.metric),
    ]
    if failures := format_failures(summary.rows):
        lines.append(f"failed:\n{failures}")
    if summary.best:
        lines.append(f"best: {summary.best.trial_id} {family.metric} {summary.best.metrics[family.metric]:.4f}")
    if summary.refits:
        lines.append(format_refits(summary.refits))
    if budget := budget_line(run):
        lines.append(budget)
    return "\n".join(lines)


def budget_line(run) -> str | None:
    """Time the sweep has used against its --budget (the parent run's `budget` param, in seconds)."""
    import time

    raw = run.data.params.get("budget")
    if raw in (None, "", "None"):
        return None
    budget = float(raw)
    ended = run.info.end_time if run.info.status != "RUNNING" and run.info.end_time else time.time() * 1000
    used = max(0.0, (ended - run.info.start_time) / 1000)
    return f"budget: {_clock(used)} used of {_clock(budget)} ({100 * used / budget:.0f}%)"


def _clock(seconds: float) -> str:
    seconds = int(round(seconds))
    return f"{seconds // 3600}:{seconds // 60 % 60:02d}:{seconds % 60:02d}"


def best_report(
    sweep: str, uri: str | None, *, metric: str | None, top: int, params: str | None, pareto: bool = False
) -> str:
    from mlflow.tracking import MlflowClient

    from search_spaces import parameter_distributions
    from tracking.study_plots import importance_order
    from tracking.summary import format_refits, format_table, varying_params

    if top < 1:
        raise UsageError(f"--top {top} must be at least 1")
    record = load_sweep(sweep, uri, metric)
    if pareto:
        return pareto_report(record)
    family, summary = record.family, record.summary
    ranked = summary.ranked()
    if not ranked:
        raise UsageError(f"sweep {sweep!r} has no finished trial with metric {summary.metric!r}")
    if params:
        key_params = [name.strip() for name in params.split(",") if name.strip()]
    else:
        # Most important first (the parent run's fANOVA ranking), then the space's declaration order.
        order = [*importance_order(MlflowClient(record.tracking_uri), record.run.info.run_id)]
        order += [name for name in parameter_distributions(family.space) if name not in order]
        key_params = varying_params(summary.finished, order=order)
    best = ranked[0]
    return "\n".join(
        [
            format_table(
                ranked[:top], metric=summary.metric, also=(family.metric,), run_ids=True, key_params=key_params
            ),
            f"\nbest trial {best.trial_id} (run {best.run_id}) by {summary.metric}",
            "config: " + json.dumps(best.config, sort_keys=True),
            f"model: {best.model_uri}",
            *(
                [format_refits(refits)]
                if (refits := [r for r in summary.refits if r.refit_of == best.trial_id])
                else []
            ),
            f"promote it: scenesweep promote {sweep}"
            + (f" --metric {summary.metric}" if summary.metric != family.metric else "")
            + tracking_flag(record.tracking_uri),
        ]
    )


def pareto_report(record: SweepRecord) -> str:
    """The front of the sweep's --objective (accuracy against params for a single-objective sweep)."""
    import ast

    from sweep.pareto import format_front, objective_metrics, pareto_front

    objective = ast.literal_eval(record.run.data.params.get("objective", "[]") or "[]") or ["accuracy", "params"]
    objectives = objective_metrics(objective, record.family)
    front = pareto_front(record.summary.rows, objectives)
    if not front:
        raise UsageError(f"sweep has no finished trial with {' and '.join(m for m, _ in objectives)}")
    return f"Pareto front of {' against '.join(m for m, _ in objectives)} ({len(front)} trials):\n" + format_front(
        front, objectives
    )


def promote_best(
    sweep: str,
    uri: str | None,
    *,
    metric: str | None,
    model_name: str | None,
    alias: str,
    force: bool,
    max_params: int | None = None,
) -> str:
    from tracking.registry import candidate_from, check_alias, promote

    check_alias(alias)  # before anything is read or created
    record = load_sweep(sweep, uri, metric)
    summary, best = record.summary, record.summary.best
    if max_params is not None:
        ranked = summary.ranked()
        fits = [r for r in ranked if r.metrics.get("params", float("inf")) <= max_params]
        if ranked and not fits:
            smallest = min(r.metrics.get("params", float("inf")) for r in ranked)
            raise UsageError(
                f"--max-params {max_params:,}: no finished trial of sweep {sweep!r} is that small "
                f"(the smallest has {smallest:,.0f}); raise the limit"
            )
        best = fits[0] if fits else None
    if best is None:
        raise UsageError(f"sweep {sweep!r} has no finished trial with metric {summary.metric!r}; nothing to promote")
    # Selected by the trial's validation metric; the model is its refit on train+val when one finished.
    refit = summary.refit_of(best.trial_id)
    candidate = candidate_from(best, sweep_run=record.run, metric=summary.metric, mode=summary.mode, refit=refit)
    name = model_name or f"scenesweep-{record.family.name}"
    result = promote(candidate, tracking_uri=record.tracking_uri, name=name, alias=alias, force=force)
    how = "registered as" if result.created else "already registered as"
    lines = [
        f"trial {best.trial_id} (run {best.run_id}) of sweep {sweep}: {candidate.metric} {candidate.score:.4f}, "
        f"test_accuracy {best.metrics.get('test_accuracy', float('nan')):.4f}",
        *(
            [
                f"took the refit of trial {best.trial_id} (run {refit.run_id}): the same configuration retrained on "
                f"train+val, test_accuracy {refit.metrics.get('test_accuracy', float('nan')):.4f}; selected by "
                f"the trial's {candidate.metric}, never by test"
            ]
            if refit is not None
            else []
        ),
        f"{how} {name} version {result.version}; alias {result.alias} -> version {result.version}"
        + (f" (was version {result.previous})" if result.previous and result.previous != result.version else ""),
    ]
    if result.note:
        lines.append(f"note: {result.note}")
    lines.append(result.uri)
    return "\n".join(lines)


def list_report(uri: str | None) -> str:
    """Every sweep in the store, newest first: family, state, trials, best, start time."""
    import datetime

    from mlflow.tracking import MlflowClient

    from tracking.live import TAG_PROGRESS, driver_gone
    from tracking.runs import TAG_FAMILY, TAG_SWEEP, check_tracking, require_existing_store, sweep_runs

    uri = tracking_uri(uri)
    require_existing_store(uri)
    check_tracking(uri)
    runs = sweep_runs(MlflowClient(uri))
    if not runs:
        return f"no sweeps in {uri}; start one with: scenesweep sweep{tracking_flag(uri)}"
    header = ["sweep", "family", "state", "trials", "best", "started"]
    lines = []
    for run in runs:
        tags, metrics = run.data.tags, run.data.metrics
        family = tags.get(TAG_FAMILY, "")
        state = run.info.status
        if state == "RUNNING" and driver_gone(tags) is not None:
            state = "DRIVER GONE"
        trials = tags.get("scenesweep.trials") or tags.get(TAG_PROGRESS, "").split(";")[0]
        metric = FAMILIES[family].metric if family in FAMILIES else ""
        best = metrics.get(f"best_{metric}")
        started = datetime.datetime.fromtimestamp(run.info.start_time / 1000).strftime("%Y-%m-%d %H:%M")
        lines.append(
            [
                tags.get(TAG_SWEEP, run.info.run_name),
                family,
                state,
                trials,
                f"{metric} {best:.4f}" if best else "",
                started,
            ]
        )
    widths = [max(len(str(x)) for x in column) for column in zip(header, *lines)]
    render = lambda values: "  ".join(str(v).ljust(w) for v, w in zip(values, widths)).rstrip()  # noqa: E731
    return "\n".join([render(header), *map(render, lines)])
