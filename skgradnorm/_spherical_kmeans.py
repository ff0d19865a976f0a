"""Spherical k-means in torch (cosine similarity, unit-norm centres).

Used twice by the GradNorm pipeline (see ``PAPER.md``, "Pipeline" items 3 and 6): to find the
fine-grained image centres ``W`` and to cluster the concatenated image/text embeddings. The
layout follows scikit-learn's ``sklearn/cluster/_kmeans.py``: a function doing the work
(:func:`spherical_kmeans`) and an estimator wrapping it (:class:`SphericalKMeans`).
"""

from __future__ import annotations

from numbers import Integral, Real

import numpy as np
import torch
from sklearn.base import (
    BaseEstimator,
    ClassNamePrefixFeaturesOutMixin,
    ClusterMixin,
    TransformerMixin,
    _fit_context,
)
from sklearn.cluster import kmeans_plusplus
from sklearn.utils import check_random_state
from sklearn.utils._param_validation import Interval
from sklearn.utils.validation import check_is_fitted, validate_data

from ._torch_utils import (
    as_tensor,
    default_chunk_size,
    iter_chunks,
    resolve_device,
    single_threaded_on_cpu,
)
from ._validation import l2_normalize_rows

__all__ = ["SphericalKMeans", "spherical_kmeans"]


def _check_n_clusters(n_clusters: int, n_samples: int) -> None:
    if n_clusters > n_samples:
        raise ValueError(
            f"n_clusters={n_clusters} is larger than the number of samples n_samples={n_samples}; "
            f"use n_clusters <= {n_samples} or pass more samples."
        )


def _assign(X: torch.Tensor, centers: torch.Tensor, chunk_size: int):
    """Labels (argmax cosine) and best cosine of every row of ``X``, chunk by chunk.

    The (n_samples, n_clusters) similarity matrix is never held whole in memory.
    """
    n = X.shape[0]
    labels = torch.empty(n, dtype=torch.int64, device=X.device)
    best = torch.empty(n, dtype=X.dtype, device=X.device)
    centers_t = centers.T
    for sl in iter_chunks(n, chunk_size):
        sim = X[sl] @ centers_t
        lab = torch.argmax(sim, dim=1)  # first maximum on ties, like numpy
        labels[sl] = lab
        best[sl] = sim.gather(1, lab[:, None])[:, 0]
    return labels, best


def nearest_centers(X: np.ndarray, centers: np.ndarray, device=None) -> np.ndarray:
    """Index of the most cosine-similar centre (rows of ``centers``) for each row of ``X``.

    Rows are compared by dot product, so ``centers`` should have unit rows; ``X`` needs no
    normalisation (a positive row scale does not change the argmax). Chunked, on ``device``.
    """
    dev = resolve_device(device)
    dtype = torch.float64 if np.float64 in (X.dtype, centers.dtype) else torch.float32
    labels, _ = _assign(as_tensor(X, dev, dtype), as_tensor(centers, dev, dtype), default_chunk_size(centers.shape[0], dev))
    return labels.cpu().numpy()


def _relocate_empty_clusters(X, sums, counts, labels, best, empty):
    """Give each empty cluster the worst-served sample not already moved (in place).

    Like scikit-learn's ``_relocate_empty_clusters_dense``, samples are taken in order of
    increasing cosine to their own centre. A sample is only taken from a cluster that keeps
    at least one member, so relocation never empties another cluster; since
    ``n_samples >= n_clusters`` there are always enough such samples.
    """
    empty_ids = torch.nonzero(empty).flatten().tolist()
    order = torch.argsort(best, stable=True).tolist()  # worst-served first
    labels_cpu = labels.tolist()
    counts_cpu = counts.tolist()
    pos = 0
    for j in empty_ids:
        while pos < len(order) and counts_cpu[labels_cpu[order[pos]]] <= 1:
            pos += 1
        if pos == len(order):  # cannot happen when n_samples >= n_clusters
            break
        i = order[pos]
        pos += 1
        old = labels_cpu[i]
        counts_cpu[old] -= 1
        counts_cpu[j] += 1
        labels_cpu[i] = j
        sums[old] -= X[i]
        sums[j] += X[i]
        labels[i] = j
    counts.copy_(torch.as_tensor(counts_cpu, dtype=counts.dtype, device=counts.device))


