"""The sweep's study drawn onto the parent run when the sweep ends.

The caller hands in the study to draw (sweep/study_source.py: the sweep's own persistent study,
single-objective, each trial with its Tune trial id and size as user attributes): tracking knows no
family and no sweep folder. Each plot goes in twice: a PNG for a glance (optuna.visualization.matplotlib)
and, together in one self-contained `study/study.html`, the interactive plotly version
(optuna.visualization; works offline). A plot the data cannot support is skipped with its reason, never
an error: a three-trial sweep gets the few that make sense.
"""

from __future__ import annotations

import json
import tempfile
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from mlflow.tracking import MlflowClient

if TYPE_CHECKING:
    import optuna

FOLDER = "study"
IMPORTANCE_FILE = "param_importances.json"
# User attributes of the drawn study's trials:
TRIAL_ID_ATTR = "trial_id"  # the Tune trial id (its run's scenesweep.trial_id), shown on hover
SIZE_ATTR = "params"  # trainable parameters: the second axis of the accuracy-vs-size Pareto front
LEGEND_TRIALS = 30  # the static learning curves name each trial in a legend up to this many trials


@dataclass
class StudyPlots:
    drawn: list[str] = field(default_factory=list)
    skipped: dict[str, str] = field(default_factory=dict)  # plot -> why it was left out
    importances: dict[str, float] = field(default_factory=dict)
    seconds: dict[str, float] = field(default_factory=dict)  # what each drawn plot took

    def line(self) -> str:
        text = "in study/ on the parent run: " + (", ".join(self.drawn) or "none")
        if self.skipped:
            text += "; skipped " + "; ".join(f"{name} ({why})" for name, why in self.skipped.items())
        return text


def log_study_plots(client: MlflowClient, run_id: str, study: optuna.Study, *, metric: str) -> StudyPlots:
    """Draw what the study supports into the run's `study/` folder; returns what was drawn and skipped."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import optuna
    from optuna.trial import TrialState

    warnings.filterwarnings("ignore", category=optuna.exceptions.ExperimentalWarning)  # per plot, "experimental"
    result = StudyPlots()
    complete = study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
    varying = _varying_params(complete)
    figures = []
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)

        def draw(name: str, why_not: str | None, make):
            if why_not:
                result.skipped[name] = why_not
                return
            try:
                started = time.perf_counter()
                interactive, static = make()
            except Exception as exc:  # noqa: BLE001 - one plot the data cannot carry must not cost the others
                result.skipped[name] = f"{type(exc).__name__}: {str(exc).splitlines()[0][:120]}"
                plt.close("all")
                return
            _figure_of(static).savefig(folder / f"{name}.png", dpi=110, bbox_inches="tight")
            plt.close("all")
            figures.append((name, interactive))
            result.drawn.append(name)
            result.seconds[name] = round(time.perf_counter() - started, 2)

        few = f"{len(complete)} finished trial(s)"
        draw("optimisation_history", None if complete else "no finished trial", lambda: _history(study, metric))
        result.importances = _importances(study, varying) if len(complete) >= 2 and varying else {}
        draw(
            "param_importances",
            None if result.importances else f"{few}, {len(varying)} varying parameter(s): need 2 and 1",
            lambda: _importance_plot(study, result.importances),
        )
        draw(
            "parallel_coordinate",
            None if len(complete) >= 2 and varying else f"{few}: need 2 with a varying parameter",
            lambda: _pair("plot_parallel_coordinate", study, params=_top(result.importances, varying, 8)),
        )
        top2 = _top(result.importances, varying, 2)
        draw(
            "contour",
            None if len(complete) >= 3 and len(top2) == 2 else f"{few}, {len(varying)} varying: need 3 and 2",
            lambda: _pair("plot_contour", study, params=top2),
        )
        draw(
            "slice",
            None if complete and varying else "no finished trial with a varying parameter",
            lambda: _pair("plot_slice", study, params=_top(result.importances, varying, 8)),
        )
        curves = any(t.intermediate_values for t in study.get_trials(deepcopy=False))
        draw(
            "learning_curves",
            None if curves else "no per-epoch values",
            lambda: _learning_curves(study),
        )
        sized = [t for t in complete if SIZE_ATTR in t.user_attrs]
        draw(
            "accuracy_vs_params",
            None if sized else f"no finished trial with `{SIZE_ATTR}`",
            lambda: _pareto(study, sized, metric),
        )
        if result.importances:
            (folder / IMPORTANCE_FILE).write_text(json.dumps(result.importances, indent=2))
        if figures:
            _write_html(figures, folder / "study.html", title=f"Optuna study: {metric}")
        client.log_artifacts(run_id, str(folder), artifact_path=FOLDER)
    return result


def importance_order(client: MlflowClient, run_id: str) -> list[str]:
    """Parameters most important first, from the parent run's param_importances.json ([] if none).
    Listed before it is fetched: a missing file behind a proxied S3 store answers with a server error,
    which MLflow's client retries with backoff for minutes."""
    wanted = f"{FOLDER}/{IMPORTANCE_FILE}"
    try:
        if wanted not in {info.path for info in client.list_artifacts(run_id, FOLDER)}:
            return []  # a sweep without it (older, or too few trials to rank parameters)
        path = client.download_artifacts(run_id, wanted)
    except Exception:  # noqa: BLE001 - an unreadable store: `best` still lists the trials
        return []
    return list(json.loads(Path(path).read_text()))


# --- the plots ------------------------------------------------------------------------------------


def _pair(name: str, study, **kwargs):
    """The plotly and matplotlib versions of optuna.visualization's plot `name`."""
    import optuna.visualization as interactive
    import optuna.visualization.matplotlib as static

    return getattr(interactive, name)(study, **kwargs), getattr(static, name)(study, **kwargs)


