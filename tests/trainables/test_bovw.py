"""The BoVW trainable: CV metrics, the cache across trials, save/load, empty images, clear failures."""

from dataclasses import replace

import numpy as np
import pytest

from trainables.bovw.pipeline import BovwClassifier
from trainables.core.classifier import SceneClassifier
from trainables.core.session import TrialFailed, TrialSession
from trainables.training import fit_and_evaluate, seed_everything

FAST = {  # a few seconds on the demo data
    "descriptor": "dense_sift",
    "upscale": 1,
    "dense_step": 12,
    "patch_sizes": "8",
    "color": "grey",
    "encoding": "fisher",
    "descriptor_pca": 16,
    "gmm_components": 8,
    "pyramid_levels": 1,
    "normalisation": "power_l2",
    "reduction": "none",
    "classifier": "svm",
    "svm_kernel": "rbf",
    "svm_C": 10.0,
    "svm_gamma": 1.0,
}


def session(tmp_path, folds=4):
    return TrialSession(max_epochs=1, threads=2, options={"cache_dir": str(tmp_path), "cv_folds": folds})


def train(config, dataset, tmp_path, **kwargs):
    seed_everything(0)
    return fit_and_evaluate(config, dataset, "bovw", session(tmp_path, **kwargs))


def test_trial_reports_cv_metrics_and_reuses_descriptors(demo_dataset, tmp_path):
    first = train(FAST, demo_dataset, tmp_path)
    metrics = first.metrics
    assert 0.5 < metrics["cv_accuracy"] <= 1 and 0 <= metrics["cv_accuracy_std"] < 0.5
    assert metrics["cv_folds"] == 4 and metrics["feature_dim"] == 2 * 8 * 16 * 5
    assert metrics["test_accuracy"] > 0.5 and metrics["params"] > 0
    assert (metrics["descriptor_cache_misses"], metrics["descriptor_cache_hits"]) == (2, 0)  # train+val, test
    # Another trial with the same descriptors and a different everything-else: no extraction at all.
    second = train(
        {**FAST, "encoding": "histogram", "codebook_size": 64, "classifier": "logistic", "logistic_C": 1.0},
        demo_dataset,
        tmp_path,
    )
    assert (second.metrics["descriptor_cache_misses"], second.metrics["descriptor_cache_hits"]) == (0, 2)
    assert second.metrics["descriptor_extract_seconds"] == 0


def test_saved_pipeline_predicts_what_the_trial_evaluated(demo_dataset, tmp_path):
    outcome = train(
        {**FAST, "classifier": "knn", "knn_neighbors": 3, "knn_metric": "cosine", "knn_weights": "distance"},
        demo_dataset,
        tmp_path,
    )
    saved = outcome.classifier.save(tmp_path / "model")
    loaded = SceneClassifier.load(saved)
    assert isinstance(loaded, BovwClassifier) and loaded.class_names == list(demo_dataset.class_names)
    probabilities = loaded.predict_proba(demo_dataset.x_test)  # extracts itself: no cache attached
    assert np.allclose(probabilities, outcome.test.probabilities, atol=1e-6)


def test_images_without_keypoints_are_counted_not_fatal(demo_dataset, tmp_path):
    flat = np.full_like(demo_dataset.x_train[:6], 127)
    dataset = replace(
        demo_dataset,
        x_train=np.concatenate([demo_dataset.x_train[:-6], flat]),
        x_test=np.concatenate([demo_dataset.x_test[:-2], flat[:2]]),
    )
    config = {
        **FAST,
        "descriptor": "sift",
        "keypoints": 200,
        "upscale": 1,
        "encoding": "vlad",
        "vlad_clusters": 16,
        "descriptor_pca": 16,
        "pyramid_levels": 0,
        "classifier": "logistic",
        "logistic_C": 10.0,
    }
    outcome = train(config, dataset, tmp_path)
    assert outcome.metrics["empty_images_train"] >= 6 and outcome.metrics["empty_images_predicted"] >= 2
    assert np.allclose(outcome.test.probabilities[-2:].sum(axis=1), 1)


def tiny(dataset, per_class):
    keep = np.concatenate([np.flatnonzero(dataset.y_train == c)[:per_class] for c in range(dataset.num_classes)])
    none = np.zeros(0, dtype=int)
    return replace(
        dataset,
        x_train=dataset.x_train[keep],
        y_train=dataset.y_train[keep],
        x_val=dataset.x_val[none],
        y_val=dataset.y_val[none],
    )


@pytest.mark.parametrize(
    "config, message",
    [
        ({"descriptor": "surf"}, "SURF is patented"),
        ({"reduction": "lda", "lda_components": 9}, "LDA keeps at most classes-1 = 7"),
        ({"svm_kernel": "chi2"}, "needs non-negative histograms; fisher encodings are signed"),
        ({"gmm_components": 128, "descriptor_pca": 64, "pyramid_levels": 2}, "more than the 32768 allowed"),
        ({"cv_folds": 500}, "use --cv-folds 60 or fewer"),
    ],
)
def test_impossible_configurations_fail_fast_and_clearly(demo_dataset, tmp_path, config, message):
    folds = config.pop("cv_folds", 4)
    with pytest.raises(TrialFailed, match=message):
        train({**FAST, **config}, demo_dataset, tmp_path, folds=folds)
    assert not list((tmp_path / "descriptors").glob("*.npz"))  # refused before any extraction


def test_more_words_than_descriptors_is_a_clear_failure(demo_dataset, tmp_path):
    small = tiny(demo_dataset, per_class=2)  # 16 images x 16 grid descriptors = 256 descriptors
    config = {**FAST, "dense_step": 16, "encoding": "histogram", "codebook_size": 1000}
    with pytest.raises(TrialFailed, match="codebook_size 1000 is more than the 256 descriptors"):
        train(config, small, tmp_path, folds=2)
