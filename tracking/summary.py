"""A sweep's trials as read back from MLflow: the table, the best trial, the closing record.

MLflow is the source of truth for `status`, `best` and the end-of-sweep
summary: it holds every trial, including those of earlier, resumed or crashed
drivers, which Tune's in-memory results do not.
"""

from __future__ import annotations

import csv
import tempfile
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from mlflow.tracking import MlflowClient

from tracking.artifacts import write_json
from tracking.runs import (
    TAG_ERROR,
    TAG_LOST,
    TAG_MODEL_URI,
    TAG_PRUNED,
    TAG_ROLE,
    TAG_TRIAL_ID,
    SweepTarget,
    logged_epochs,
    trial_runs,
)

TAG_BEST_RUN_ID = "scenesweep.best_run_id"
TAG_REFIT_OF = "scenesweep.refit_of"  # on a refit run: the trial it retrained (sweep/refit.py)
# The contract's family-agnostic metrics; the sweep's own metric (summary.metric) comes first.
SUMMARY_METRICS = ("test_accuracy", "params", "fit_seconds")


@dataclass(frozen=True)
class TrialRow:
    trial_id: str
    run_id: str
    status: str  # FINISHED, FAILED, KILLED (pruned, interrupted or lost), RUNNING
    pruned: bool
    epochs: int
    metrics: dict
    params: dict
    error: str = ""
    model_uri: str = ""
    lost: bool = False  # its trial was lost with a killed driver; a resume ran its slot again
    refit_of: str = ""  # a refit run (sweep/refit.py): the trial id whose configuration it retrained

    @property
    def shown_status(self) -> str:
        """LOST, PRUNED or the MLflow status: what tables and counts show."""
        return "LOST" if self.lost else ("PRUNED" if self.pruned else self.status)

    @property
    def config(self) -> dict:
        """The trial's config with MLflow's string params turned back into numbers and booleans."""
        return {key: typed(value) for key, value in self.params.items()}


@dataclass(frozen=True)
class SweepSummary:
    metric: str
    mode: str
    rows: list[TrialRow]  # the search's trials
    errors: Counter = field(default_factory=Counter)
    refits: list[TrialRow] = field(default_factory=list)  # refit runs (sweep/refit.py), oldest first

    def refit_of(self, trial_id: str) -> TrialRow | None:
        """The newest FINISHED refit of trial `trial_id` that logged a model, or None."""
        done = [r for r in self.refits if r.refit_of == trial_id and r.status == "FINISHED" and r.model_uri]
        return done[-1] if done else None

    @property
    def finished(self) -> list[TrialRow]:
        return [r for r in self.rows if r.status == "FINISHED" and self.metric in r.metrics]

    def ranked(self, metric: str | None = None) -> list[TrialRow]:
        """Finished trials, best first by `metric` (the family's validation metric by default)."""
        metric = metric or self.metric
        rows = [r for r in self.rows if r.status == "FINISHED" and metric in r.metrics]
        return sorted(rows, key=lambda r: r.metrics[metric], reverse=self.mode == "max")

    @property
    def best(self) -> TrialRow | None:
        ranked = self.ranked()
        return ranked[0] if ranked else None

    def counts(self) -> Counter:
        return Counter(r.shown_status for r in self.rows)


def summarise(client: MlflowClient, target: SweepTarget, *, metric: str, mode: str) -> SweepSummary:
    """The sweep's trials from one search of its child runs (paged), nothing asked per run: the
    same cost for 10 trials or 1,000 but the size of the answer."""
    rows: list[TrialRow] = []
    refits: list[TrialRow] = []
    errors: Counter = Counter()
    for run in trial_runs(client, target):
        tags = run.data.tags
        row = TrialRow(
            trial_id=tags.get(TAG_TRIAL_ID, ""),
            run_id=run.info.run_id,
            status=run.info.status,
            pruned=tags.get(TAG_PRUNED) == "true",
            epochs=logged_epochs(run),
            metrics=dict(run.data.metrics),
            params=dict(run.data.params),
            error=tags.get(TAG_ERROR, ""),
            model_uri=tags.get(TAG_MODEL_URI, ""),
            lost=tags.get(TAG_LOST) == "true",
            refit_of=tags.get(TAG_REFIT_OF, "") if tags.get(TAG_ROLE) == "refit" else "",
        )
        if row.refit_of:  # no search trial: shown apart, never ranked among them
            refits.append(row)
            continue
        rows.append(row)
        if row.status == "FAILED":
            errors[row.error or "unknown error"] += 1
    return SweepSummary(metric=metric, mode=mode, rows=rows, errors=errors, refits=refits)


