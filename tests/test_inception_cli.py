"""InceptionV3 through the real CLI: weight errors stop the sweep before it starts (exit 2, one line),
and a small sweep on `demo` lands in MLflow with its weights recorded and a model that serves."""

import pytest

from tests.conftest import run_cli
from tests.sweep_checks import assert_model_matches_logged_predictions, assert_sweep_recorded

# An early cut at InceptionV3's smallest input: a CPU trial takes seconds.
SMALL = ["--fix", "mode=cut", "--fix", "cut_after=Mixed_5b", "--fix", "input_size=75", "--fix", "batch_size=32"]


def assert_one_line_error(result, *fragments):
    assert result.returncode == 2, result.stdout[-2000:] + result.stderr[-2000:]
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in result.stderr, result.stderr
    assert lines[0].startswith("scenesweep: error: --weights")
    for fragment in fragments:
        assert fragment in lines[0], lines[0]


def test_missing_imagenet_weights_offline_stop_the_sweep(tmp_path):
    torch_home = tmp_path / "empty-torch-home"
    torch_home.mkdir()
    result = run_cli(
        "sweep",
        "--space",
        "inception",
        "--data",
        "demo",
        cwd=tmp_path,
        env={"TORCH_HOME": str(torch_home)},
        timeout=120,
    )
    expected = torch_home / "hub" / "checkpoints" / "inception_v3_google-0cc3c7bd.pth"
    assert_one_line_error(
        result, "place inception_v3_google-0cc3c7bd.pth", f"at {expected}", "--weights PATH", "--weights none"
    )
    assert not (tmp_path / "mlruns.db").exists() and not (tmp_path / "sweeps").exists()  # nothing started


@pytest.mark.parametrize(
    "args, fragments",
    [
        (["--space", "inception", "--weights", "no/such.pth"], ["no/such.pth: no such file"]),
        (["--space", "tinynet", "--weights", "none"], ["applies to --space inception, not tinynet"]),
    ],
)
def test_bad_weights_flags_are_one_line_errors(tmp_path, args, fragments):
    assert_one_line_error(run_cli("sweep", "--data", "demo", *args, cwd=tmp_path, timeout=120), *fragments)


@pytest.mark.slow
def test_small_sweep_on_demo_records_weights_and_serves(tmp_path, inception_weights_file, demo_dataset):
    result = run_cli(
        "sweep",
        "--space",
        "inception",
        "--data",
        "demo",
        "--per-class",
        "50",
        "--samples",
        "2",
        "--epochs",
        "2",
        "--weights",
        str(inception_weights_file),
        "--name",
        "inception-demo",
        *SMALL,
        cwd=tmp_path,
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    uri = f"sqlite:///{tmp_path / 'mlruns.db'}"
    client, parent, finished = assert_sweep_recorded(
        uri, "inception-demo", experiment="scenesweep-inception", trials=2, epochs=2
    )
    assert parent.data.params["options.weights"] == str(inception_weights_file)
    for run in finished:
        assert run.data.params["weights"] == str(inception_weights_file)
        assert run.data.params["mode"] == "cut" and run.data.params["cut_after"] == "Mixed_5b"
        assert run.data.metrics["params"] == run.data.metrics["total_params"] > 0  # cut: everything retrains
    # The first trial is the paper's configuration (SGD, lr 0.001, momentum 0.9, flips) under the pins.
    first = next(r for r in finished if r.data.params["optimizer"] == "sgd" and r.data.params["lr"] == "0.001")
    assert first.data.params["momentum"] == "0.9" and first.data.params["aug_hflip"] == "True"
    assert_model_matches_logged_predictions(uri, client, finished[0], demo_dataset)
    # Grad-CAM of the best trial, through the cut network's last kept block.
    best = max(finished, key=lambda r: r.data.metrics["val_accuracy"])
    assert "gradcam.png" in {a.path for a in client.list_artifacts(best.info.run_id)}
    assert f"gradcam.png in run {best.info.run_id}" in result.stdout
