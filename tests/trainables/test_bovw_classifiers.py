"""BoVW classifier steps: valid kernels, normalisations, impossible settings, stratified CV."""

import numpy as np
import pytest
from sklearn.metrics.pairwise import chi2_kernel, rbf_kernel

from tests.trainables.bovw_images import real_images
from trainables.bovw.classifiers import (
    ClassifierSettingsError,
    FeatureSettings,
    KernelSVM,
    SampleNormalizer,
    cross_validate,
    fit_temperature,
    kernel_base,
    kernel_from_base,
    pipeline_params,
    softmax,
)
from trainables.bovw.descriptors import DescriptorSpec, extract_descriptors
from trainables.bovw.encoding import BovwEncoder


@pytest.fixture(scope="module")
def histograms(mit_split_64):
    """Real spatial-pyramid histograms of 6 photographs per class, and their labels."""
    images, labels = real_images(mit_split_64, per_class=6)
    found = extract_descriptors(images, DescriptorSpec(step=8, sizes=(8,)))
    encoder = BovwEncoder(encoding="histogram", codebook_size=48, pyramid_levels=1, seed=0).fit(found)
    return encoder.transform(found), labels


@pytest.mark.parametrize("kind", ["linear", "rbf", "intersection", "chi2"])
def test_kernels_are_valid_gram_matrices(histograms, kind):
    features, _ = histograms
    base = kernel_base(kind, features, features)
    gram = kernel_from_base(kind, base, 1.0 / np.mean(base) if kind in ("rbf", "chi2") else 1.0)
    assert gram.shape == (len(features), len(features))
    assert np.allclose(gram, gram.T, atol=1e-6)  # symmetric
    eigenvalues = np.linalg.eigvalsh((gram + gram.T) / 2)
    assert eigenvalues.min() > -1e-6 * abs(eigenvalues.max())  # positive semi-definite
    # and the blocked computation between two different sets agrees with the square one
    assert np.allclose(kernel_base(kind, features[:5], features[3:]), base[:5, 3:], rtol=1e-4, atol=1e-6)


def test_kernels_agree_with_their_definitions(histograms):
    features, _ = histograms
    a, b = features[:7].astype(np.float64), features[7:19].astype(np.float64)
    intersection = np.array([[np.minimum(x, y).sum() for y in b] for x in a])
    assert np.allclose(kernel_base("intersection", a, b), intersection, atol=1e-5)
    assert np.allclose(kernel_from_base("rbf", kernel_base("rbf", a, b), 0.7), rbf_kernel(a, b, gamma=0.7), atol=1e-5)
    assert np.allclose(
        kernel_from_base("chi2", kernel_base("chi2", a, b), 0.7), chi2_kernel(a, b, gamma=0.7), atol=1e-5
    )


@pytest.mark.parametrize("kind", ["intersection", "chi2"])
def test_additive_kernels_refuse_signed_features(kind):
    with pytest.raises(ClassifierSettingsError, match="non-negative"):
        kernel_base(kind, -np.ones((2, 3)), np.ones((2, 3)))


@pytest.mark.parametrize(
    "kind, check",
    [
        ("none", lambda x, y: np.array_equal(x, y)),
        ("l1", lambda x, y: np.allclose(np.abs(y[:-1]).sum(axis=1), 1)),
        ("l2", lambda x, y: np.allclose(np.linalg.norm(y[:-1], axis=1), 1)),
        (
            "power_l2",
            lambda x, y: np.allclose(y[:-1], np.sqrt(x[:-1]) / np.linalg.norm(np.sqrt(x[:-1]), axis=1, keepdims=True)),
        ),
    ],
)
def test_sample_normalisations(histograms, kind, check):
    features = np.vstack([histograms[0], np.zeros((1, histograms[0].shape[1]), np.float32)])
    normalised = SampleNormalizer(kind).fit_transform(features)
    assert check(features, normalised)
    assert not normalised[-1].any()  # an empty image stays zero, no NaN


@pytest.mark.parametrize(
    "config, message",
    [
        ({"reduction": "lda", "lda_components": 8}, "LDA keeps at most classes-1 = 7"),
        ({"svm_kernel": "chi2", "normalisation": "standard"}, "needs non-negative features"),
        ({"svm_kernel": "intersection", "reduction": "pca", "pca_components": 16}, "needs non-negative features"),
        ({"classifier": "forest"}, "unknown classifier 'forest'"),
        ({"pca_components": -3, "reduction": "pca"}, "pca_components -3"),
    ],
)
def test_impossible_settings_say_why(config, message):
    with pytest.raises(ClassifierSettingsError, match=message):
        FeatureSettings.from_config(config, num_classes=8)