def _lloyd_iter(X: torch.Tensor, centers: torch.Tensor, chunk_size: int):
    """One Lloyd iteration of spherical k-means.

    Assign each row of ``X`` (unit norm) to its most cosine-similar centre, relocate empty
    clusters, then set every centre to the mean of its members renormalised to unit length.

    Returns ``(new_centers, labels)``; ``labels`` are the assignments after relocation (every
    cluster non-empty), from which ``new_centers`` are computed.
    """
    n_clusters = centers.shape[0]
    n = X.shape[0]
    labels = torch.empty(n, dtype=torch.int64, device=X.device)
    best = torch.empty(n, dtype=X.dtype, device=X.device)
    sums = torch.zeros_like(centers)
    centers_t = centers.T
    for sl in iter_chunks(n, chunk_size):
        sim = X[sl] @ centers_t
        lab = torch.argmax(sim, dim=1)
        labels[sl] = lab
        best[sl] = sim.gather(1, lab[:, None])[:, 0]
        with single_threaded_on_cpu(X.device):
            sums.index_add_(0, lab, X[sl])
    counts = torch.bincount(labels, minlength=n_clusters)
    empty = counts == 0
    if bool(empty.any()):
        _relocate_empty_clusters(X, sums, counts, labels, best, empty)
    # The mean and the sum have the same direction, so normalising the sum is enough.
    norms = torch.linalg.vector_norm(sums, dim=1, keepdim=True)
    # A cluster whose members cancel out (sum ~ 0, only possible in degenerate data) keeps its
    # previous centre, so that a centre is never NaN.
    degenerate = norms[:, 0] <= torch.finfo(X.dtype).tiny ** 0.5
    new_centers = sums / norms.clamp_min(torch.finfo(X.dtype).tiny)
    if bool(degenerate.any()):
        new_centers[degenerate] = centers[degenerate]
    return new_centers, labels


def _spherical_kmeans_single(X, centers, *, max_iter, tol, chunk_size):
    """Lloyd iterations from ``centers`` until convergence; returns centres, labels, obj, n_iter."""
    labels_old = None
    n_iter = 0
    for n_iter in range(1, max_iter + 1):
        new_centers, labels = _lloyd_iter(X, centers, chunk_size)
        shift = float(((new_centers - centers) ** 2).sum())
        centers = new_centers
        if labels_old is not None and torch.equal(labels, labels_old):
            break  # strict convergence: the assignment is a fixed point
        if shift <= tol:
            break
        labels_old = labels
    # Final E-step so that the labels (and the objective) match the returned centres.
    labels, best = _assign(X, centers, chunk_size)
    return centers, labels, float(best.sum()), n_iter


