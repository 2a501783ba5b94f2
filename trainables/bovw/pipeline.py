"""BoVW: the paper's classic pipeline as one trainable.

    images -> descriptors (bovw_descriptors, cached: descriptor_cache)
           -> RootSIFT/PCA -> codebook or GMM -> histogram / Fisher / VLAD per pyramid cell (bovw_encoding)
           -> normalisation -> reduction -> kNN / SVM / logistic regression (bovw_classifiers)

The search metric is `cv_accuracy`: stratified k-fold cross-validation
(`--cv-folds`, default 8 as in the paper) over all the non-test images (the
dataset's train and validation splits together; BoVW needs no separate
validation split). The unsupervised steps (descriptor PCA, codebook or GMM)
are fitted once on a seeded sample of those images' descriptors; everything
supervised (and any scaler or reduction) is refitted inside every fold. The
final model is then fitted on all the non-test images; test images are only
ever scored by the trial after fit() returns.

The fitted pipeline is a `BovwClassifier`, saved with joblib into the trial's
pyfunc model, so the served model extracts, encodes and classifies raw images
itself.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from search_spaces.bovw import MAX_ADDITIVE_FEATURES, MAX_FEATURES
from trainables.bovw.cache import DescriptorCache
from trainables.bovw.classifiers import (
    ADDITIVE_KERNELS,
    ClassifierSettingsError,
    FeatureSettings,
    check_folds,
    cross_validate,
    pipeline_params,
)
from trainables.bovw.descriptors import DescriptorError, DescriptorSet, DescriptorSpec, extract_descriptors
from trainables.bovw.encoding import BovwEncoder, EncodingError, pyramid_cells
from trainables.core.classifier import SceneClassifier
from trainables.core.session import TrialFailed

DEFAULT_CV_FOLDS = 8
CODEBOOK_SAMPLE = 64_000  # training descriptors sampled to fit PCA, codebook and GMM (>= 15 per word at 4096)
_PIPELINE_FILE = "bovw_pipeline.joblib"


def fit(config: dict, dataset, session) -> BovwClassifier:
    threads = max(1, int(session.threads))
    folds = int(session.options.get("cv_folds") or DEFAULT_CV_FOLDS)
    seed = int(np.random.randint(0, 2**31 - 1))  # drawn after the trial seeded numpy from --seed
    images = np.concatenate([dataset.x_train, dataset.x_val])
    labels = np.concatenate([dataset.y_train, dataset.y_val])
    try:  # everything that can be known to fail fails here, before any extraction
        spec = DescriptorSpec.from_config(config)
        encoder = encoder_from_config(config, seed=seed, n_jobs=threads)
        check_encoding(config, spec)
        settings = FeatureSettings.from_config(config, num_classes=dataset.num_classes, n_jobs=threads, seed=seed)
        check_folds(labels, folds)
    except (DescriptorError, EncodingError, ClassifierSettingsError) as exc:
        raise TrialFailed(str(exc)) from None
    cache = DescriptorCache(session.options.get("cache_dir"))
    descriptors = cache.get(images, spec, n_jobs=threads)
    try:
        started = time.perf_counter()
        encoder.fit(descriptors)
        features = encoder.transform(descriptors)
        encode_seconds = time.perf_counter() - started
        started = time.perf_counter()
        result = cross_validate(features, labels, settings, folds=folds)
        classify_seconds = time.perf_counter() - started
    except (EncodingError, ClassifierSettingsError) as exc:
        raise TrialFailed(str(exc)) from None
    pipeline = BovwPipeline(spec=spec, encoder=encoder, model=result.final_model, n_jobs=threads)
    classifier = BovwClassifier(pipeline, class_names=dataset.class_names, image_size=dataset.image_size)
    classifier.attach_cache(cache)
    classifier.training_metrics = {
        "cv_accuracy": result.accuracy,
        "cv_accuracy_std": result.accuracy_std,
        "cv_folds": folds,
        "feature_dim": encoder.feature_dim,
        "empty_images_train": encoder.empty_images(descriptors),
        "descriptors_per_image": float(np.mean(descriptors.counts)) if len(descriptors) else 0.0,
        "encode_seconds": encode_seconds,
        "classify_seconds": classify_seconds,
    }
    return classifier


def encoder_from_config(config: dict, *, seed: int, n_jobs: int = 1) -> BovwEncoder:
    return BovwEncoder(
        encoding=str(config.get("encoding", "fisher")),
        codebook_size=int(config.get("codebook_size", 256)),
        gmm_components=int(config.get("gmm_components", 16)),
        vlad_clusters=int(config.get("vlad_clusters", 64)),
        descriptor_pca=int(config.get("descriptor_pca", 0) or 0),
        rootsift=bool(config.get("rootsift", False)),
        pyramid_levels=int(config.get("pyramid_levels", 0)),
        sample_size=CODEBOOK_SAMPLE,
        seed=seed,
        n_jobs=n_jobs,
    )


def check_encoding(config: dict, spec: DescriptorSpec) -> None:
    """Refuse, before any work, encodings the space never proposes: too long, or signed features
    for a kernel that needs histograms."""
    encoding = config.get("encoding", "fisher")
    additive = config.get("classifier", "svm") == "svm" and config.get("svm_kernel") in ADDITIVE_KERNELS
    if additive and encoding != "histogram":
        raise EncodingError(
            f"the {config['svm_kernel']} kernel needs non-negative histograms; {encoding} encodings "
            "are signed: use encoding=histogram or the linear / rbf kernel"
        )
    dim = int(config.get("descriptor_pca", 0) or 0) or spec.dim
    per_cell = {
        "histogram": int(config.get("codebook_size", 256)),
        "fisher": 2 * int(config.get("gmm_components", 16)) * dim,
        "vlad": int(config.get("vlad_clusters", 64)) * dim,
    }.get(encoding)
    if per_cell is None:
        raise EncodingError(f"unknown encoding {encoding!r}; choose one of histogram, fisher, vlad")
    total = per_cell * pyramid_cells(int(config.get("pyramid_levels", 0)))
    limit = MAX_ADDITIVE_FEATURES if additive else MAX_FEATURES
    if total > limit:
        raise EncodingError(
            f"this {encoding} encoding has {total} dimensions per image, more than the {limit} allowed"
            f"{' with the ' + config['svm_kernel'] + ' kernel' if additive else ''}; use fewer "
            "words/components, a smaller descriptor_pca or fewer pyramid levels"
        )


@dataclass
class BovwPipeline:
    """Everything fitted, from raw images to class probabilities (what the served model runs)."""

    spec: DescriptorSpec
    encoder: BovwEncoder
    model: Any  # sklearn Pipeline: normalise -> reduce -> classify
    n_jobs: int = 1

    def encode(self, descriptors: DescriptorSet) -> np.ndarray:
        return self.encoder.transform(descriptors)

    def predict_proba_descriptors(self, descriptors: DescriptorSet) -> np.ndarray:
        return self.model.predict_proba(self.encode(descriptors))

    @property
    def num_params(self) -> int:
        return self.encoder.num_params + pipeline_params(self.model)


class BovwClassifier(SceneClassifier):
    def __init__(self, pipeline: BovwPipeline, *, class_names, image_size: int):
        super().__init__(class_names=class_names, image_size=image_size)
        self.pipeline = pipeline
        self.training_metrics: dict = {}
        self.empty_images_predicted = 0
        self._cache: DescriptorCache | None = None

    def attach_cache(self, cache: DescriptorCache | None) -> None:
        """Look descriptors up in `cache` when predicting (during the trial; never saved)."""
        self._cache = cache

    def predict_proba(self, images: np.ndarray) -> np.ndarray:
        images = np.asarray(images)
        if len(images) == 0:
            return np.zeros((0, len(self.class_names)))
        spec, jobs = self.pipeline.spec, self.pipeline.n_jobs
        if self._cache is not None:
            descriptors = self._cache.get(images, spec, n_jobs=jobs)
        else:
            descriptors = extract_descriptors(images, spec, n_jobs=jobs)
        self.empty_images_predicted += int(np.count_nonzero(descriptors.counts == 0))
        probabilities = self.pipeline.predict_proba_descriptors(descriptors)
        return self._full_columns(probabilities)

    def _full_columns(self, probabilities: np.ndarray) -> np.ndarray:
        """Columns for every class, also ones the model never saw in training (probability 0)."""
        classes = self.pipeline.model.classes_
        if len(classes) == len(self.class_names):
            return probabilities
        full = np.zeros((len(probabilities), len(self.class_names)))
        full[:, classes] = probabilities
        return full

    @property
    def num_params(self) -> int:
        return self.pipeline.num_params

    @property
    def extra_metrics(self) -> dict:
        metrics = dict(self.training_metrics)
        metrics["empty_images_predicted"] = self.empty_images_predicted
        if self._cache is not None:
            metrics.update(self._cache.stats.as_metrics())
        return metrics

    def save_state(self, directory: Path) -> dict:
        import joblib

        joblib.dump(self.pipeline, Path(directory) / _PIPELINE_FILE)
        return {"pipeline": _PIPELINE_FILE, "cv_accuracy": self.training_metrics.get("cv_accuracy")}

    @classmethod
    def load_state(cls, directory: Path, state: dict, *, class_names, image_size: int) -> BovwClassifier:
        import joblib

        pipeline = joblib.load(Path(directory) / state["pipeline"])
        return cls(pipeline, class_names=class_names, image_size=image_size)
