"""BoVW steps 2-4: descriptor transform, codebook / GMM, encoding with a spatial pyramid.

`BovwEncoder` turns a `DescriptorSet` (any per-image descriptors with their
positions) into one fixed-length vector per image:

    descriptors --(RootSIFT, PCA)--> codebook or GMM --> per-cell encoding --> pyramid

- transform: optional RootSIFT (L1-normalise, square root: the Hellinger kernel
  as a dot product) and optional PCA to `descriptor_pca` dimensions;
- encoding: `histogram` (hard assignment to a MiniBatchKMeans codebook of
  `codebook_size` words), `fisher` (improved Fisher vectors on a diagonal GMM
  of `gmm_components`: gradients w.r.t. means and variances, power + L2
  normalised) or `vlad` (residuals to `vlad_clusters` k-means centres, power +
  L2 normalised);
- spatial pyramid: levels 0..L (1x1, 2x2, 4x4 cells), each cell encoded on its
  own and weighted as in Lazebnik et al. (level 0: 1/2^L, level l>0:
  1/2^(L-l+1)); histogram cells are counts over the image's descriptor count,
  so the whole vector sums to 1.

Codebook, GMM and PCA are fitted on a seeded sample of at most `sample_size`
training descriptors. An image without descriptors encodes to zeros.

Reuse (the MLP family's per-patch features, or any other descriptors):

    from trainables.bovw.descriptors import DescriptorSet
    from trainables.bovw.encoding import BovwEncoder

    train = DescriptorSet.from_arrays(per_image_descriptors, per_image_xy)  # xy in [0, 1)
    encoder = BovwEncoder(encoding="fisher", gmm_components=16, descriptor_pca=32,
                          pyramid_levels=1, seed=0).fit(train)
    features = encoder.transform(train)           # (images, encoder.feature_dim) float32

then `bovw_classifiers` for normalisation, reduction, classifier and CV.
"""

from __future__ import annotations

import warnings

import numpy as np
from sklearn.base import BaseEstimator, TransformerMixin
from threadpoolctl import threadpool_limits

ENCODINGS = ("histogram", "fisher", "vlad")
_CHUNK_DESCRIPTORS = 65536  # descriptors transformed at once (bounds the working memory)
_ASSIGN_ROWS = 4096  # descriptors scored against all centres / components at once


class EncodingError(ValueError):
    """An encoder configuration that cannot work on these descriptors; the message says what to change."""


def pyramid_weights(levels: int) -> np.ndarray:
    """Weight of each pyramid level 0..levels (Lazebnik et al. 2006); they sum to 1."""
    if not 0 <= levels <= 3:
        raise EncodingError(f"pyramid_levels {levels} is out of range; use 0, 1 or 2")
    return np.array([1 / 2**levels] + [1 / 2 ** (levels - level + 1) for level in range(1, levels + 1)])


def pyramid_cells(levels: int) -> int:
    return sum(4**level for level in range(levels + 1))


def cell_index(positions: np.ndarray, levels: int) -> np.ndarray:
    """(n, 2) positions in [0, 1) -> (n, levels+1) global cell ids (level 0 first, row-major cells)."""
    ids, offset = [], 0
    for level in range(levels + 1):
        side = 2**level
        col = np.minimum((positions[:, 0] * side).astype(np.int64), side - 1)
        row = np.minimum((positions[:, 1] * side).astype(np.int64), side - 1)
        ids.append(offset + row * side + col)
        offset += side * side
    return np.stack(ids, axis=1) if ids else np.zeros((len(positions), 0), np.int64)