def spherical_kmeans(
    X,
    n_clusters,
    *,
    n_init=10,
    max_iter=300,
    tol=1e-4,
    random_state=None,
    device=None,
    chunk_size=None,
    verbose=False,
):
    """Spherical k-means: k-means with cosine similarity and unit-norm centres.

    Lloyd iterations where each sample goes to the centre of largest cosine similarity
    and each centre is the mean of its members renormalised to unit length. Seeding is
    k-means++; ``n_init`` restarts are run and the one with the largest objective is kept.

    Parameters
    ----------
    X : ndarray of shape (n_samples, n_features), float32 or float64
        Samples, whose rows must already have unit L2 norm (not checked here). The
        computation is done in the dtype of ``X``.
    n_clusters : int
        Number of clusters; at most ``n_samples``.
    n_init : int, default=10
        Number of restarts, each with its own k-means++ seeding.
    max_iter : int, default=300
        Maximum number of Lloyd iterations per restart.
    tol : float, default=1e-4
        A restart stops when the total squared shift of the centres between two iterations,
        ``sum_k ||c_k_new - c_k_old||^2``, is ``<= tol``. The centres are unit vectors, so
        the threshold is absolute (scale-free); no rescaling by the data variance is needed.
        A restart also stops as soon as the labels do not change, or after ``max_iter``.
    random_state : int, RandomState instance or None, default=None
        Seeds the k-means++ initialisations. The same value gives the same result.
    device : str, torch.device or None, default=None
        Torch device to compute on; None picks the best available (CUDA, MPS, CPU).
    chunk_size : int or None, default=None
        Number of samples per block of the assignment step; None picks one from
        :func:`skgradnorm._torch_utils.default_chunk_size`.
    verbose : bool, default=False
        Print the objective of every restart.

    Returns
    -------
    centers : ndarray of shape (n_clusters, n_features)
        Unit-norm centres of the best restart, in the dtype of ``X``.
    labels : ndarray of shape (n_samples,), int64
        Index of the most cosine-similar centre for every sample.
    objective : float
        Sum over samples of the cosine between the sample and its centre (higher is better).
    n_iter : int
        Number of Lloyd iterations run by the best restart.
    """
    X = np.asarray(X)
    n_samples = X.shape[0]
    _check_n_clusters(n_clusters, n_samples)
    dev = resolve_device(device)
    dtype = torch.float64 if X.dtype == np.float64 else torch.float32
    X_np = X if X.dtype in (np.float32, np.float64) else X.astype(np.float64)
    Xt = as_tensor(X_np, dev, dtype)
    if chunk_size is None:
        chunk_size = default_chunk_size(n_clusters, dev)
    chunk_size = max(1, int(chunk_size))

    rng = check_random_state(random_state)
    seeds = rng.randint(np.iinfo(np.int32).max, size=n_init)
    # squared norms of unit rows are 1; passing them saves kmeans_plusplus a pass over X.
    x_squared_norms = np.ones(n_samples, dtype=X_np.dtype)

    best = None
    for run, seed in enumerate(seeds):
        # k-means++ on the unit vectors is the cosine k-means++: for unit x and c,
        # ||x - c||^2 = 2 - 2 cos(x, c), so sampling proportionally to the squared Euclidean
        # distance to the nearest chosen centre is sampling proportionally to
        # (1 - max cosine), and the chosen seeds are samples, hence already unit norm.
        init, _ = kmeans_plusplus(
            X_np,
            n_clusters,
            x_squared_norms=x_squared_norms,
            random_state=np.random.RandomState(seed),
        )
        centers0 = as_tensor(init, dev, dtype)
        centers, labels, objective, n_iter = _spherical_kmeans_single(
            Xt, centers0, max_iter=max_iter, tol=tol, chunk_size=chunk_size
        )
        if verbose:
            print(
                f"spherical k-means restart {run + 1}/{n_init}: objective={objective:.6f} "
                f"after {n_iter} iteration(s)"
            )
        if best is None or objective > best[2]:
            best = (centers, labels, objective, n_iter)

    centers, labels, objective, n_iter = best
    return (
        centers.cpu().numpy().astype(X_np.dtype, copy=False),
        labels.cpu().numpy().astype(np.int64, copy=False),
        float(objective),
        int(n_iter),
    )


