"""BoVW steps 5-7 and evaluation: normalisation, reduction, classifier, stratified k-fold CV.

They work on any (images, features) matrix, so other families can put their
own encodings through them:

    from trainables.bovw.classifiers import FeatureSettings, cross_validate

    settings = FeatureSettings.from_config(config, num_classes=8, n_jobs=2, seed=0)
    result = cross_validate(features, labels, settings, folds=8)    # CVResult
    model = result.final_model  # fitted on all rows; model.predict_proba(features)

- normalisation (per image unless `standard`): none, l1, l2, power_l2 (signed
  square root, then L2), standard (a StandardScaler fitted on the training rows);
- reduction: none, pca (`pca_components`: an int keeps that many components, a
  fraction below 1 keeps that share of the variance), lda (classes-1 dimensions
  unless `lda_components` asks for fewer);
- classifier: knn (`knn_neighbors`, `knn_metric`, `knn_weights`), svm
  (`svm_kernel` linear / rbf / intersection / chi2, `svm_C`, and for rbf and
  chi2 `svm_gamma`, relative to the mean pairwise distance of the training
  features so one range suits every encoding), logistic (`logistic_C`).

SVMs train on precomputed Gram matrices (`kernel_matrix`): when the steps before
the classifier are per-image (no scaler or reduction to fit), the base matrix
of all training rows is computed once and each fold slices it. SVM
probabilities are a softmax of the one-vs-rest decision values with one
temperature fitted on the out-of-fold decisions of the CV, so the argmax is the
SVM's own decision.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin, TransformerMixin, clone
from sklearn.pipeline import Pipeline

NORMALISATIONS = ("none", "l1", "l2", "power_l2", "standard")
REDUCTIONS = ("none", "pca", "lda")
CLASSIFIERS = ("svm", "knn", "logistic")
KERNELS = ("linear", "rbf", "intersection", "chi2")
ADDITIVE_KERNELS = ("intersection", "chi2")  # defined on non-negative features only (histograms)
KNN_METRICS = ("euclidean", "manhattan", "cosine")


class ClassifierSettingsError(ValueError):
    """A normalisation / reduction / classifier combination that cannot work; the message says why."""


# --- kernels ------------------------------------------------------------------------------------


def kernel_base(kind: str, a: np.ndarray, b: np.ndarray, *, n_jobs: int = 1) -> np.ndarray:
    """The expensive part of a kernel, (len(a), len(b)) float64: a similarity (linear,
    intersection) or a distance (rbf: squared euclidean; chi2: sum (x-y)^2/(x+y))."""
    same = a is b
    a = np.asarray(a, np.float32)
    b = a if same else np.asarray(b, np.float32)
    if kind == "linear":
        return (a @ b.T).astype(np.float64)
    if kind == "rbf":
        squared = np.sum(a.astype(np.float64) ** 2, axis=1)[:, None] + np.sum(b.astype(np.float64) ** 2, axis=1)[None]
        return np.maximum(squared - 2 * (a @ b.T).astype(np.float64), 0.0)
    if kind in ADDITIVE_KERNELS:
        return _additive(kind, a, b, n_jobs=n_jobs)
    raise ClassifierSettingsError(f"unknown svm_kernel {kind!r}; choose one of {', '.join(KERNELS)}")


def _additive(kind: str, a: np.ndarray, b: np.ndarray, *, n_jobs: int = 1) -> np.ndarray:
    """Histogram intersection or chi2 distance: O(len(a) len(b) dim) elementwise work, no BLAS.

    Row by row (bounded memory); numpy releases the GIL in ufuncs, so rows split over threads.
    """
    from concurrent.futures import ThreadPoolExecutor

    if (a.size and a.min() < 0) or (b.size and b.min() < 0):
        raise ClassifierSettingsError(
            f"the {kind} kernel needs non-negative features (histograms); "
            "use the histogram encoding without standard scaling or PCA/LDA"
        )
    out = np.empty((len(a), len(b)))
    symmetric = a is b  # a Gram matrix: compute the upper triangle, mirror it

    def rows(indices):
        for i in indices:
            first = i if symmetric else 0
            other = b[first:]
            if kind == "intersection":
                out[i, first:] = np.minimum(a[i], other).sum(axis=1)
            else:
                total = a[i] + other
                difference = (a[i] - other) ** 2
                out[i, first:] = np.divide(difference, total, out=np.zeros_like(total), where=total > 0).sum(axis=1)

    jobs = max(1, min(int(n_jobs), len(a)))
    with ThreadPoolExecutor(max_workers=jobs) as pool:
        list(pool.map(rows, [np.arange(j, len(a), jobs) for j in range(jobs)]))
    if symmetric:
        upper = np.triu(out)
        out = upper + np.triu(out, 1).T
    return out


def kernel_from_base(kind: str, base: np.ndarray, gamma: float) -> np.ndarray:
    """Turn a distance base into the kernel (rbf: exp(-g d), chi2: exp(-g d)); similarities pass through."""
    if kind in ("rbf", "chi2"):
        return np.exp(-gamma * base)
    return base


class KernelSVM(ClassifierMixin, BaseEstimator):
    """libsvm's SVC on a precomputed kernel, keeping only the support vectors for prediction."""

    def __init__(self, *, kernel: str = "rbf", C: float = 1.0, gamma: float = 1.0, n_jobs: int = 1):
        self.kernel = kernel
        self.C = C
        self.gamma = gamma
        self.n_jobs = n_jobs  # threads for the additive kernels (BLAS does the others)

    def fit(self, X, y, *, base: np.ndarray | None = None) -> KernelSVM:
        from sklearn.svm import SVC

        X = np.asarray(X, np.float32)
        if base is None:
            base = kernel_base(self.kernel, X, X, n_jobs=self.n_jobs)
        if self.kernel in ("rbf", "chi2"):
            scale = float(np.mean(base))  # mean pairwise distance: gamma is relative to it
            self.gamma_ = float(self.gamma) / scale if scale > 0 else float(self.gamma)
        else:
            self.gamma_ = 1.0
        self.svc_ = SVC(kernel="precomputed", C=float(self.C), decision_function_shape="ovr", break_ties=False)
        self.svc_.fit(kernel_from_base(self.kernel, base, self.gamma_), y)
        self.classes_ = self.svc_.classes_
        self.n_fit_ = len(X)
        self.support_vectors_ = X[self.svc_.support_]
        self.temperature_ = 1.0
        if self.kernel == "linear":
            self._to_primal()
        return self

    def _to_primal(self) -> None:
        """A linear SVM keeps one weight vector per class pair instead of its support vectors
        (28 rows for 8 classes instead of ~1000): a far smaller saved model, faster predictions."""
        from sklearn.svm._base import _one_vs_one_coef

        svc = self.svc_
        if len(self.classes_) > 2:
            weights = np.vstack(_one_vs_one_coef(svc._dual_coef_, svc._n_support, self.support_vectors_))
        else:
            weights = svc._dual_coef_ @ self.support_vectors_
        self.pair_weights_ = weights.astype(np.float32)
        self.pair_intercepts_ = np.asarray(svc._intercept_, np.float64)
        self.support_vectors_ = None

    def decision_function(self, X, *, base: np.ndarray | None = None) -> np.ndarray:
        """One-vs-rest decision values; pass `base` = kernel_base(rows, training rows) instead of X
        when it is already computed."""
        support = self.svc_.support_
        if base is None and self.support_vectors_ is None:
            return self._primal_decision(np.asarray(X, np.float32))
        if base is None:
            against_support = kernel_base(self.kernel, X, self.support_vectors_, n_jobs=self.n_jobs)
        else:
            against_support = base[:, support]
        full = np.zeros((len(against_support), self.n_fit_))  # libsvm reads only the support columns
        full[:, support] = kernel_from_base(self.kernel, against_support, self.gamma_)
        decision = self.svc_.decision_function(full)
        return decision if decision.ndim == 2 else np.stack([-decision, decision], axis=1)

    def _primal_decision(self, X: np.ndarray) -> np.ndarray:
        """libsvm's one-vs-one values from the pair weights, then sklearn's one-vs-rest transform."""
        from sklearn.utils.multiclass import _ovr_decision_function

        raw = (X @ self.pair_weights_.T).astype(np.float64) + self.pair_intercepts_
        if len(self.classes_) == 2:
            decision = -raw.ravel()  # libsvm's binary sign convention, as SVC flips it
            return np.stack([-decision, decision], axis=1)
        return _ovr_decision_function(raw < 0, -raw, len(self.classes_))

    def predict_proba(self, X, *, base: np.ndarray | None = None) -> np.ndarray:
        return softmax(self.decision_function(X, base=base) / self.temperature_)

    def predict(self, X, *, base: np.ndarray | None = None) -> np.ndarray:
        return self.classes_[np.argmax(self.decision_function(X, base=base), axis=1)]

    def calibrate(self, decisions: np.ndarray, y: np.ndarray) -> KernelSVM:
        """Fit the softmax temperature on held-out decision values (minimum negative log-likelihood)."""
        self.temperature_ = fit_temperature(decisions, np.searchsorted(self.classes_, y))
        return self

    @property
    def num_params(self) -> int:
        if self.support_vectors_ is None:
            return int(self.pair_weights_.size + self.pair_intercepts_.size)
        return int(self.support_vectors_.size + self.svc_.dual_coef_.size + self.svc_.intercept_.size)