class DescriptorTransform:
    """RootSIFT and/or PCA on raw descriptors; applied in chunks, float32 out."""

    def __init__(self, *, root: bool = False, pca_dims: int = 0, seed: int = 0):
        self.root = bool(root)
        self.pca_dims = int(pca_dims or 0)
        self.seed = seed
        self.mean_: np.ndarray | None = None
        self.components_: np.ndarray | None = None

    def fit(self, sample: np.ndarray) -> DescriptorTransform:
        x = self._root(sample.astype(np.float32))
        if self.pca_dims:
            if self.pca_dims > x.shape[1]:
                raise EncodingError(
                    f"descriptor_pca {self.pca_dims} is more than the descriptors' {x.shape[1]} "
                    f"dimensions; use at most {x.shape[1]}"
                )
            if self.pca_dims > len(x):
                raise EncodingError(
                    f"descriptor_pca {self.pca_dims} needs at least that many sampled descriptors, got {len(x)}"
                )
            from sklearn.decomposition import PCA

            pca = PCA(n_components=self.pca_dims, random_state=self.seed).fit(x)
            self.mean_ = pca.mean_.astype(np.float32)
            self.components_ = pca.components_.astype(np.float32)
        return self

    def transform(self, x: np.ndarray) -> np.ndarray:
        x = self._root(x.astype(np.float32))
        if self.components_ is not None:
            x = (x - self.mean_) @ self.components_.T
        return x

    def _root(self, x: np.ndarray) -> np.ndarray:
        if not self.root:
            return x
        x = np.abs(x)
        x /= np.maximum(x.sum(axis=1, keepdims=True), 1e-12)
        return np.sqrt(x)

    @property
    def num_params(self) -> int:
        if self.components_ is None or self.mean_ is None:
            return 0
        return int(self.components_.size + self.mean_.size)


