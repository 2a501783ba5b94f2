"""The logged pyfunc model takes raw images in every form a client sends them, at any size."""

import base64

import cv2
import mlflow
import numpy as np
import pandas as pd
import pytest
from mlflow.exceptions import MlflowException

from tracking.uris import fluent_store
from trainables.core.images import encode_png


@pytest.fixture(scope="module")
def model(local_store):
    with fluent_store(local_store.uri):
        return mlflow.pyfunc.load_model(local_store.trials[0].model_uri)


@pytest.fixture(scope="module")
def photos(demo_dataset):
    """Demo test images blown up to odd, non-square sizes, as a camera would not deliver 32x32."""
    return [
        cv2.resize(image, size, interpolation=cv2.INTER_LINEAR)
        for image, size in zip(demo_dataset.x_test[::40], [(97, 64), (64, 150), (200, 120), (33, 33)])
    ]


def jpeg(image):
    return cv2.imencode(".jpg", image[:, :, ::-1], [cv2.IMWRITE_JPEG_QUALITY, 95])[1].tobytes()


def predict(model, values):
    return model.predict(pd.DataFrame({"image": values}))


def test_bytes_arrays_and_base64_give_the_same_probabilities(model, photos, local_store):
    reference = predict(model, [encode_png(p) for p in photos])
    assert list(reference.columns) == local_store.class_names
    assert np.allclose(reference.to_numpy().sum(axis=1), 1.0, atol=1e-5)
    as_arrays = predict(model, list(photos))
    as_base64_text = predict(model, [base64.b64encode(encode_png(p)).decode() for p in photos])
    as_base64_bytes = predict(model, [base64.encodebytes(encode_png(p)) for p in photos])  # `inputs` JSON
    for other in (as_arrays, as_base64_text, as_base64_bytes):
        assert np.allclose(other.to_numpy(), reference.to_numpy(), atol=1e-6)


def test_grey_rgba_and_jpeg_images_are_accepted(model, photos):
    grey = cv2.cvtColor(photos[0], cv2.COLOR_RGB2GRAY)
    rgba = np.dstack([photos[1], np.full(photos[1].shape[:2], 255, np.uint8)])
    out = predict(model, [grey, rgba, jpeg(photos[2]), cv2.imencode(".png", grey)[1].tobytes()])
    assert out.shape == (4, 8) and np.allclose(out.to_numpy().sum(axis=1), 1.0, atol=1e-5)
    assert np.allclose(out.iloc[0], out.iloc[3], atol=1e-6)  # grey array == grey PNG
    assert np.allclose(out.iloc[1], predict(model, [photos[1]]).iloc[0], atol=1e-6)  # alpha dropped


def test_a_value_that_is_not_an_image_is_a_client_error(model, photos):
    with pytest.raises(MlflowException, match="image 1: not a decodable image") as error:
        predict(model, [encode_png(photos[0]), b"hello, not an image"])
    assert error.value.error_code == "INVALID_PARAMETER_VALUE"


def test_the_model_is_filed_under_its_runs_experiment(local_store):
    """Not under MLflow's Default experiment (whose artifacts would land in ./mlruns of the worker)."""
    for trial in local_store.trials:
        model = local_store.client.get_logged_model(trial.model_uri.removeprefix("models:/"))
        experiment = local_store.client.get_experiment(local_store.client.get_run(trial.run_id).info.experiment_id)
        assert model.experiment_id == experiment.experiment_id and experiment.name == "registry-tests"
        assert model.artifact_location.startswith(experiment.artifact_location)


def test_the_model_carries_its_code_as_one_archive_and_runs_from_it(local_store, demo_dataset, tmp_path):
    """One upload for the code (not one per source file), and a process without the project loads
    the packages from the model's own archive and predicts what this process does."""
    import json
    import os
    import subprocess
    import sys

    with fluent_store(local_store.uri):
        folder = mlflow.artifacts.download_artifacts(local_store.trials[0].model_uri, dst_path=str(tmp_path / "model"))
    code = sorted(p.name for p in (tmp_path / "model" / "code").iterdir())
    assert code == ["scenesweep_code.zip"], code
    images = [encode_png(image) for image in demo_dataset.x_test[:3]]
    expected = predict(mlflow.pyfunc.load_model(folder), images).to_numpy()
    script = (
        "import json, sys, mlflow, pandas as pd, base64\n"
        "model = mlflow.pyfunc.load_model(sys.argv[1])\n"
        "import trainables, serving\n"
        "images = [base64.b64decode(v) for v in json.loads(sys.argv[2])]\n"
        "out = model.predict(pd.DataFrame({'image': images}))\n"
        "print(json.dumps({'trainables': trainables.__file__, 'serving': serving.__file__,\n"
        "                  'probabilities': out.to_numpy().tolist()}))\n"
    )
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    payload = json.dumps([base64.b64encode(image).decode() for image in images])
    result = subprocess.run(
        [sys.executable, "-c", script, folder, payload], cwd=tmp_path, env=env, capture_output=True, text=True
    )
    assert result.returncode == 0, result.stderr[-3000:]
    seen = json.loads(result.stdout.strip().splitlines()[-1])
    assert "scenesweep_code.zip" in seen["trainables"] and "scenesweep_code.zip" in seen["serving"]
    assert np.allclose(np.array(seen["probabilities"]), expected, atol=1e-6)