def softmax(z: np.ndarray) -> np.ndarray:
    z = z - z.max(axis=1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=1, keepdims=True)


def fit_temperature(decisions: np.ndarray, labels: np.ndarray) -> float:
    """The T minimising the NLL of softmax(decisions / T) (a 1-D search over log T)."""
    from scipy.optimize import minimize_scalar

    def nll(log_t):
        p = softmax(decisions / np.exp(log_t))
        return -np.mean(np.log(np.clip(p[np.arange(len(labels)), labels], 1e-12, 1.0)))

    return float(np.exp(minimize_scalar(nll, bounds=(-6.0, 4.0), method="bounded").x))


# --- normalisation and reduction ----------------------------------------------------------------


class SampleNormalizer(TransformerMixin, BaseEstimator):
    """Per-image normalisation (nothing to fit): none, l1, l2, power_l2."""

    def __init__(self, kind: str = "l2"):
        self.kind = kind

    def fit(self, X, y=None):
        self.n_features_in_ = np.asarray(X).shape[1]  # nothing to learn; marks it fitted for sklearn
        return self

    def transform(self, X):
        X = np.asarray(X, np.float32)
        if self.kind == "none":
            return X
        if self.kind == "power_l2":
            X = np.sign(X) * np.sqrt(np.abs(X))
        order = 1 if self.kind == "l1" else 2
        norms = np.linalg.norm(X, ord=order, axis=1, keepdims=True)
        return np.where(norms > 0, X / np.maximum(norms, 1e-12), 0.0).astype(np.float32)


