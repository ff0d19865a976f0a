"""Spherical k-means in torch (cosine similarity, unit-norm centres).

GradNorm uses it twice: to find the fine-grained image centres ``W`` and to cluster the
joined image/text embeddings ``[u ; t]``. The layout follows scikit-learn's
``sklearn/cluster/_kmeans.py``: a function doing the work (:func:`spherical_kmeans`) and an
estimator wrapping it (:class:`SphericalKMeans`). Its parts live in ``_kmeans_plusplus.py``
(the seeding) and ``_kmeans_lloyd.py`` (assignment passes, centre updates, backends).
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
from sklearn.utils import check_random_state
from sklearn.utils._param_validation import Interval, StrOptions, validate_params
from sklearn.utils.validation import check_is_fitted, validate_data

from ._cluster._auto_k import check_n_clusters_range, search_n_clusters
from ._cluster._kmeans_lloyd import (
    _BACKENDS,
    _assign,
    _resolve_search,
    _spherical_kmeans_single,
    nearest_centers,
)
from ._cluster._kmeans_plusplus import _default_init_size, _kmeans_plusplus, draw_rows
from ._utils._torch import (
    as_tensor,
    default_chunk_size,
    resolve_device,
    sum_dtype,
    torch_dtype_for,
)
from ._utils._validation import check_n_clusters, l2_normalize_rows

__all__ = ["SphericalKMeans", "spherical_kmeans"]


def _check_sample_size(value, name, n_clusters):
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, Integral):
        raise TypeError(f"{name} must be None or an int; got {value!r} ({type(value).__name__}).")
    if value < n_clusters:
        raise ValueError(
            f"{name}={value} is smaller than n_clusters={n_clusters}; every cluster needs at "
            f"least one sample: use {name} >= {n_clusters} or None (all samples)."
        )
    return int(value)


@validate_params(
    {
        "X": ["array-like"],
        "n_clusters": [Interval(Integral, 1, None, closed="left")],
        "n_init": [Interval(Integral, 1, None, closed="left")],
        "max_iter": [Interval(Integral, 1, None, closed="left")],
        "tol": [Interval(Real, 0, None, closed="left")],
        "random_state": ["random_state"],
        "device": [None, str, torch.device],
        "chunk_size": [None, Interval(Integral, 1, None, closed="left")],
        "verbose": ["verbose"],
        "init_size": [None, Interval(Integral, 1, None, closed="left")],
        "max_samples": [None, Interval(Integral, 1, None, closed="left")],
        "backend": [StrOptions(set(_BACKENDS))],
    },
    prefer_skip_nested_validation=True,
)
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
    init_size=None,
    max_samples=None,
    backend="auto",
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
        Seeds the k-means++ initialisations and the subsamples. The same value gives the
        same result.
    device : str, torch.device or None, default=None
        Torch device to compute on; None picks the best available (CUDA, MPS, CPU).
    chunk_size : int or None, default=None
        Number of samples per block of the torch assignment step; None picks one from
        :func:`skgradnorm._torch_utils.default_chunk_size` (faiss blocks on its own).
    verbose : bool, default=False
        Print the objective of every restart.
    init_size : int or None, default=None
        Number of samples drawn at random (without replacement, anew for every restart) to
        run the k-means++ seeding on; the Lloyd iterations then run on all the (fitting)
        samples. None means ``max(16 * n_clusters, 16384)`` samples, or all of them when
        there are fewer; pass ``n_samples`` to always seed on every sample. The greedy
        k-means++ makes ``n_clusters`` sequential passes over the samples it seeds on, so
        on large data seeding on every sample would cost more than the Lloyd iterations.
    max_samples : int or None, default=None
        Fit the centres (seeding and Lloyd iterations, every restart) on a random subsample
        of this many rows, drawn once with ``random_state``, then assign all the rows to the
        fitted centres; the returned labels and objective are over all the rows. None fits
        on all the rows. This bounds the cost of the fit on very large data, for a slightly
        lower objective (the user guide's "Large collections" gives measured trade-offs).
    backend : {"auto", "torch", "faiss"}, default="auto"
        What computes the assignment passes (the matrix products and argmax of the Lloyd
        iterations and of the final labels). ``"torch"``: chunked torch matrix products on
        ``device``. ``"faiss"``: faiss's exact inner-product search (``faiss.IndexFlatIP``,
        package ``faiss-cpu``), CPU and float32 only. ``"auto"``: faiss when it is
        installed, the device is the CPU and ``X`` is float32, torch otherwise. Everything
        else (k-means++ seeding, empty-cluster relocation, centre update, convergence test)
        is the package's own in every case, so both backends run the same algorithm from
        the same seeds; their results agree up to float32 rounding (which can flip a
        near-tie between two centres). faiss uses its own thread pool
        (``faiss.omp_set_num_threads``), not torch's.

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

    See Also
    --------
    SphericalKMeans : The estimator, which L2-normalises ``X`` itself.

    Notes
    -----
    With unit rows ``x_i`` and unit centres ``c_k``, each restart maximises the objective
    ``sum_i max_k <x_i, c_k>``: the assignment step gives ``x_i`` the label
    ``argmax_k <x_i, c_k>``, the update step sets ``c_k = s_k / ||s_k||`` with ``s_k`` the
    sum of the members of cluster ``k``. For unit vectors ``||x - c||^2 = 2 - 2 <x, c>``, so
    the k-means++ seeding on squared Euclidean distances is the cosine seeding.

    References
    ----------
    .. [1] I. S. Dhillon and D. S. Modha, "Concept decompositions for large sparse text data
       using clustering", Machine Learning 42, 2001.
    .. [2] D. Arthur and S. Vassilvitskii, "k-means++: the advantages of careful seeding",
       SODA 2007.

    Examples
    --------
    >>> import numpy as np
    >>> from skgradnorm import spherical_kmeans
    >>> X = np.array([[1.0, 0.0], [0.9, 0.1], [0.0, 1.0], [0.1, 0.9]])
    >>> X /= np.linalg.norm(X, axis=1, keepdims=True)
    >>> centers, labels, objective, n_iter = spherical_kmeans(X, 2, random_state=0)
    >>> bool(labels[0] == labels[1] != labels[2] == labels[3])
    True
    """
    X = np.asarray(X)
    n_samples = X.shape[0]
    check_n_clusters(n_clusters, n_samples)
    init_size = _check_sample_size(init_size, "init_size", n_clusters)
    max_samples = _check_sample_size(max_samples, "max_samples", n_clusters)
    dev = resolve_device(device)
    dtype = torch_dtype_for(X)
    search = _resolve_search(backend, dev, dtype)
    X_np = X if X.dtype in (np.float32, np.float64) else X.astype(np.float64)
    Xt = as_tensor(X_np, dev, dtype)
    if chunk_size is None:
        chunk_size = default_chunk_size(n_clusters, dev)
    chunk_size = max(1, int(chunk_size))

    rng = check_random_state(random_state)
    seeds = rng.randint(np.iinfo(np.int32).max, size=n_init)
    fit_rows = draw_rows(n_samples, max_samples, rng)
    X_fit = Xt if fit_rows is None else Xt[torch.as_tensor(fit_rows, device=dev)]
    seed_size = _default_init_size(X_fit.shape[0], n_clusters) if init_size is None else init_size

    best = None
    for run, seed in enumerate(seeds):
        run_rng = np.random.RandomState(seed)
        seed_rows = draw_rows(X_fit.shape[0], seed_size, run_rng)
        X_seed = X_fit if seed_rows is None else X_fit[torch.as_tensor(seed_rows, device=dev)]
        # k-means++ on the unit vectors is the cosine k-means++: for unit x and c,
        # ||x - c||^2 = 2 - 2 cos(x, c), so sampling proportionally to the squared Euclidean
        # distance to the nearest chosen centre is sampling proportionally to
        # (1 - max cosine), and the chosen seeds are samples, hence already unit norm.
        centers0, _ = _kmeans_plusplus(X_seed, n_clusters, run_rng)
        del X_seed
        centers, labels, objective, n_iter = _spherical_kmeans_single(
            X_fit, centers0, max_iter=max_iter, tol=tol, chunk_size=chunk_size, search=search
        )
        if verbose:
            print(
                f"spherical k-means restart {run + 1}/{n_init}: objective={objective:.6f} "
                f"after {n_iter} iteration(s)"
                + ("" if fit_rows is None else f" (on {X_fit.shape[0]} of {n_samples} samples)")
            )
        if best is None or objective > best[2]:
            best = (centers, labels, objective, n_iter)

    centers, labels, objective, n_iter = best
    if fit_rows is not None:
        del X_fit
        labels, best_cos = _assign(Xt, centers, chunk_size, search)
        objective = float(best_cos.sum(dtype=sum_dtype(dev)))
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
    n_clusters : int or "auto", default=8
        Number of clusters. ``"auto"`` fits every K of ``n_clusters_range`` and keeps the
        most stable one (see :func:`skgradnorm.tuning.search_n_clusters`); the choice is in
        ``n_clusters_`` and the criterion per K in ``n_clusters_scores_``.
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
        With ``n_clusters="auto"``: the K values tried.
    n_clusters_scores_ : ndarray of float
        With ``n_clusters="auto"``: the stability of each K (adjusted Rand index between
        two fits with different seeds; higher is better), to plot against
        ``n_clusters_range_``.
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
        "n_clusters": [Interval(Integral, 1, None, closed="left"), StrOptions({"auto"})],
        "n_clusters_range": ["array-like", None],
        "n_init": [Interval(Integral, 1, None, closed="left")],
        "max_iter": [Interval(Integral, 1, None, closed="left")],
        "tol": [Interval(Real, 0, None, closed="left")],
        "random_state": ["random_state"],
        "device": [None, str, torch.device],
        "init_size": [None, Interval(Integral, 1, None, closed="left")],
        "max_samples": [None, Interval(Integral, 1, None, closed="left")],
        "backend": [StrOptions(set(_BACKENDS))],
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
        """The checks that need both the parameters and the data."""
        if self.n_clusters == "auto":
            return check_n_clusters_range(self.n_clusters_range, X.shape[0])
        check_n_clusters(self.n_clusters, X.shape[0])
        return None

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
        kmeans = dict(
            n_init=self.n_init,
            max_iter=self.max_iter,
            tol=self.tol,
            random_state=self.random_state,
            device=self.device,
            init_size=self.init_size,
            max_samples=self.max_samples,
            backend=self.backend,
        )
        if ks is not None:
            self.n_clusters_, self.n_clusters_scores_, fit = search_n_clusters(Xn, ks, **kmeans)
            self.n_clusters_range_ = ks
            (centers, labels, objective, n_iter) = fit
            self._store(centers, labels, objective, n_iter)
            return self
        self.n_clusters_ = int(self.n_clusters)
        centers, labels, objective, n_iter = spherical_kmeans(
            Xn, self.n_clusters, verbose=bool(self.verbose), **kmeans
        )
        self._store(centers, labels, objective, n_iter)
        return self

    def _store(self, centers, labels, objective, n_iter):
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
        _, best = _assign(Xt, Ct, default_chunk_size(Ct.shape[0], dev))
        return float(best.sum(dtype=sum_dtype(dev)))

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.transformer_tags.preserves_dtype = ["float64", "float32"]
        return tags
