"""A sweep read back from MLflow: what `status`, `best` and `promote` show and act on."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from sweep.spec import UsageError, tracking_uri
from trainables.families import Family, get_family

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

    from tracking.runs import check_tracking, find_sweep_run, require_existing_store, target_from_run
    from tracking.summary import metric_mode, summarise
    from tracking.uris import masked

    uri = tracking_uri(uri)
    check_tracking(uri)
    require_existing_store(uri)
    client = MlflowClient(uri)
    run = find_sweep_run(client, sweep)
    if run is None:
        raise UsageError(
            f"no sweep named {sweep!r} in {masked(uri)}; list sweeps in the MLflow UI or pass --tracking-uri"
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
    from tracking.summary import format_failures, format_table

    record = load_sweep(sweep, uri)
    family, summary, run = record.family, record.summary, record.run
    counts = ", ".join(f"{v} {k.lower()}" for k, v in sorted(summary.counts().items()))
    lines = [
        f"sweep {sweep} ({family.name}, run {run.info.run_id}, {run.info.status}): "
        f"{len(summary.rows)} trials ({counts})",
        format_table(summary.rows, metric=family.metric),
    ]
    if failures := format_failures(summary.rows):
        lines.append(f"failed:\n{failures}")
    if summary.best:
        lines.append(f"best: {summary.best.trial_id} {family.metric} {summary.best.metrics[family.metric]:.4f}")
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
    from search_spaces import parameter_distributions
    from tracking.summary import format_table, varying_params

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
        key_params = varying_params(summary.finished, order=parameter_distributions(family.space))
    best = ranked[0]
    return "\n".join(
        [
            format_table(
                ranked[:top], metric=summary.metric, also=(family.metric,), run_ids=True, key_params=key_params
            ),
            f"\nbest trial {best.trial_id} (run {best.run_id}) by {summary.metric}",
            "config: " + json.dumps(best.config, sort_keys=True),
            f"model: {best.model_uri}",
            f"promote it: scenesweep promote {sweep}"
            + (f" --metric {summary.metric}" if summary.metric != family.metric else ""),
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
    from tracking.registry import candidate_from, promote

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
    candidate = candidate_from(best, sweep_run=record.run, metric=summary.metric, mode=summary.mode)
    name = model_name or f"scenesweep-{record.family.name}"
    result = promote(candidate, tracking_uri=record.tracking_uri, name=name, alias=alias, force=force)
    how = "registered as" if result.created else "already registered as"
    lines = [
        f"trial {best.trial_id} (run {best.run_id}) of sweep {sweep}: {candidate.metric} {candidate.score:.4f}, "
        f"test_accuracy {best.metrics.get('test_accuracy', float('nan')):.4f}",
        f"{how} {name} version {result.version}; alias {result.alias} -> version {result.version}"
        + (f" (was version {result.previous})" if result.previous and result.previous != result.version else ""),
    ]
    if result.note:
        lines.append(f"note: {result.note}")
    lines.append(result.uri)
    return "\n".join(lines)