def _history(study, metric: str):
    """Optimisation history with integer trial ticks and each point's Tune trial id on hover."""
    figure, axes = _pair("plot_optimization_history", study, target_name=metric)
    ids = {t.number: t.user_attrs.get(TRIAL_ID_ATTR, "") for t in study.get_trials(deepcopy=False)}
    for trace in figure.data:
        if trace.x is not None and trace.mode and "markers" in trace.mode:
            trace.text = [ids.get(int(x), "") for x in trace.x]
            trace.hovertemplate = "trial %{text} (#%{x})<br>%{y:.4f}<extra></extra>"
    figure.update_xaxes(tickformat="d", dtick=max(1, len(ids) // 10))
    from matplotlib.ticker import MaxNLocator

    axes.xaxis.set_major_locator(MaxNLocator(integer=True))
    for trial in _improvements(study):  # a label on every point is unreadable past a few dozen trials
        axes.annotate(
            ids.get(trial.number, ""),
            (trial.number, trial.value),
            fontsize=7,
            xytext=(3, 3),
            textcoords="offset points",
        )
    return figure, axes


def _improvements(study) -> list:
    """The finished trials that beat every trial before them: the steps of the best-so-far line."""
    import optuna

    sign = 1 if study.direction == optuna.study.StudyDirection.MAXIMIZE else -1
    best, steps = None, []
    for trial in study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.COMPLETE,)):
        if best is None or sign * trial.value > sign * best:
            best = trial.value
            steps.append(trial)
    return steps


def _learning_curves(study):
    """Each trial's per-epoch values; the static version names trials in a legend only while it fits."""
    figure, axes = _pair("plot_intermediate_values", study)
    if len(study.get_trials(deepcopy=False)) > LEGEND_TRIALS and axes.get_legend() is not None:
        axes.get_legend().remove()  # one entry per trial: past a few dozen it outgrows the figure
    return figure, axes


def _importance_plot(study, importances: dict[str, float]):
    """The importances already computed, drawn. Optuna's plot would run fANOVA again (twice), and its
    hover text deep-copies every trial once per parameter (22 x 1,000 trials: 30 s); what it shows of
    the trials is each parameter's distribution, which one finished trial per parameter carries."""
    import optuna
    from optuna.importance import BaseImportanceEvaluator

    class Computed(BaseImportanceEvaluator):
        def evaluate(self, study, params=None, *, target=None) -> dict[str, float]:
            return {name: value for name, value in importances.items() if params is None or name in params}

    carriers: dict[int, optuna.trial.FrozenTrial] = {}
    complete = study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.COMPLETE,))
    for name in importances:
        carrier = next(trial for trial in complete if name in trial.params)
        carriers.setdefault(carrier.number, carrier)
    few = optuna.create_study(directions=study.directions)
    few.add_trials(list(carriers.values()))
    return _pair("plot_param_importances", few, params=list(importances), evaluator=Computed())


def _pareto(study, sized, metric: str):
    """Validation score against trainable parameters, the Pareto front (best score for its size) marked."""
    import optuna
    from optuna.trial import create_trial

    maximise = study.direction == optuna.study.StudyDirection.MAXIMIZE
    front_study = optuna.create_study(directions=["maximize" if maximise else "minimize", "minimize"])
    for trial in sized:
        front_study.add_trial(
            create_trial(
                params=trial.params,
                distributions=trial.distributions,
                values=[trial.value, trial.user_attrs[SIZE_ATTR]],
                user_attrs=trial.user_attrs,
            )
        )
    names = [metric, "trainable parameters"]
    return _pair("plot_pareto_front", front_study, target_names=names)


def _figure_of(static):
    """The matplotlib Figure behind what an optuna.visualization.matplotlib plot returns (Axes, or an
    array of them for one panel per parameter)."""
    import numpy as np

    return np.asarray(static, dtype=object).flat[0].figure


def _write_html(figures, path: Path, *, title: str) -> None:
    """All interactive plots in one page, plotly.js embedded once (no network needed to view it)."""
    parts = [f"<html><head><meta charset='utf-8'><title>{title}</title></head><body><h1>{title}</h1>"]
    for index, (name, figure) in enumerate(figures):
        parts.append(f"<h2 id='{name}'>{name.replace('_', ' ')}</h2>")
        parts.append(figure.to_html(full_html=False, include_plotlyjs=index == 0))
    parts.append("</body></html>")
    path.write_text("\n".join(parts))


def _importances(study, varying: list[str]) -> dict[str, float]:
    import optuna

    try:
        # Trees at most 8 deep (256 leaves): fANOVA's cost stays flat as a sweep grows (64 deep, Optuna's
        # default, took 16 s on 1,000 trials), and a ranking of a few parameters needs no deeper split.
        found = optuna.importance.get_param_importances(
            study, evaluator=optuna.importance.FanovaImportanceEvaluator(seed=0, max_depth=8), params=varying
        )
    except Exception:  # noqa: BLE001 - fANOVA on a handful of trials can fail; then there is no ranking
        return {}
    return {name: round(float(value), 6) for name, value in found.items()}


def _varying_params(trials) -> list[str]:
    """Parameters every finished trial has and that take more than one value among them."""
    if not trials:
        return []
    shared = set.intersection(*(set(t.params) for t in trials))
    return sorted(name for name in shared if len({repr(t.params[name]) for t in trials}) > 1)


def _top(importances: dict, varying: list[str], count: int) -> list[str]:
    ordered = [name for name in importances if name in varying] or varying
    return ordered[:count]
