"""After the sweep, through the real CLI against a real MLflow server: best, promote, predict, serve,
explain, and the Grad-CAM logged at the end of a sweep."""

from __future__ import annotations

import base64
import json
import os
import signal
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
import pytest
import requests
from mlflow.tracking import MlflowClient

from serving.server import MAX_REQUEST_BYTES
from tests.conftest import ROOT, free_port, run_cli, wait_for_http
from tests.images import huge_png
from tests.sweep_checks import logged_predictions
from tests.test_sweep import SMALL
from trainables.core.images import encode_png

pytestmark = pytest.mark.slow

CHAMPION = "models:/scenesweep-tinynet@champion"


@dataclass(frozen=True)
class Sweep:
    name: str
    stdout: str
    client: MlflowClient
    parent: object  # the sweep's MLflow run
    best: object  # its best trial's run

    def logged_predictions(self) -> dict[str, str]:
        """image name -> class, from the best trial's test predictions table."""
        table = logged_predictions(self.client, self.best.info.run_id)
        return dict(zip(table["image"], table["predicted"]))


def run_sweep(name: str, *args: str, uri: str, cwd: Path) -> Sweep:
    result = run_cli("sweep", "--name", name, *args, cwd=cwd, env={"MLFLOW_TRACKING_URI": uri})
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    client = MlflowClient(uri)
    parent = client.search_runs(
        [e.experiment_id for e in client.search_experiments()],
        filter_string=f"tags.`scenesweep.sweep` = '{name}' AND tags.`scenesweep.role` = 'sweep'",
    )[0]
    best = client.get_run(parent.data.tags["scenesweep.best_run_id"])
    return Sweep(name=name, stdout=result.stdout, client=client, parent=parent, best=best)


