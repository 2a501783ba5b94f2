"""The sweep's Optuna study, end to end through the real CLI: it lives in the sweep's journal, an
outside optuna.load_study reads it while the sweep runs and after, trials ASHA stopped are PRUNED with
their per-epoch values, and --budget ends a sweep on time with nothing left RUNNING."""

import json

import optuna
import pytest

from sweep.spec import SPEC_FILE, SweepSpec
from sweep.study import STUDY_FILE, load_sweep_study
from tests.conftest import run_cli, start_cli, wait_for
from tests.sweep_checks import sweep_runs
from tests.test_sweep import SMALL

pytestmark = pytest.mark.slow


def saved_spec(workdir, name) -> SweepSpec:
    return SweepSpec.from_dict(json.loads((workdir / "sweeps" / name / SPEC_FILE).read_text()))


def test_study_is_readable_from_outside_during_and_after_the_sweep(tmp_path):
    name, log = "study-live", tmp_path / "sweep.log"
    sweep = start_cli(
        "sweep",
        *("--data", "demo", "--samples", "5", "--epochs", "4", "--seed", "1", "--name", name, "--no-chance-stop"),
        *SMALL,
        cwd=tmp_path,
        log=log,
    )
    journal = tmp_path / "sweeps" / name / STUDY_FILE
    try:

        def trials_so_far():
            if not journal.exists():
                return None
            study = optuna.load_study(
                study_name=name,
                storage=optuna.storages.JournalStorage(optuna.storages.journal.JournalFileBackend(str(journal))),
            )
            return [t for t in study.trials if t.intermediate_values]

        # An epoch's value, read from the journal while the sweep runs.
        during = wait_for(trials_so_far, timeout=300, what="a trial's first epoch in the study", process=sweep)
        assert sweep.poll() is None
        assert during[0].intermediate_values[1] > 0
        sweep.wait(timeout=600)
    finally:
        if sweep.poll() is None:
            sweep.kill()
            sweep.wait()
    assert sweep.returncode == 0, log.read_text()[-4000:]

    study = load_sweep_study(saved_spec(tmp_path, name))
    states = [t.state.name for t in study.trials]
    assert len(states) == 5 and "RUNNING" not in states, states
    assert study.trials[0].params["optimizer"] == "adam"  # the paper's configuration went first
    # Each trial's study record matches its MLflow run: ASHA-stopped runs (KILLED, pruned) are PRUNED
    # with the epochs they ran as intermediate values, finished ones COMPLETE with all 4 epochs.
    uri = f"sqlite:///{tmp_path / 'mlruns.db'}"
    client, _, children = sweep_runs(uri, name, "scenesweep-tinynet")
    by_accuracy = {}
    for run in children:
        steps = {m.step: m.value for m in client.get_metric_history(run.info.run_id, "val_accuracy")}
        by_accuracy[run.info.status] = by_accuracy.get(run.info.status, []) + [steps]
    pruned = [t for t in study.trials if t.state.name == "PRUNED"]
    complete = [t for t in study.trials if t.state.name == "COMPLETE"]
    assert pruned, "ASHA stopped no trial; the test needs one"
    assert len(pruned) == len(by_accuracy.get("KILLED", [])) and len(complete) == len(by_accuracy["FINISHED"])
    for trial in pruned:
        assert (
            1 <= len(trial.intermediate_values) < 4
            and trial.value == trial.intermediate_values[max(trial.intermediate_values)]
        )
        assert trial.intermediate_values in by_accuracy["KILLED"]
    assert len(during) < len(study.trials)
    for trial in complete:
        assert sorted(trial.intermediate_values) == [1, 2, 3, 4]


def test_budget_ends_the_sweep_on_time_with_nothing_running(tmp_path):
    name, budget = "budgeted", 30
    result = run_cli(
        "sweep",
        # The paper's configuration (which runs its course) finishes its 10 small epochs inside the
        # budget; trials after it are still training when the budget ends them.
        *("--data", "demo", "--epochs", "10", "--budget", f"{budget}s", "--name", name, "--seed", "2"),
        *SMALL,
        cwd=tmp_path,
        timeout=600,
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert "Best trial" in result.stdout
    uri = f"sqlite:///{tmp_path / 'mlruns.db'}"
    client, parent, children = sweep_runs(uri, name, "scenesweep-tinynet")
    assert children and all(c.info.status in ("FINISHED", "KILLED", "FAILED") for c in children)
    assert any(c.data.tags.get("scenesweep.pruned") == "true" for c in children)  # stopped by the budget
    # The budget is the behaviour under test, so this one bound stays: trials stop within the budget
    # plus one epoch (the first epoch end past it) and Tune's stop latency, given a generous 30 s on a
    # loaded 2-core box. Start-up and the summary around it are benchmarks' business, not asserted.
    epoch = max(c.data.metrics.get("epoch_seconds", 0.0) for c in children)
    first = min(c.info.start_time for c in children) / 1000
    last = max(c.info.end_time for c in children) / 1000
    assert last - first <= budget + epoch + 30, (last - first, epoch)
    study = load_sweep_study(saved_spec(tmp_path, name))
    assert study.trials and not [t for t in study.trials if t.state.name == "RUNNING"]
    status = run_cli("status", name, cwd=tmp_path, timeout=120)
    assert status.returncode == 0 and "used of 0:00:30" in status.stdout, status.stdout