def record_sweep_result(client: MlflowClient, target: SweepTarget, summary: SweepSummary, *, status: str) -> None:
    """Write trials.csv and the best trial onto the parent run; close it (the study's plots follow:
    tracking.study_plots)."""
    run_id = target.parent_run_id
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        _write_trials_csv(summary, folder / "trials.csv")
        best = summary.best
        if best is not None:
            write_json(
                {
                    "trial_id": best.trial_id,
                    "run_id": best.run_id,
                    "config": best.config,
                    "metrics": best.metrics,
                    "model_uri": best.model_uri,
                },
                folder / "best_trial.json",
            )
        client.log_artifacts(run_id, str(folder))
    counts = summary.counts()
    client.set_tag(run_id, "scenesweep.trials", ", ".join(f"{k.lower()} {v}" for k, v in sorted(counts.items())))
    if best is not None:
        client.set_tag(run_id, "scenesweep.best_trial_id", best.trial_id)
        client.set_tag(run_id, TAG_BEST_RUN_ID, best.run_id)
        for key in dict.fromkeys((summary.metric, *SUMMARY_METRICS)):
            if key in best.metrics:
                # Step = trials ended, as tracking.live logs the best so far while the sweep runs.
                client.log_metric(run_id, f"best_{key}", best.metrics[key], step=len(summary.rows))
    client.set_terminated(run_id, status=status)


def _write_trials_csv(summary: SweepSummary, path: Path) -> None:
    metric_keys = sorted({k for r in summary.rows for k in r.metrics})
    param_keys = sorted({k for r in summary.rows for k in r.params})
    with open(path, "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(
            [
                "trial_id",
                "run_id",
                "status",
                "pruned",
                "epochs",
                *metric_keys,
                *[f"param.{k}" for k in param_keys],
                "error",
            ]
        )
        for r in summary.rows:
            writer.writerow(
                [
                    r.trial_id,
                    r.run_id,
                    r.status,
                    r.pruned,
                    r.epochs,
                    *[r.metrics.get(k, "") for k in metric_keys],
                    *[r.params.get(k, "") for k in param_keys],
                    r.error,
                ]
            )


def format_table(
    rows: list[TrialRow],
    *,
    metric: str,
    key_params: list[str] | None = None,
    run_ids: bool = False,
    also: tuple[str, ...] = (),
) -> str:
    """A fixed-width table of trials for the terminal; `also` adds metric columns after `metric`."""
    metrics = [metric, *(m for m in also if m != metric), "test_accuracy"]
    metrics = list(dict.fromkeys(metrics))
    key_params = key_params or []
    header = ["trial", *(["run"] if run_ids else []), "status", "epochs", *metrics, "params", "fit_s", *key_params]
    lines = []
    for r in rows:
        status = r.shown_status
        values = [
            r.trial_id,
            *([r.run_id] if run_ids else []),
            status,
            str(r.epochs),
            *(_fmt(r.metrics.get(m)) for m in metrics),
            _fmt_int(r.metrics.get("params")),
            _fmt(r.metrics.get("fit_seconds"), 1),
        ]
        values += [_fmt_param(r.params.get(k, "")) for k in key_params]
        lines.append(values)
    widths = [max(len(str(x)) for x in column) for column in zip(header, *lines)] if lines else [len(h) for h in header]
    render = lambda values: "  ".join(str(v).ljust(w) for v, w in zip(values, widths)).rstrip()  # noqa: E731
    return "\n".join([render(header), *map(render, lines)])


def format_refits(refits: list[TrialRow]) -> str:
    """A line per refit run, apart from the trials' table: its source trial, state and held-out test."""
    return "\n".join(
        f"refit of trial {r.refit_of} (run {r.run_id}, {r.status}): "
        f"test_accuracy {_fmt(r.metrics.get('test_accuracy'))}, trained on train+val (its val_* are in-sample)"
        for r in refits
    )


def format_failures(rows: list[TrialRow], *, width: int = 200) -> str:
    """One line per FAILED trial: its id and the reason it recorded (empty when none failed)."""
    return "\n".join(f"  {r.trial_id}  {(r.error or 'unknown error')[:width]}" for r in rows if r.status == "FAILED")


def varying_params(rows: list[TrialRow], *, order=(), limit: int = 8) -> list[str]:
    """The params that differ between trials (what the search chose), pinned ones left out.

    In `order` (the search space's declaration order: architecture before optimiser before
    augmentation), then alphabetically; at most `limit`.
    """
    rank = {name: index for index, name in enumerate(order)}
    keys = sorted({k for r in rows for k in r.params}, key=lambda k: (rank.get(k, len(rank)), k))
    varying = [k for k in keys if len({r.params.get(k) for r in rows}) > 1]
    return varying[:limit]


def metric_mode(metric: str, *, default: str) -> str:
    """Losses, durations and sizes are minimised; everything else (accuracies) maximised."""
    return "min" if metric.endswith(("loss", "seconds", "params", "_std")) else default


def typed(value: str):
    if value in ("True", "False"):
        return value == "True"
    if value == "None":
        return None
    for convert in (int, float):
        try:
            return convert(value)
        except ValueError:
            pass
    return value


def _fmt(value, digits: int = 4) -> str:
    return "" if value is None else f"{value:.{digits}f}"


def _fmt_param(value: str) -> str:
    """Params as MLflow stores them (strings); long floats shortened to 4 significant digits."""
    number = typed(value)
    return f"{number:.4g}" if isinstance(number, float) else value


def _fmt_int(value) -> str:
    return "" if value is None else f"{int(value):,}"