class BovwEncoder(BaseEstimator, TransformerMixin):
    """DescriptorSet -> (images, feature_dim) float32; see the module docstring."""

    def __init__(
        self,
        *,
        encoding: str = "fisher",
        codebook_size: int = 256,
        gmm_components: int = 16,
        vlad_clusters: int = 64,
        descriptor_pca: int = 0,
        rootsift: bool = False,
        pyramid_levels: int = 0,
        sample_size: int = 100_000,
        seed: int = 0,
        n_jobs: int = 1,
    ):
        self.encoding = encoding
        self.codebook_size = codebook_size
        self.gmm_components = gmm_components
        self.vlad_clusters = vlad_clusters
        self.descriptor_pca = descriptor_pca
        self.rootsift = rootsift
        self.pyramid_levels = pyramid_levels
        self.sample_size = sample_size
        self.seed = seed
        self.n_jobs = n_jobs  # BLAS / OpenMP threads: more than the CPUs given slows sklearn down badly

    # -- fitting ---------------------------------------------------------------------------------

    def fit(self, descriptors, y=None) -> BovwEncoder:
        with threadpool_limits(limits=max(1, int(self.n_jobs))):
            return self._fit(descriptors)

    def _fit(self, descriptors) -> BovwEncoder:
        if self.encoding not in ENCODINGS:
            raise EncodingError(f"unknown encoding {self.encoding!r}; choose one of {', '.join(ENCODINGS)}")
        self.weights_ = pyramid_weights(int(self.pyramid_levels))
        sample = descriptors.sample(int(self.sample_size), seed=self.seed)
        self.transform_ = DescriptorTransform(root=self.rootsift, pca_dims=self.descriptor_pca, seed=self.seed)
        self.transform_.fit(sample)
        sample = self.transform_.transform(sample)
        self.dim_ = int(sample.shape[1])
        words = self._words()
        if words > len(sample):
            what = {"histogram": "codebook_size", "fisher": "gmm_components", "vlad": "vlad_clusters"}[self.encoding]
            raise EncodingError(
                f"{what} {words} is more than the {len(sample)} descriptors sampled from the training "
                f"images; use at most {len(sample)} (or denser descriptors)"
            )
        if self.encoding == "fisher":
            self._fit_gmm(sample, words)
        else:
            self._fit_kmeans(sample, words)
        return self

    def _words(self) -> int:
        return int(
            {"histogram": self.codebook_size, "fisher": self.gmm_components, "vlad": self.vlad_clusters}[self.encoding]
        )

    def _fit_kmeans(self, sample: np.ndarray, words: int) -> None:
        from sklearn.cluster import MiniBatchKMeans

        kmeans = MiniBatchKMeans(
            n_clusters=words,
            random_state=self.seed,
            batch_size=max(2048, 2 * words),
            n_init=1,
            max_iter=100,
            init_size=min(len(sample), max(3 * words, 4096)),
        )
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # duplicate points / few distinct clusters on tiny or flat data
            kmeans.fit(sample)
        self.centres_ = kmeans.cluster_centers_.astype(np.float32)

    def _fit_gmm(self, sample: np.ndarray, components: int) -> None:
        from sklearn.mixture import GaussianMixture

        gmm = GaussianMixture(
            n_components=components,
            covariance_type="diag",
            reg_covar=1e-4,
            max_iter=100,
            tol=1e-3,
            init_params="k-means++",
            random_state=self.seed,
        )
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # ConvergenceWarning: the best of 100 EM steps is used
            gmm.fit(sample)
        self.means_ = gmm.means_.astype(np.float32)
        self.sigmas_ = np.sqrt(gmm.covariances_).astype(np.float32)
        self.priors_ = gmm.weights_.astype(np.float32)

    # -- encoding --------------------------------------------------------------------------------

    @property
    def cell_dim(self) -> int:
        words = self._words()
        return {"histogram": words, "fisher": 2 * words * self.dim_, "vlad": words * self.dim_}[self.encoding]

    @property
    def feature_dim(self) -> int:
        return self.cell_dim * pyramid_cells(int(self.pyramid_levels))

    @property
    def num_params(self) -> int:
        if self.encoding == "fisher":
            fitted = self.means_.size + self.sigmas_.size + self.priors_.size
        else:
            fitted = self.centres_.size
        return int(self.transform_.num_params + fitted)

    def transform(self, descriptors) -> np.ndarray:
        with threadpool_limits(limits=max(1, int(self.n_jobs))):
            return self._transform(descriptors)

    def _transform(self, descriptors) -> np.ndarray:
        out = np.zeros((len(descriptors), self.feature_dim), np.float32)
        start = 0
        while start < len(descriptors):
            stop = start + 1
            while (
                stop < len(descriptors)
                and descriptors.offsets[stop + 1] - descriptors.offsets[start] <= _CHUNK_DESCRIPTORS
            ):
                stop += 1
            chunk = descriptors.images(start, stop)
            x = self.transform_.transform(chunk.descriptors)
            assigned = self._assign(x)
            cells = cell_index(chunk.positions, int(self.pyramid_levels))
            for local in range(len(chunk)):
                rows = slice(chunk.offsets[local], chunk.offsets[local + 1])
                if rows.stop > rows.start:
                    out[start + local] = self._encode_image(x[rows], assigned[rows], cells[rows])
            start = stop
        return out

    def _assign(self, x: np.ndarray) -> np.ndarray:
        """(n, d) -> GMM posteriors (n, K) for Fisher vectors, else the nearest centre's index (n,)."""
        parts = []
        for start in range(0, len(x), _ASSIGN_ROWS):  # bounds the (rows, K) score matrix
            block = x[start : start + _ASSIGN_ROWS]
            if self.encoding == "fisher":
                inv_var = 1.0 / self.sigmas_**2
                log_p = (
                    -0.5
                    * (
                        (block**2) @ inv_var.T
                        - 2 * block @ (self.means_ * inv_var).T
                        + np.sum(self.means_**2 * inv_var, axis=1)
                    )
                    - np.sum(np.log(self.sigmas_), axis=1)
                    + np.log(self.priors_)
                )
                log_p -= log_p.max(axis=1, keepdims=True)
                p = np.exp(log_p)
                parts.append((p / p.sum(axis=1, keepdims=True)).astype(np.float32))
            else:
                parts.append(np.argmax(block @ self.centres_.T - 0.5 * np.sum(self.centres_**2, axis=1), axis=1))
        if parts:
            return np.concatenate(parts)
        return np.zeros((0, self.gmm_components), np.float32) if self.encoding == "fisher" else np.zeros(0, np.int64)

    def _encode_image(self, x: np.ndarray, assigned: np.ndarray, cells: np.ndarray) -> np.ndarray:
        """One image's descriptors -> its concatenated, weighted pyramid of cell encodings."""
        levels = int(self.pyramid_levels)
        total_cells = pyramid_cells(levels)
        level_of_cell = np.repeat(np.arange(levels + 1), [4**level for level in range(levels + 1)])
        weight = self.weights_[level_of_cell][:, None]
        k = self._words()
        if self.encoding == "histogram":
            counts = np.bincount((cells * k + assigned[:, None]).ravel(), minlength=total_cells * k)
            return (weight * counts.reshape(total_cells, k) / len(x)).ravel()
        if self.encoding == "vlad":
            soft = np.zeros((len(x), k), np.float32)
            soft[np.arange(len(x)), assigned] = 1.0
        else:
            soft = assigned
        s0, s1, s2 = self._pyramid_statistics(x, soft, cells[:, levels] - (total_cells - 4**levels), levels)
        if self.encoding == "vlad":
            blocks = s1 - s0[:, :, None] * self.centres_[None]
        else:
            mu, sigma, prior = self.means_[None], self.sigmas_[None], self.priors_[None, :, None]
            denom = np.maximum(s0.sum(axis=1), 1.0)[:, None, None]  # descriptors per cell
            grad_mu = (s1 - s0[:, :, None] * mu) / sigma / (denom * np.sqrt(prior))
            grad_var = ((s2 - 2 * mu * s1 + s0[:, :, None] * mu**2) / sigma**2 - s0[:, :, None]) / (
                denom * np.sqrt(2 * prior)
            )
            blocks = np.concatenate([grad_mu, grad_var], axis=2)
        blocks = blocks.reshape(total_cells, -1)
        blocks = np.sign(blocks) * np.sqrt(np.abs(blocks))  # power normalisation, per cell
        norms = np.linalg.norm(blocks, axis=1, keepdims=True)
        blocks = np.where(norms > 0, blocks / np.maximum(norms, 1e-12), 0.0)
        return (weight * blocks).ravel()

    def _pyramid_statistics(self, x, soft, finest, levels):
        """Zeroth, first (and for Fisher second) order statistics of every pyramid cell, level 0 first.

        Computed once per finest cell (each descriptor in one matmul), then summed up the pyramid.
        """
        side = 2**levels
        k, d = soft.shape[1], x.shape[1]
        s0 = np.zeros((side * side, k), np.float32)
        s1 = np.zeros((side * side, k, d), np.float32)
        s2 = np.zeros((side * side, k, d), np.float32) if self.encoding == "fisher" else None
        order = np.argsort(finest, kind="stable")
        bounds = np.searchsorted(finest[order], np.arange(side * side + 1))
        for cell in range(side * side):
            rows = order[bounds[cell] : bounds[cell + 1]]
            if len(rows):
                g, xs = soft[rows], x[rows]
                s0[cell], s1[cell] = g.sum(axis=0), g.T @ xs
                if s2 is not None:
                    s2[cell] = g.T @ (xs * xs)

        def up(stat):  # finest grid -> every level, row-major cells within a level
            grid = stat.reshape(side, side, *stat.shape[1:])
            out = []
            for level in range(levels + 1):
                f = side // 2**level
                out.append(
                    grid.reshape(2**level, f, 2**level, f, *stat.shape[1:])
                    .sum(axis=(1, 3))
                    .reshape(4**level, *stat.shape[1:])
                )
            return np.concatenate(out)

        return up(s0), up(s1), (up(s2) if s2 is not None else None)

    def empty_images(self, descriptors) -> int:
        return int(np.count_nonzero(descriptors.counts == 0))