@dataclass(frozen=True)
class FeatureSettings:
    normalisation: str = "l2"
    reduction: str = "none"
    pca_components: float = 0  # int >= 1: components; 0 < x < 1: share of variance kept
    lda_components: int | None = None
    classifier: str = "svm"
    svm_kernel: str = "rbf"
    svm_C: float = 1.0
    svm_gamma: float = 1.0
    knn_neighbors: int = 5
    knn_metric: str = "euclidean"
    knn_weights: str = "distance"
    logistic_C: float = 1.0
    num_classes: int = 2
    n_jobs: int = 1
    seed: int = 0

    @classmethod
    def from_config(cls, config: dict, *, num_classes: int, n_jobs: int = 1, seed: int = 0) -> FeatureSettings:
        keys = {name for name in cls.__dataclass_fields__} - {"num_classes", "n_jobs", "seed"}
        settings = cls(**{k: config[k] for k in keys if k in config}, num_classes=num_classes, n_jobs=n_jobs, seed=seed)
        settings.check()
        return settings

    def check(self) -> None:
        for value, allowed, name in (
            (self.normalisation, NORMALISATIONS, "normalisation"),
            (self.reduction, REDUCTIONS, "reduction"),
            (self.classifier, CLASSIFIERS, "classifier"),
            (self.svm_kernel, KERNELS, "svm_kernel"),
            (self.knn_metric, KNN_METRICS, "knn_metric"),
            (self.knn_weights, ("uniform", "distance"), "knn_weights"),
        ):
            if value not in allowed:
                raise ClassifierSettingsError(f"unknown {name} {value!r}; choose one of {', '.join(allowed)}")
        if self.classifier == "svm" and self.svm_kernel in ADDITIVE_KERNELS and not self.non_negative:
            raise ClassifierSettingsError(
                f"the {self.svm_kernel} kernel needs non-negative features; it cannot follow "
                f"normalisation={self.normalisation} / reduction={self.reduction} (use none, l1, l2 or power_l2 and no reduction)"
            )
        if self.reduction == "lda":
            most = self.num_classes - 1
            if self.lda_components is not None and not 1 <= int(self.lda_components) <= most:
                raise ClassifierSettingsError(
                    f"lda_components {self.lda_components} is impossible with {self.num_classes} "
                    f"classes: LDA keeps at most classes-1 = {most} dimensions"
                )
        if self.reduction == "pca" and not (0 < float(self.pca_components) < 1 or float(self.pca_components) >= 1):
            raise ClassifierSettingsError(
                f"pca_components {self.pca_components} must be a count (>= 1) or a variance share in (0, 1)"
            )

    @property
    def non_negative(self) -> bool:
        """Whether features stay non-negative through the steps (true for histograms then)."""
        return self.normalisation != "standard" and self.reduction == "none"

    @property
    def per_image(self) -> bool:
        """No step before the classifier learns anything: a kernel's base can be computed once."""
        return self.normalisation != "standard" and self.reduction == "none"

    def preprocessing(self) -> list:
        steps = [("normalise", _normaliser(self.normalisation))]
        if self.reduction == "pca":
            from sklearn.decomposition import PCA

            keep = float(self.pca_components)
            steps.append(("reduce", PCA(n_components=keep if keep < 1 else int(keep), random_state=self.seed)))
        elif self.reduction == "lda":
            from sklearn.discriminant_analysis import LinearDiscriminantAnalysis

            steps.append(
                ("reduce", LinearDiscriminantAnalysis(n_components=int(self.lda_components or self.num_classes - 1)))
            )
        return steps

    def classifier_step(self):
        if self.classifier == "svm":
            return KernelSVM(
                kernel=self.svm_kernel, C=float(self.svm_C), gamma=float(self.svm_gamma), n_jobs=self.n_jobs
            )
        if self.classifier == "knn":
            from sklearn.neighbors import KNeighborsClassifier

            return KNeighborsClassifier(
                n_neighbors=int(self.knn_neighbors),
                metric=self.knn_metric,
                weights=self.knn_weights,
                algorithm="brute",
                n_jobs=self.n_jobs,
            )
        from sklearn.linear_model import LogisticRegression

        return LogisticRegression(C=float(self.logistic_C), max_iter=500, random_state=self.seed)

    def pipeline(self) -> Pipeline:
        return Pipeline([*self.preprocessing(), ("classify", self.classifier_step())])