@pytest.fixture(scope="module")
def workdir(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("registry-workflow")


@pytest.fixture(scope="module")
def cli(mlflow_server, workdir):
    def call(*args: str, timeout: float = 300) -> subprocess.CompletedProcess:
        return run_cli(*args, cwd=workdir, env={"MLFLOW_TRACKING_URI": mlflow_server.uri}, timeout=timeout)

    return call


@pytest.fixture(scope="module")
def good(mlflow_server, workdir) -> Sweep:
    # --no-refit: these tests promote, predict, serve and explain the trial's own model (the refit's
    # promotion is tested in tests/sweep/test_refit.py); the worse sweep below keeps its refit.
    return run_sweep(
        "reg-good",
        "--data",
        "demo",
        "--samples",
        "2",
        "--epochs",
        "2",
        "--no-refit",
        *SMALL,
        uri=mlflow_server.uri,
        cwd=workdir,
    )


@pytest.fixture(scope="module")
def champion(good, cli) -> subprocess.CompletedProcess:
    result = cli("promote", good.name)
    assert result.returncode == 0, result.stderr
    return result


def one_line_error(result: subprocess.CompletedProcess, message: str) -> None:
    assert result.returncode == 2, (result.stdout, result.stderr)
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in result.stderr, result.stderr
    assert lines[0].startswith("scenesweep: error: ") and message in lines[0], lines[0]


def test_best_shows_runs_metrics_and_the_searched_params(good, cli):
    result = cli("best", good.name, "--top", "2")
    assert result.returncode == 0, result.stderr
    header, first, second = result.stdout.splitlines()[:3]
    columns = header.split()
    assert columns[:8] == ["trial", "run", "status", "epochs", "val_accuracy", "test_accuracy", "params", "fit_s"]
    searched = columns[8:]
    # conditional parameters (lr only without the LR finder) make the columns the union over the rows shown
    shown = {name for row in (first, second) for name in good.client.get_run(row.split()[1]).data.params}
    assert searched and set(searched) <= shown and "input_size" not in searched  # pinned
    assert first.split()[1] == good.best.info.run_id
    assert f"promote it: scenesweep promote {good.name}" in result.stdout
    chosen = cli("best", good.name, "--params", "optimizer,input_size")
    assert chosen.stdout.splitlines()[0].split()[8:] == ["optimizer", "input_size"]


def test_the_best_trial_gets_a_gradcam_at_the_end_of_the_sweep(good):
    assert f"Grad-CAM of the best trial: gradcam.png in run {good.best.info.run_id}" in good.stdout
    path = good.client.download_artifacts(good.best.info.run_id, "gradcam.png")
    height, width = cv2.imread(path).shape[:2]
    assert height > 300 and width > 300


def test_promote_registers_the_best_trial_with_its_provenance_once(good, champion, cli):
    assert champion.stdout.strip().splitlines()[-1] == CHAMPION
    client, best = good.client, good.best
    version = client.get_model_version_by_alias("scenesweep-tinynet", "champion")
    assert version.run_id == best.info.run_id and version.source == best.data.tags["scenesweep.model_uri"]
    tags = version.tags
    assert (
        tags["scenesweep.sweep"] == good.name and tags["scenesweep.trial_id"] == best.data.tags["scenesweep.trial_id"]
    )
    assert tags["scenesweep.run_id"] == best.info.run_id
    assert tags["scenesweep.data_fingerprint"] == good.parent.data.params["data_fingerprint"]
    assert tags["scenesweep.selected_by"] == "val_accuracy"
    assert float(tags["val_accuracy"]) == best.data.metrics["val_accuracy"]
    assert float(tags["test_accuracy"]) == best.data.metrics["test_accuracy"]

    again = cli("promote", good.name)
    assert again.returncode == 0, again.stderr
    assert f"already registered as scenesweep-tinynet version {version.version}" in again.stdout
    assert len(client.search_model_versions("name = 'scenesweep-tinynet'")) == 1


def test_a_worse_sweep_is_refused_unless_forced(good, cli, mlflow_server, workdir):
    worse = run_sweep(
        "reg-worse",
        "--data",
        "demo",
        "--samples",
        "1",
        "--epochs",
        "1",
        *SMALL,
        "--fix",
        "lr_finder=False",
        "--fix",
        "lr=0.0001",
        "--fix",
        "optimizer=sgd",
        "--fix",
        "one_cycle=False",
        uri=mlflow_server.uri,
        cwd=workdir,
    )
    assert worse.best.data.metrics["val_accuracy"] < good.best.data.metrics["val_accuracy"]
    assert cli("promote", good.name, "--model-name", "duel").returncode == 0
    refused = cli("promote", worse.name, "--model-name", "duel")
    one_line_error(refused, "duel@champion is version 1 with val_accuracy")
    assert "pass --force" in refused.stderr
    assert str(good.client.get_model_version_by_alias("duel", "champion").version) == "1"
    forced = cli("promote", worse.name, "--model-name", "duel", "--force")
    assert forced.returncode == 0, forced.stderr
    assert "note: forced: replaced version 1" in forced.stdout and forced.stdout.strip().endswith(
        "models:/duel@champion"
    )
    assert str(good.client.get_model_version_by_alias("duel", "champion").version) == "2"


def write_demo_test_images(dataset, folder: Path) -> None:
    for name, image in zip(dataset.test_names, dataset.x_test):
        path = folder / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(encode_png(image))


def test_predict_agrees_with_the_logged_test_predictions_on_demo_images(good, champion, cli, demo_dataset, tmp_path):
    write_demo_test_images(demo_dataset, tmp_path)
    (tmp_path / "demo" / "test" / "broken.jpg").write_bytes(b"not a jpeg")
    result = cli(
        "predict", "--model", CHAMPION, "--json", "--top", "3", str(tmp_path / "demo"), str(tmp_path / "gone.png")
    )
    assert result.returncode == 2  # two inputs failed; every other image is still classified
    errors = result.stderr.strip().splitlines()
    assert len(errors) == 2 and "broken.jpg: not a decodable image; skipped" in errors[0]
    assert "gone.png: no such file or folder; skipped" in errors[1]
    output = json.loads(result.stdout)
    assert len(output["errors"]) == 2 and len(output["predictions"]) == len(demo_dataset.test_names)
    predicted = {str(Path(p["path"]).relative_to(tmp_path)): p["class"] for p in output["predictions"]}
    assert predicted == good.logged_predictions()
    top = output["predictions"][0]["top"]
    assert len(top) == 3 and top[0]["probability"] >= top[1]["probability"] >= top[2]["probability"]

    one = tmp_path / demo_dataset.test_names[0]
    lines = cli("predict", "--model", CHAMPION, str(one)).stdout.strip().splitlines()
    path, name, probability = lines[0].split()
    assert len(lines) == 1 and path == str(one) and name == predicted[demo_dataset.test_names[0]]
    assert 0 < float(probability) <= 1


def test_predict_on_real_images_agrees_with_the_logged_test_predictions(mit_split_64, cli, mlflow_server, workdir):
    real = run_sweep(
        "reg-mit",
        "--data",
        str(mit_split_64),
        "--samples",
        "1",
        "--epochs",
        "1",
        "--no-refit",  # compared with the trial's own logged predictions
        *SMALL,
        uri=mlflow_server.uri,
        cwd=workdir,
    )
    assert cli("promote", real.name, "--model-name", "scenesweep-mit").returncode == 0
    files = [sorted((mit_split_64 / "test" / c).iterdir())[i] for c in ("coast", "forest", "street") for i in (0, 1)]
    result = cli("predict", "--model", "models:/scenesweep-mit@champion", *map(str, files))
    assert result.returncode == 0, result.stderr
    logged = real.logged_predictions()
    predicted = {
        str(Path(line.split()[0]).relative_to(mit_split_64)): line.split()[1]
        for line in result.stdout.strip().splitlines()
    }
    assert predicted == {name: logged[name] for name in predicted} and len(predicted) == len(files)


SERVERS = {
    "scenesweep serve": lambda uri, port: [
        sys.executable,
        str(ROOT / "orchestrator.py"),
        "serve",
        "--model",
        uri,
        "--port",
        str(port),
    ],
    "mlflow models serve": lambda uri, port: [
        sys.executable,
        "-m",
        "mlflow",
        "models",
        "serve",
        "-m",
        uri,
        "--env-manager",
        "local",
        "-h",
        "127.0.0.1",
        "-p",
        str(port),
    ],
}


@pytest.mark.parametrize("server", SERVERS)
def test_the_served_model_answers_http_requests_with_probabilities(
    server, good, champion, mlflow_server, demo_dataset, tmp_path
):
    port = free_port()
    # `mlflow models serve --env-manager local` execs `uvicorn` from PATH, as in an activated venv.
    path = os.pathsep.join([str(Path(sys.executable).parent), os.environ.get("PATH", "")])
    env = {**os.environ, "MLFLOW_TRACKING_URI": mlflow_server.uri, "PATH": path}
    with open(tmp_path / "server.log", "wb") as log:
        process = subprocess.Popen(
            SERVERS[server](CHAMPION, port),
            stdout=log,
            stderr=subprocess.STDOUT,
            env=env,
            cwd=tmp_path,
            start_new_session=True,
        )
    try:
        url = f"http://127.0.0.1:{port}"
        wait_for_http(f"{url}/ping", process=process, timeout=120)
        images = demo_dataset.x_test[::40]
        encoded = [base64.b64encode(encode_png(image)).decode() for image in images]
        split = requests.post(
            f"{url}/invocations", json={"dataframe_split": {"columns": ["image"], "data": [[e] for e in encoded]}}
        )
        inputs = requests.post(f"{url}/invocations", json={"inputs": {"image": encoded}})
        assert split.status_code == 200 and inputs.status_code == 200, (split.text[:500], inputs.text[:500])
        rows = split.json()["predictions"]
        assert rows == inputs.json()["predictions"]
        assert [list(row) for row in rows] == [list(demo_dataset.class_names)] * len(images)
        assert np.allclose([sum(row.values()) for row in rows], 1.0, atol=1e-5)
        logged = good.logged_predictions()
        names = demo_dataset.test_names[::40]
        assert [max(row, key=row.get) for row in rows] == [logged[name] for name in names]
        bad = requests.post(f"{url}/invocations", json={"inputs": {"image": [base64.b64encode(b"junk").decode()]}})
        assert bad.status_code == 400 and "not a decodable image" in bad.json()["message"]
        # A small file declaring a huge image is refused before it is decoded, with the cap named.
        huge = base64.b64encode(huge_png()).decode()
        refused = requests.post(f"{url}/invocations", json={"inputs": {"image": [huge]}})
        assert refused.status_code == 400 and "16000x16000 pixels, over the limit of" in refused.json()["message"]
        if server == "scenesweep serve":  # ours also bounds the request body
            body = requests.post(f"{url}/invocations", data=b"x" * (MAX_REQUEST_BYTES + 1))
            assert body.status_code == 413 and f"over the limit of {MAX_REQUEST_BYTES:,}" in body.json()["message"]
    finally:
        # Ctrl-C for ours (its clean exit is part of the test); the mlflow CLI runs uvicorn as a child.
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGINT if server == "scenesweep serve" else signal.SIGTERM)
        code = process.wait(timeout=30)
    if server == "scenesweep serve":
        assert code == 0, (tmp_path / "server.log").read_text()[-2000:]
        assert f"curl -s {url}/invocations" in (tmp_path / "server.log").read_text()


