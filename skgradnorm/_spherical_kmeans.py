"""``SphericalKMeans``: the estimator over :func:`~skgradnorm.spherical_kmeans`.

Spherical k-means (cosine similarity, unit-norm centres) in torch. The work is done in
:mod:`skgradnorm._cluster._kmeans` (seeding, Lloyd iterations, the function) and
:mod:`skgradnorm._cluster._search` (assignment passes); this module adds scikit-learn's
estimator API and ``n_clusters="auto"``.
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
from sklearn.utils._param_validation import Interval, StrOptions
from sklearn.utils.validation import check_is_fitted, validate_data

from ._cluster._auto_k import resolve_k_values, search_k, store_k_search
from ._cluster._kmeans import kmeans_params, spherical_kmeans, warn_if_fewer_clusters
from ._cluster._search import BACKENDS, assign, nearest_centers
from ._utils._torch import (
    as_tensor,
    default_chunk_size,
    resolve_device,
    sum_dtype,
    torch_dtype_for,
)
from ._utils._validation import Count, l2_normalize_rows

__all__ = ["SphericalKMeans", "spherical_kmeans"]


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
    n_clusters : int or "auto", default=8
        Number of clusters. ``"auto"`` chooses K in ``n_clusters_range`` by a label-free
        criterion (see :func:`skgradnorm.tuning.search_n_clusters`), then fits that K;
        the choice is in ``n_clusters_``, how sure it is in ``n_clusters_confidence_``,
        the criterion per K scored in ``n_clusters_scores_``.
    n_clusters_range : sequence of int or None, default=None
        The K values ``n_clusters="auto"`` tries, each >= 2 and < n_samples; None is
        ``range(2, min(50, n_samples // 10) + 1)`` (at least ten samples per cluster).
        Ignored for an int ``n_clusters``.
    n_init : int, default=10
        Number of k-means++ restarts; the one with the largest objective is kept.
    max_iter : int, default=300
        Maximum number of Lloyd iterations per restart.
    tol : float, default=1e-4
        Absolute tolerance on the total squared shift of the (unit) centres between two
        iterations; a restart also stops when the labels stop changing.
    random_state : int, RandomState instance or None, default=None
        Seeds the initialisations; pass an int for reproducible results: the same
        ``random_state``, data, device and backend give the same clustering, whatever the
        number of torch (or faiss) threads on the CPU. Across machines, devices or
        backends, float32 rounding can differ and flip a near-tie between two centres.
    device : str, torch.device or None, default=None
        Torch device to compute on (``"cpu"``, ``"cuda"``, ...); None picks the best available.
    init_size : int or None, default=None
        Number of samples (drawn at random for every restart) the k-means++ seeding runs
        on; the Lloyd iterations then use all the fitting samples. None means
        ``max(16 * n_clusters, 16384)`` samples, or all of them when there are fewer.
        See :func:`spherical_kmeans`.
    max_samples : int or None, default=None
        Fit the centres on a random subsample of this many rows (drawn with
        ``random_state``), then assign every row; ``labels_`` and ``objective_`` cover all
        the rows. None fits on all the rows. See :func:`spherical_kmeans`.
    backend : {"auto", "torch", "faiss"}, default="auto"
        What computes the assignment passes of :meth:`fit`: torch, or faiss's exact
        inner-product search (CPU and float32 only). ``"auto"`` uses faiss when it is
        installed, the device is the CPU and ``X`` is float32. Seeding and centre updates
        are the package's own either way. See :func:`spherical_kmeans`.
    verbose : int, default=0
        Verbosity mode, as in :class:`sklearn.cluster.KMeans`: a positive value prints the
        objective and the number of iterations of every restart.

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
    n_clusters_ : int
        The number of clusters used (resolves ``"auto"``).
    n_clusters_range_ : ndarray of int
        With ``n_clusters="auto"``: the K values scored.
    n_clusters_scores_ : ndarray of float
        With ``n_clusters="auto"``: the criterion of each K (higher is better), to plot
        against ``n_clusters_range_``.
    n_clusters_confidence_ : float
        With ``n_clusters="auto"``: how sure the choice of K is, in [0, 1].
    n_clusters_criterion_ : str
        With ``n_clusters="auto"``: the criterion's name.
    n_features_in_ : int
        Number of features seen during :term:`fit`.
    feature_names_in_ : ndarray of shape (`n_features_in_`,)
        Names of features seen during :term:`fit`, when ``X`` has string feature names.

    See Also
    --------
    spherical_kmeans : The function this estimator wraps.
    sklearn.cluster.KMeans : Euclidean k-means.

    Notes
    -----
    The objective is ``sum_i max_k cos(x_i, c_k)`` (higher is better); see
    :func:`spherical_kmeans` for the iterations.

    References
    ----------
    .. [1] I. S. Dhillon and D. S. Modha, "Concept decompositions for large sparse text data
       using clustering", Machine Learning 42, 2001.

    Examples
    --------
    >>> import numpy as np
    >>> from skgradnorm import SphericalKMeans
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
        "n_clusters": [Count(1, None, closed="left"), StrOptions({"auto"})],
        "n_clusters_range": ["array-like", None],
        "n_init": [Interval(Integral, 1, None, closed="left")],
        "max_iter": [Interval(Integral, 1, None, closed="left")],
        "tol": [Interval(Real, 0, None, closed="left")],
        "random_state": ["random_state"],
        "device": [None, str, torch.device],
        "init_size": [None, Interval(Integral, 1, None, closed="left")],
        "max_samples": [None, Interval(Integral, 1, None, closed="left")],
        "backend": [StrOptions(set(BACKENDS))],
        "verbose": ["verbose"],
    }

    def __init__(
        self,
        n_clusters=8,
        *,
        n_clusters_range=None,
        n_init=10,
        max_iter=300,
        tol=1e-4,
        random_state=None,
        device=None,
        init_size=None,
        max_samples=None,
        backend="auto",
        verbose=0,
    ):
        self.n_clusters = n_clusters
        self.n_clusters_range = n_clusters_range
        self.n_init = n_init
        self.max_iter = max_iter
        self.tol = tol
        self.random_state = random_state
        self.device = device
        self.init_size = init_size
        self.max_samples = max_samples
        self.backend = backend
        self.verbose = verbose

    def _check_params_vs_input(self, X):
        """The checks that need both the parameters and the data; the K values to try."""
        return resolve_k_values(self.n_clusters, self.n_clusters_range, X.shape[0])

    @_fit_context(prefer_skip_nested_validation=True)
    def fit(self, X, y=None):
        """Compute the spherical k-means clustering (choosing K when ``n_clusters="auto"``).

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
        ks = self._check_params_vs_input(X)
        if ks is not None and self.max_samples is not None and self.max_samples < ks[-1]:
            raise ValueError(
                f"max_samples={self.max_samples} is smaller than the largest K tried "
                f"({ks[-1]}); use max_samples >= {ks[-1]} or None."
            )
        Xn = l2_normalize_rows(X, name="X")
        # the settings every k-means of this fit shares (one per K with "auto")
        kmeans = kmeans_params(self)
        if ks is not None:
            found = search_k(Xn, ks, **kmeans)
            store_k_search(self, found)
            self._store(*found.fit)
            return self
        self.n_clusters_ = int(self.n_clusters)
        centers, labels, objective, n_iter = spherical_kmeans(
            Xn, self.n_clusters, verbose=bool(self.verbose), **kmeans
        )
        self._store(centers, labels, objective, n_iter)
        return self

    def _store(self, centers, labels, objective, n_iter):
        warn_if_fewer_clusters(labels, centers.shape[0])
        self.cluster_centers_ = centers
        self.labels_ = labels
        self.objective_ = objective
        self.n_iter_ = n_iter
        self._n_features_out = centers.shape[0]

    def _check_test_data(self, X):
        check_is_fitted(self)
        X = validate_data(self, X, dtype=[np.float64, np.float32], reset=False)
        return l2_normalize_rows(X, name="X")

    def _tensors(self, X):
        dev = resolve_device(self.device)
        dtype = torch_dtype_for(X)
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
        _, best = assign(Xt, Ct, default_chunk_size(Ct.shape[0], dev))
        return float(best.sum(dtype=sum_dtype(dev)))

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.transformer_tags.preserves_dtype = ["float64", "float32"]
        return tags
