"""Accuracy against size: the objectives of `--objective`, the Pareto front of a sweep's finished
trials (Optuna's `best_trials` of the sweep's study; each front member's run read from MLflow), and
the record of it on the parent run (pareto_front.csv and .png).

A multi-objective sweep runs under FIFO: ASHA ranks trials by one metric, and a model's size is only
known once it is built, so stopping on accuracy alone would throw away the small models the front
is made of.
"""

from __future__ import annotations

import csv
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING

from sweep.errors import UsageError

if TYPE_CHECKING:
    from tracking.summary import TrialRow
    from trainables.families import Family

# Name in --objective -> (MLflow metric, mode); "accuracy" is the family's own validation/CV metric.
SIZE_OBJECTIVES = {"params": ("params", "min"), "fit_seconds": ("fit_seconds", "min")}
OBJECTIVE_NAMES = ("accuracy", *SIZE_OBJECTIVES)
PARETO_CSV = "pareto_front.csv"
PARETO_PNG = "pareto_front.png"


def parse_objective(text: str) -> list[str]:
    """'accuracy,params' -> ['accuracy', 'params']; [] for plain accuracy (a single-objective sweep)."""
    names = [name.strip() for name in text.split(",") if name.strip()]
    for name in names:
        if name not in OBJECTIVE_NAMES:
            raise UsageError(f"--objective {text}: no metric {name!r}; choose from {', '.join(OBJECTIVE_NAMES)}")
    if not names or names[0] != "accuracy" or len(set(names)) != len(names):
        raise UsageError(f"--objective {text}: start with accuracy, then what to keep small (e.g. accuracy,params)")
    return [] if names == ["accuracy"] else names


def objective_metrics(objective: list[str], family: Family) -> list[tuple[str, str]]:
    """(metric, mode) for each objective, in order."""
    return [(family.metric, family.mode) if name == "accuracy" else SIZE_OBJECTIVES[name] for name in objective]


def pareto_front(rows: list[TrialRow], objectives: list[tuple[str, str]], *, study=None) -> list[TrialRow]:
    """The finished trials no other finished trial beats on every objective, most accurate first:
    Optuna's front (`best_trials`) of the sweep's own multi-objective `study` when given, else of one
    made from the rows' metrics (accuracy against size for any sweep, `best --pareto`)."""
    if study is not None:
        from sweep.study_source import with_runs

        on_front = {trial.number for trial in study.best_trials}
        front = [row for trial, row in with_runs(study, rows) if trial.number in on_front and row is not None]
    else:
        front = _front_of_rows(rows, objectives)
    scored = [row for row in front if all(m in row.metrics for m, _ in objectives)]
    return sorted(scored, key=lambda row: _larger_is_better(row, objectives), reverse=True)


def _larger_is_better(row: TrialRow, objectives: list[tuple[str, str]]) -> list[float]:
    return [row.metrics[m] if mode == "max" else -row.metrics[m] for m, mode in objectives]


def _front_of_rows(rows: list[TrialRow], objectives: list[tuple[str, str]]) -> list[TrialRow]:
    import optuna
    from optuna.trial import create_trial

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(directions=["maximize" if mode == "max" else "minimize" for _, mode in objectives])
    scored = _scored(rows, objectives)
    for index, row in enumerate(scored):
        study.add_trial(create_trial(values=[row.metrics[m] for m, _ in objectives], user_attrs={"row": index}))
    return [scored[trial.user_attrs["row"]] for trial in study.best_trials]


def _scored(rows: list[TrialRow], objectives: list[tuple[str, str]]) -> list[TrialRow]:
    return [r for r in rows if r.status == "FINISHED" and all(m in r.metrics for m, _ in objectives)]


def record_pareto(client, target, family: Family, objective: list[str], *, study=None) -> list[TrialRow]:
    """Write the front onto the parent run as pareto_front.csv and pareto_front.png; returns it.
    `study`: the sweep's own (multi-objective) study, where the front comes from."""
    from tracking.artifacts import pareto_front_png
    from tracking.summary import summarise

    objectives = objective_metrics(objective, family)
    rows = summarise(client, target, metric=family.metric, mode=family.mode).rows
    front = pareto_front(rows, objectives, study=study)
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        write_front_csv(front, objectives, folder / PARETO_CSV)
        finished = _scored(rows, objectives)
        (x_metric, _), (y_metric, _) = objectives[1], objectives[0]
        pareto_front_png(
            [(r.metrics[x_metric], r.metrics[y_metric]) for r in finished],
            [(r.metrics[x_metric], r.metrics[y_metric]) for r in front],
            folder / PARETO_PNG,
            x=x_metric,
            y=y_metric,
        )
        client.log_artifacts(target.parent_run_id, str(folder))
    return front


def write_front_csv(front: list[TrialRow], objectives: list[tuple[str, str]], path: Path) -> None:
    with open(path, "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["trial_id", "run_id", *[m for m, _ in objectives], "test_accuracy", "model_uri"])
        for row in front:
            writer.writerow(
                [
                    row.trial_id,
                    row.run_id,
                    *[row.metrics[m] for m, _ in objectives],
                    row.metrics.get("test_accuracy", ""),
                    row.model_uri,
                ]
            )


def format_front(front: list[TrialRow], objectives: list[tuple[str, str]]) -> str:
    header = f"{'trial':<10}" + "".join(f"{m:>16}" for m, _ in objectives) + f"{'test_accuracy':>16}"
    lines = [header]
    for row in front:
        values = "".join(f"{_fmt(row.metrics[m]):>16}" for m, _ in objectives)
        lines.append(f"{row.trial_id:<10}{values}{_fmt(row.metrics.get('test_accuracy', float('nan'))):>16}")
    return "\n".join(lines)


def _fmt(value: float) -> str:
    return f"{int(value):,}" if float(value).is_integer() else f"{value:.4f}"


def report_pareto(client, target, family: Family, objective: list[str], *, study=None) -> None:
    """At the end of a multi-objective sweep: record the front (of the sweep's `study`) and print it."""
    front = record_pareto(client, target, family, objective, study=study)
    print(f"\nPareto front ({len(front)} trials, {PARETO_CSV} on the sweep's run):")
    print(format_front(front, objective_metrics(objective, family)))