class SphericalKMeans(
    ClassNamePrefixFeaturesOutMixin, ClusterMixin, TransformerMixin, BaseEstimator
):
    """Spherical k-means clustering (cosine similarity, unit-norm centres), computed in torch.

    Rows of ``X`` are L2-normalised, then k-means is run with the cosine similarity: each
    sample goes to the centre of largest cosine and each centre is the mean of its members
    renormalised to unit length. Seeding is k-means++ and the best of ``n_init`` restarts
    (largest sum of cosines) is kept. The work runs on a torch device (a GPU when available).

    Parameters
    ----------
    n_clusters : int, default=8
        Number of clusters.
    n_init : int, default=10
        Number of k-means++ restarts; the one with the largest objective is kept.
    max_iter : int, default=300
        Maximum number of Lloyd iterations per restart.
    tol : float, default=1e-4
        Absolute tolerance on the total squared shift of the (unit) centres between two
        iterations; a restart also stops when the labels stop changing.
    random_state : int, RandomState instance or None, default=None
        Seeds the initialisations; pass an int for reproducible results.
    device : str, torch.device or None, default=None
        Torch device to compute on (``"cpu"``, ``"cuda"``, ...); None picks the best available.

    Attributes
    ----------
    cluster_centers_ : ndarray of shape (n_clusters, n_features)
        Unit-norm cluster centres.
    labels_ : ndarray of shape (n_samples,)
        Cluster index of every training sample (most cosine-similar centre).
    objective_ : float
        Sum over training samples of the cosine to their centre (higher is better).
    n_iter_ : int
        Number of Lloyd iterations of the best restart.
    n_features_in_ : int
        Number of features seen during :term:`fit`.
    feature_names_in_ : ndarray of shape (`n_features_in_`,)
        Names of features seen during :term:`fit`, when ``X`` has string feature names.

    See Also
    --------
    sklearn.cluster.KMeans : Euclidean k-means.

    Examples
    --------
    >>> import numpy as np
    >>> from skgradnorm._spherical_kmeans import SphericalKMeans
    >>> X = np.array([[1.0, 0.1], [2.0, 0.1], [1.0, 0.0],
    ...               [0.1, 1.0], [0.0, 3.0], [0.2, 1.0]])
    >>> km = SphericalKMeans(n_clusters=2, n_init=2, random_state=0, device="cpu").fit(X)
    >>> km.cluster_centers_.shape
    (2, 2)
    >>> bool(km.labels_[0] == km.labels_[1] == km.labels_[2] != km.labels_[3])
    True
    >>> bool(km.labels_[3] == km.labels_[4] == km.labels_[5])
    True
    >>> bool(km.predict([[5.0, 0.2]])[0] == km.labels_[0])
    True
    >>> km.transform(X).shape
    (6, 2)
    """

    _parameter_constraints: dict = {
        "n_clusters": [Interval(Integral, 1, None, closed="left")],
        "n_init": [Interval(Integral, 1, None, closed="left")],
        "max_iter": [Interval(Integral, 1, None, closed="left")],
        "tol": [Interval(Real, 0, None, closed="left")],
        "random_state": ["random_state"],
        "device": [None, str, torch.device],
    }

    def __init__(
        self, n_clusters=8, *, n_init=10, max_iter=300, tol=1e-4, random_state=None, device=None
    ):
        self.n_clusters = n_clusters
        self.n_init = n_init
        self.max_iter = max_iter
        self.tol = tol
        self.random_state = random_state
        self.device = device

    @_fit_context(prefer_skip_nested_validation=True)
    def fit(self, X, y=None):
        """Compute the spherical k-means clustering.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Training samples; every row needs a non-zero norm (only directions matter).
        y : Ignored
            Not used, present for API consistency by convention.

        Returns
        -------
        self : object
            Fitted estimator.
        """
        X = validate_data(self, X, dtype=[np.float64, np.float32], ensure_min_samples=2)
        _check_n_clusters(self.n_clusters, X.shape[0])
        Xn = l2_normalize_rows(X, name="X")
        centers, labels, objective, n_iter = spherical_kmeans(
            Xn,
            self.n_clusters,
            n_init=self.n_init,
            max_iter=self.max_iter,
            tol=self.tol,
            random_state=self.random_state,
            device=self.device,
        )
        self.cluster_centers_ = centers
        self.labels_ = labels
        self.objective_ = objective
        self.n_iter_ = n_iter
        self._n_features_out = centers.shape[0]
        return self

    def _check_test_data(self, X):
        check_is_fitted(self)
        X = validate_data(self, X, dtype=[np.float64, np.float32], reset=False)
        return l2_normalize_rows(X, name="X")

    def _tensors(self, X):
        dev = resolve_device(self.device)
        dtype = torch.float64 if X.dtype == np.float64 else torch.float32
        return as_tensor(X, dev, dtype), as_tensor(self.cluster_centers_, dev, dtype), dev

    def predict(self, X):
        """Index of the most cosine-similar centre for each sample.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Samples with non-zero rows.

        Returns
        -------
        labels : ndarray of shape (n_samples,)
            Cluster index of every sample.
        """
        X = self._check_test_data(X)
        return nearest_centers(X, self.cluster_centers_, self.device)

    def transform(self, X):
        """Cosine similarity of each sample to each centre.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Samples with non-zero rows.

        Returns
        -------
        X_new : ndarray of shape (n_samples, n_clusters)
            Cosine similarities, in the dtype of ``X`` (float32 or float64).
        """
        X = self._check_test_data(X)
        Xt, Ct, _ = self._tensors(X)
        return (Xt @ Ct.T).cpu().numpy()

    def score(self, X, y=None):
        """Sum over samples of the cosine to the closest centre (higher is better).

        This is the spherical k-means objective, the counterpart of the negative inertia
        returned by :meth:`sklearn.cluster.KMeans.score`.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Samples with non-zero rows.
        y : Ignored
            Not used, present for API consistency by convention.

        Returns
        -------
        score : float
            Sum of the cosines of the samples to their closest centre.
        """
        X = self._check_test_data(X)
        Xt, Ct, dev = self._tensors(X)
        _, best = _assign(Xt, Ct, default_chunk_size(Ct.shape[0], dev))
        return float(best.sum())

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.transformer_tags.preserves_dtype = ["float64", "float32"]
        return tags
