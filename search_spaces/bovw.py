"""BoVW's search space (define-by-run: each step's parameters appear only where they apply).

Combinations that cannot work are never proposed:
- the classifier is chosen first, so that the histogram-intersection and chi2
  kernels (defined on non-negative histograms) come with the histogram encoding
  and no standard scaling or PCA/LDA, instead of failing later;
- word / component counts have an upper bound that depends on the pyramid
  levels and descriptor PCA, so an encoding never exceeds
  `MAX_FEATURES` dimensions (`MAX_ADDITIVE_FEATURES` for the
  intersection and chi2 kernels, whose cost grows with the dimension).
What depends on the data (more codebook words than sampled descriptors, more
LDA dimensions than classes-1, CV folds above the smallest class) is checked
by the trainable and reported as a clear trial failure.
"""

from __future__ import annotations

MAX_FEATURES = 32768  # encoded dimensions per image; beyond this memory and SVM models grow unreasonably
# Histogram-intersection / chi2 kernels cost len^2 * dims elementwise work without BLAS: keep them shorter.
MAX_ADDITIVE_FEATURES = 8192
SURF_UNAVAILABLE = (
    "SURF is patented (non-free) and is not in the pip builds of OpenCV "
    "(opencv-contrib-python-headless); use sift, dense_sift, daisy or orb instead"
)

# The paper's best BoVW: dense SIFT, Fisher vectors from a 16-component GMM on PCA-32 descriptors,
# RBF SVM (0.80 test accuracy on the full-size images). 64-pixel images are upscaled to 128 first.
PAPER_BEST = {
    "classifier": "svm",
    "svm_kernel": "rbf",
    "svm_C": 10.0,
    "svm_gamma": 1.0,
    "descriptor": "dense_sift",
    "upscale": 2,
    "dense_step": 8,
    "patch_sizes": "8,16",
    "color": "grey",
    "rootsift": False,
    "encoding": "fisher",
    "pyramid_levels": 0,
    "descriptor_pca": 32,
    "gmm_components": 16,
    "normalisation": "power_l2",
    "reduction": "none",
}

# Where the default search goes next: the plain pipeline of shared NOTES (RootSIFT on the paper's
# dense descriptors, PCA 64, a 32-component Fisher vector over a 1x1 + 2x2 pyramid, power + L2, a
# linear SVM at C = 1; about 0.885 test on mit_split_64). It shares the paper's descriptors (a warm
# cache), and the search has to beat it.
SEARCH_STARTS = [
    {
        **{key: value for key, value in PAPER_BEST.items() if key != "svm_gamma"},  # a linear kernel has none
        "svm_kernel": "linear",
        "svm_C": 1.0,
        "rootsift": True,
        "pyramid_levels": 1,
        "descriptor_pca": 64,
        "gmm_components": 32,
    }
]

# Values a user may ask for with --fix that exist in the literature but not here, and why.
UNAVAILABLE = {"descriptor": {"surf": SURF_UNAVAILABLE}}

DESCRIPTORS = ["sift", "dense_sift", "daisy", "orb"]
PATCH_SIZES = ["4", "8", "16", "4,8", "8,16"]


def suggest(trial) -> dict:
    constants = {}
    classifier = trial.suggest_categorical("classifier", ["svm", "knn", "logistic"])
    additive = False
    if classifier == "svm":
        kernel = trial.suggest_categorical("svm_kernel", ["linear", "rbf", "intersection", "chi2"])
        trial.suggest_float("svm_C", 1e-2, 1e3, log=True)
        if kernel in ("rbf", "chi2"):
            trial.suggest_float("svm_gamma", 0.1, 10.0, log=True)  # relative to the mean pairwise distance
        additive = kernel in ("intersection", "chi2")
    elif classifier == "knn":
        trial.suggest_int("knn_neighbors", 1, 30, log=True)
        trial.suggest_categorical("knn_metric", ["euclidean", "manhattan", "cosine"])
        trial.suggest_categorical("knn_weights", ["uniform", "distance"])
    else:
        trial.suggest_float("logistic_C", 1e-3, 1e3, log=True)

    descriptor = trial.suggest_categorical("descriptor", DESCRIPTORS)
    trial.suggest_categorical("upscale", [1, 2])
    if descriptor in ("sift", "orb"):
        trial.suggest_int("keypoints", 100, 1000, log=True)
    else:
        trial.suggest_categorical("dense_step", [6, 8, 12, 16])
    if descriptor == "dense_sift":
        trial.suggest_categorical("patch_sizes", PATCH_SIZES)
    if descriptor == "daisy":
        trial.suggest_int("daisy_radius", 6, 24)
    if descriptor in ("sift", "dense_sift"):
        trial.suggest_categorical("color", ["grey", "rgb", "opponent"])
        trial.suggest_categorical("rootsift", [False, True])

    if additive:
        encoding = constants["encoding"] = "histogram"
    else:
        encoding = trial.suggest_categorical("encoding", ["histogram", "fisher", "vlad"])
    levels = trial.suggest_int("pyramid_levels", 0, 2)
    cells = sum(4**level for level in range(levels + 1))
    if encoding == "histogram":
        limit = MAX_ADDITIVE_FEATURES if additive else MAX_FEATURES
        trial.suggest_int("codebook_size", 32, min(4096, limit // cells), log=True)
    else:
        pca = trial.suggest_categorical("descriptor_pca", [16, 32, 64])
        if encoding == "fisher":
            trial.suggest_int("gmm_components", 8, min(128, MAX_FEATURES // (2 * pca * cells)), log=True)
        else:
            trial.suggest_int("vlad_clusters", 8, min(256, MAX_FEATURES // (pca * cells)), log=True)

    if additive:
        # Histograms are already L1-normalised over the pyramid; additive kernels need them non-negative.
        constants.update(normalisation="none", reduction="none")
    else:
        trial.suggest_categorical("normalisation", ["none", "l1", "l2", "power_l2", "standard"])
        if trial.suggest_categorical("reduction", ["none", "pca", "lda"]) == "pca":
            trial.suggest_categorical("pca_components", [32, 64, 128, 256, 0.9, 0.95, 0.99])
    return constants