def _normaliser(kind: str):
    if kind == "standard":
        from sklearn.preprocessing import StandardScaler

        return StandardScaler()
    return SampleNormalizer(kind)


# --- cross-validation ---------------------------------------------------------------------------


def check_folds(labels: np.ndarray, folds: int) -> None:
    smallest = int(np.bincount(labels).min()) if len(labels) else 0
    if folds < 2 or smallest < folds:
        raise ClassifierSettingsError(
            f"{folds}-fold cross-validation needs at least {folds} images per class; "
            f"the smallest class has {smallest}; use --cv-folds {max(2, smallest)} or fewer"
        )


@dataclass(frozen=True)
class CVResult:
    accuracy: float  # mean over folds
    accuracy_std: float
    fold_accuracies: tuple[float, ...]
    final_model: Pipeline  # fitted on every row


def cross_validate(features: np.ndarray, labels: np.ndarray, settings: FeatureSettings, *, folds: int = 8) -> CVResult:
    """Stratified k-fold accuracy of the steps, then the same steps fitted on all rows."""
    from threadpoolctl import threadpool_limits

    with threadpool_limits(limits=max(1, int(settings.n_jobs))):
        return _cross_validate(features, labels, settings, folds)


def _cross_validate(features, labels, settings: FeatureSettings, folds: int) -> CVResult:
    from joblib import Parallel, delayed
    from sklearn.model_selection import StratifiedKFold

    labels = np.asarray(labels)
    check_folds(labels, folds)
    splits = list(StratifiedKFold(n_splits=folds, shuffle=True, random_state=settings.seed).split(features, labels))
    prototype = settings.pipeline()
    svm = settings.classifier == "svm"
    base = None
    if svm and settings.per_image:
        # Normalise once, compute the kernel's base once; every fold (and the final fit) slices it.
        normalised = Pipeline(settings.preprocessing()).fit_transform(features, labels)
        base = kernel_base(settings.svm_kernel, normalised, normalised, n_jobs=settings.n_jobs)

    def run_fold(train, test):
        model = clone(prototype)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # ConvergenceWarning: the best iterate is used
            if base is not None:
                model.fit(features[train], labels[train], classify__base=base[np.ix_(train, train)])
                decisions = model[-1].decision_function(None, base=base[np.ix_(test, train)])
            else:
                model.fit(features[train], labels[train])
                step = model[-1]
                transformed = model[:-1].transform(features[test]) if len(model) > 1 else features[test]
                decisions = step.decision_function(transformed) if svm else step.predict_proba(transformed)
        classes = model[-1].classes_
        accuracy = float(np.mean(classes[np.argmax(decisions, axis=1)] == labels[test]))
        return accuracy, decisions

    results = Parallel(n_jobs=settings.n_jobs, prefer="threads")(delayed(run_fold)(tr, te) for tr, te in splits)
    accuracies = [accuracy for accuracy, _ in results]
    final = clone(prototype)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        if base is not None:
            final.fit(features, labels, classify__base=base)
        else:
            final.fit(features, labels)
    if svm:
        held_out = np.zeros((len(labels), len(final[-1].classes_)))
        for (_, test), (_, decisions) in zip(splits, results):
            held_out[test] = decisions
        final[-1].calibrate(held_out, labels)
    return CVResult(
        accuracy=float(np.mean(accuracies)),
        accuracy_std=float(np.std(accuracies)),
        fold_accuracies=tuple(accuracies),
        final_model=final,
    )


def pipeline_params(model: Pipeline) -> int:
    """Fitted numbers in the steps after the encoder (the `params` BoVW reports)."""
    total = 0
    for _, step in model.steps:
        if isinstance(step, KernelSVM):
            total += step.num_params
        for attribute in ("components_", "scalings_", "coef_", "intercept_", "mean_", "scale_", "_fit_X"):
            value = getattr(step, attribute, None)
            if isinstance(value, np.ndarray):
                total += value.size
    return int(total)
