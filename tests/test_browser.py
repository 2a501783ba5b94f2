"""The MLflow UI and optuna-dashboard in a real headless Chromium after a real demo sweep: the pages a user
opens show the sweep (the runs view, not GenAI's overview; the trials; the dashboard's study), and
screenshots of them are saved ($SCENESWEEP_SCREENSHOTS, e.g. docs/, else the test's folder).

Needs Debian's `chromium` (`make system-deps` installs it); skips, saying so, without it."""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
from pathlib import Path

import pytest
from mlflow.tracking import MlflowClient

from tests.conftest import free_port, missing, run_cli, start_cli, wait_for_http
from tests.test_sweep import SMALL
from tracking.runs import target_from_run
from tracking.ui import experiment_page, run_page

pytestmark = pytest.mark.slow
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
SWEEP = "browser-demo"


def chromium(url: str, *, screenshot: Path | None = None, budget_ms: int = 15000) -> str:
    """The page's text once its JavaScript has rendered (and a screenshot of it when asked)."""
    flags = [
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--window-size=1600,1000",
        f"--virtual-time-budget={budget_ms}",
    ]
    if screenshot is not None:
        subprocess.run(
            [CHROMIUM, *flags, f"--screenshot={screenshot}", url], capture_output=True, timeout=180, check=True
        )
    dom = subprocess.run([CHROMIUM, *flags, "--dump-dom", url], capture_output=True, text=True, timeout=180, check=True)
    text = re.sub(r"<script.*?</script>|<style.*?</style>", " ", dom.stdout, flags=re.S)
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", text))


@pytest.fixture(scope="module")
def shots(tmp_path_factory) -> Path:
    folder = Path(os.environ.get("SCENESWEEP_SCREENSHOTS") or tmp_path_factory.mktemp("screenshots"))
    folder.mkdir(parents=True, exist_ok=True)
    return folder


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    """A finished demo sweep, `scenesweep ui` and `scenesweep dashboard` on it."""
    if CHROMIUM is None:
        missing("chromium is not installed (make system-deps installs it)")
    workdir = tmp_path_factory.mktemp("browser")
    args = ["--data", "demo", "--samples", "4", "--epochs", "3", "--seed", "3", "--name", SWEEP, *SMALL]
    result = run_cli("sweep", *args, cwd=workdir)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    ui_port, dashboard_port = free_port(), free_port()
    ui = start_cli("ui", "--port", str(ui_port), cwd=workdir, log=workdir / "ui.log")
    dashboard = start_cli("dashboard", SWEEP, "--port", str(dashboard_port), cwd=workdir, log=workdir / "dash.log")
    try:
        wait_for_http(f"http://127.0.0.1:{ui_port}/health", timeout=120, process=ui)
        wait_for_http(f"http://127.0.0.1:{dashboard_port}/api/studies", timeout=120, process=dashboard)
        client = MlflowClient(f"sqlite:///{workdir / 'mlruns.db'}")
        (parent,) = client.search_runs(
            [client.get_experiment_by_name("scenesweep-tinynet").experiment_id],
            filter_string="tags.`scenesweep.role` = 'sweep'",
        )
        yield {
            "ui": f"http://127.0.0.1:{ui_port}",
            "dashboard": f"http://127.0.0.1:{dashboard_port}",
            "client": client,
            "parent": parent,
            "stdout": result.stdout,
        }
    finally:
        for process in (ui, dashboard):
            os.killpg(process.pid, signal.SIGTERM)
            process.wait(timeout=30)


def test_the_printed_link_opens_the_sweeps_run_with_its_description_and_trials(served, shots):
    parent, client = served["parent"], served["client"]
    assert f"#/experiments/{parent.info.experiment_id}/runs/{parent.info.run_id}" in served["stdout"]
    text = chromium(run_page(served["ui"], target_from_run(parent)), screenshot=shots / "mlflow-sweep-run.png")
    trials = [r for r in client.search_runs([parent.info.experiment_id]) if r.info.run_id != parent.info.run_id]
    finished = [r.info.run_name for r in trials if r.info.status == "FINISHED"]
    assert finished and all(name in text for name in finished)
    assert f"Sweep {SWEEP} (tinynet)" in text and "command: scenesweep sweep" in text
    assert "Detect Issues" not in text


def test_the_experiment_opens_on_its_runs_not_the_genai_overview(served, shots):
    parent = served["parent"]
    url = experiment_page(served["ui"], parent.info.experiment_id) + "?workflowType=machine_learning"
    text = chromium(url, screenshot=shots / "mlflow-runs.png")
    assert "Run Name" in text and SWEEP in text
    assert "Detect Issues" not in text and "Token Usage" not in text


def test_optuna_dashboard_shows_the_sweeps_study_and_its_trials(served, shots):
    listing = chromium(f"{served['dashboard']}/dashboard/", budget_ms=8000)
    assert SWEEP in listing
    study = chromium(f"{served['dashboard']}/dashboard/studies/0", screenshot=shots / "optuna-dashboard.png")
    assert f"{SWEEP} (id=0)" in study and "History" in study and "Hyperparameter Importance" in study
