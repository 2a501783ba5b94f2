"""--warm-start seeds a new sweep's study with an earlier sweep's trials (those outside the current
space skipped and counted), --enqueue runs the user's configurations first; both on the parent run."""

import json

import pytest

from sweep.spec import SweepSpec
from sweep.study import load_sweep_study
from tests.conftest import run_cli
from tests.sweep_checks import sweep_runs
from tests.test_sweep import SMALL

pytestmark = pytest.mark.slow


def spec_of(workdir, name) -> SweepSpec:
    return SweepSpec.from_dict(json.loads((workdir / "sweeps" / name / "scenesweep.json").read_text()))


def test_warm_start_seeds_the_study_and_enqueued_configs_run_first(tmp_path):
    quick = ["--data", "demo", "--epochs", "2", *SMALL]
    first = run_cli("sweep", *quick, "--search", "random", "--samples", "4", "--seed", "5", "--name", "a", cwd=tmp_path)
    assert first.returncode == 0, first.stdout[-3000:] + first.stderr[-3000:]
    earlier = [t for t in load_sweep_study(spec_of(tmp_path, "a")).trials if t.state.name in ("COMPLETE", "PRUNED")]
    usable = [t for t in earlier if abs(t.value) != float("inf")]
    # Pinning the optimizer makes the earlier trials with another optimizer fall outside the space.
    expected = sum(t.params["optimizer"] == "adam" for t in usable)
    assert 0 < expected < len(usable), [t.params["optimizer"] for t in usable]

    mine = {"optimizer": "adam", "lr_finder": False, "lr": 0.002, "dropout": 0.05}
    (tmp_path / "mine.json").write_text(json.dumps([mine]))
    second = run_cli(
        "sweep",
        *quick,
        *("--fix", "optimizer=adam", "--samples", "2", "--name", "b", "--warm-start", "a"),
        *("--enqueue", str(tmp_path / "mine.json")),
        cwd=tmp_path,
    )
    assert second.returncode == 0, second.stdout[-3000:] + second.stderr[-3000:]
    line = (
        f"warm start: {expected} trials from a ({len(usable) - expected} skipped: parameters outside the current space)"
    )
    assert line in second.stdout

    study = load_sweep_study(spec_of(tmp_path, "b"))
    seeded = [t for t in study.trials if t.user_attrs.get("warm_start_from") == "a"]
    ran = [t for t in study.trials if "warm_start_from" not in t.user_attrs]
    assert len(seeded) == expected and len(ran) == 2
    assert all(t.params.get("optimizer", "adam") == "adam" for t in seeded)
    assert {k: ran[0].params.get(k) for k in ("lr_finder", "lr", "dropout")} == {
        "lr_finder": False,
        "lr": 0.002,
        "dropout": 0.05,
    }  # the user's configuration went first, then the paper's
    assert ran[1].params["lr_finder"] is True and ran[1].params["dropout"] == 0.2

    _, parent, _ = sweep_runs(f"sqlite:///{tmp_path / 'mlruns.db'}", "b", "scenesweep-tinynet")
    assert parent.data.params["warm_start"] == "['a']" and "0.002" in parent.data.params["enqueue"]
    assert parent.data.tags["scenesweep.warm_start"] == line