def test_explain_writes_a_heat_map_the_size_of_the_image(champion, cli, demo_dataset, tmp_path):
    photo = cv2.resize(demo_dataset.x_test[25], (120, 90), interpolation=cv2.INTER_LINEAR)
    cv2.imwrite(str(tmp_path / "photo.jpg"), photo[:, :, ::-1])
    out = tmp_path / "explained.png"
    result = cli("explain", str(tmp_path / "photo.jpg"), "--model", CHAMPION, "--out", str(out), "--class", "coast")
    assert result.returncode == 0, result.stderr
    assert "predicted" in result.stdout and "Grad-CAM of 'coast'" in result.stdout and "(120x90)" in result.stdout
    picture = cv2.imread(str(out))
    assert picture.shape == (90, 120, 3) and not np.array_equal(picture, photo[:, :, ::-1])


BAD_INPUT = [
    (
        ["predict", "--model", "models:/no-such-model@champion", "x.png"],
        "Registered Model with name=no-such-model not found",
    ),
    (["explain", "missing.png", "--model", CHAMPION, "--out", "x.png"], "image missing.png does not exist"),
    (["promote", "no-such-sweep"], "no sweep named 'no-such-sweep'"),
    (["promote", "reg-good", "--metric", "test_accuracy"], "never on test"),
]


@pytest.mark.parametrize("args, message", BAD_INPUT, ids=[" ".join(a[:2]) for a, _ in BAD_INPUT])
def test_bad_input_is_a_one_line_error(args, message, good, cli):
    one_line_error(cli(*args), message)