PIPELINES = [
    {"classifier": "svm", "svm_kernel": "linear", "normalisation": "l2"},
    {"classifier": "svm", "svm_kernel": "rbf", "normalisation": "power_l2", "svm_C": 10.0},
    {"classifier": "svm", "svm_kernel": "intersection", "normalisation": "none"},
    {"classifier": "svm", "svm_kernel": "chi2", "normalisation": "l1", "svm_gamma": 2.0},
    {"classifier": "svm", "svm_kernel": "rbf", "normalisation": "standard", "reduction": "pca", "pca_components": 0.9},
    {"classifier": "knn", "knn_neighbors": 3, "knn_metric": "cosine", "normalisation": "l2"},
    {"classifier": "knn", "knn_neighbors": 5, "knn_metric": "manhattan", "reduction": "lda"},
    {
        "classifier": "logistic",
        "logistic_C": 10.0,
        "normalisation": "standard",
        "reduction": "pca",
        "pca_components": 16,
    },
]


@pytest.mark.parametrize("config", PIPELINES, ids=lambda c: "-".join(str(v) for v in c.values()))
def test_cross_validation_of_every_step_combination(histograms, config):
    features, labels = histograms
    settings = FeatureSettings.from_config(config, num_classes=8, seed=0)
    result = cross_validate(features, labels, settings, folds=3)
    assert len(result.fold_accuracies) == 3
    assert result.accuracy == pytest.approx(np.mean(result.fold_accuracies))
    assert result.accuracy_std == pytest.approx(np.std(result.fold_accuracies))
    assert result.accuracy > 0.25  # 8 classes, 16 training images each fold: well above chance (0.125)
    probabilities = result.final_model.predict_proba(features)
    assert probabilities.shape == (len(labels), 8) and np.allclose(probabilities.sum(axis=1), 1)
    assert pipeline_params(result.final_model) > 0


def test_svm_probabilities_keep_the_svm_decision_and_are_calibrated(histograms):
    features, labels = histograms
    settings = FeatureSettings.from_config({"svm_kernel": "rbf", "normalisation": "l2"}, num_classes=8)
    model = cross_validate(features, labels, settings, folds=3).final_model
    svm = model[-1]
    normalised = model[:-1].transform(features)
    assert np.array_equal(np.argmax(model.predict_proba(features), axis=1), svm.predict(normalised))
    assert svm.temperature_ != 1.0  # fitted on the out-of-fold decisions


def test_precomputed_base_gives_the_same_svm(histograms):
    """The CV's shortcut (one kernel base for all folds) trains exactly the SVM a plain fit does."""
    features, labels = histograms
    train, test = np.arange(0, 48, 2), np.arange(1, 48, 2)
    base = kernel_base("chi2", features, features)
    plain = KernelSVM(kernel="chi2", C=3.0).fit(features[train], labels[train])
    shortcut = KernelSVM(kernel="chi2", C=3.0).fit(features[train], labels[train], base=base[np.ix_(train, train)])
    assert np.allclose(
        plain.decision_function(features[test]), shortcut.decision_function(None, base=base[np.ix_(test, train)])
    )


def test_more_folds_than_the_smallest_class_is_refused(histograms):
    features, labels = histograms
    with pytest.raises(ClassifierSettingsError, match="use --cv-folds 6 or fewer"):
        cross_validate(features, labels, FeatureSettings(num_classes=8), folds=7)


def test_temperature_lowers_the_held_out_loss():
    rng = np.random.default_rng(0)
    labels = rng.integers(0, 4, 400)
    decisions = rng.normal(size=(400, 4)) + 3 * np.eye(4)[labels]  # right class favoured, noisily
    temperature = fit_temperature(decisions * 10, labels)  # overconfident scores
    nll = lambda t: -np.mean(np.log(softmax(decisions * 10 / t)[np.arange(400), labels]))  # noqa: E731
    assert temperature > 1 and nll(temperature) < nll(1.0)


@pytest.mark.parametrize("classes", [2, 8])
def test_linear_svm_keeps_pair_weights_and_decides_as_libsvm(histograms, classes):
    features, labels = histograms
    rows = labels < classes
    x, y = features[rows], labels[rows]
    svm = KernelSVM(kernel="linear", C=5.0).fit(x, y)
    assert svm.support_vectors_ is None and svm.pair_weights_.shape == (classes * (classes - 1) // 2, x.shape[1])
    through_libsvm = svm.decision_function(None, base=kernel_base("linear", x, x))
    assert np.allclose(svm.decision_function(x), through_libsvm, atol=1e-4)
    assert np.array_equal(svm.predict(x), svm.classes_[np.argmax(through_libsvm, axis=1)])
