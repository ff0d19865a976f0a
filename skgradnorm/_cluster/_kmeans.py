"""Spherical k-means: Lloyd iterations and the :func:`spherical_kmeans` function, in torch
(the layout of scikit-learn's ``sklearn/cluster/_kmeans.py``: the work in functions here,
the estimator :class:`~skgradnorm.SphericalKMeans` on top).

GradNorm uses spherical k-means twice: to find the fine-grained image centres ``W`` and to
cluster the joined image/text embeddings ``[u ; t]``. The k-means++ seedings are in
:mod:`._seeding`, the assignment passes (torch or faiss) in :mod:`._search`, the thread use
on the CPU in :mod:`._workers`.
"""

from __future__ import annotations

import warnings
from numbers import Integral, Real

import numpy as np
import torch
from sklearn.exceptions import ConvergenceWarning
from sklearn.utils import check_random_state
from sklearn.utils._param_validation import Interval, StrOptions, validate_params

from .._utils._torch import (
    as_tensor,
    default_chunk_size,
    resolve_device,
    single_threaded_on_cpu,
    sum_dtype,
    torch_dtype_for,
)
from .._utils._validation import check_n_clusters
from ._search import BACKENDS, assign, faiss_thread_count, resolve_search
from ._seeding import pooled_kmeans_plusplus
from ._workers import cpu_workers

__all__ = [
    "KMEANS_PARAMS",
    "default_init_size",
    "draw_rows",
    "kmeans_params",
    "spherical_kmeans",
    "warn_if_fewer_clusters",
]

#: The keyword arguments of :func:`spherical_kmeans` an estimator may share.
KMEANS_PARAMS = (
    "n_init",
    "max_iter",
    "tol",
    "random_state",
    "device",
    "init_size",
    "max_samples",
    "backend",
)


def kmeans_params(estimator, **overrides) -> dict:
    """The :func:`spherical_kmeans` settings of ``estimator``: its parameters named in
    :data:`KMEANS_PARAMS` (those it has), then ``overrides``. Built in one place for every
    k-means an estimator runs."""
    params = estimator.get_params(deep=False)
    return {name: params[name] for name in KMEANS_PARAMS if name in params} | overrides


def warn_if_fewer_clusters(labels, n_clusters: int, *, rows: str = "X") -> None:
    """Warn, as scikit-learn's ``KMeans`` does, when a fit used fewer distinct clusters
    than asked for (``ConvergenceWarning``): duplicate rows leave some centres with no row.
    The estimators call it on their final labels; the k-means inside a fit stay silent."""
    distinct = np.unique(np.asarray(labels)).size
    if distinct < n_clusters:
        warnings.warn(
            f"Number of distinct clusters ({distinct}) found smaller than n_clusters "
            f"({n_clusters}). Possibly due to duplicate points in {rows}: lower n_clusters "
            f"to at most {distinct}, or remove the duplicates.",
            ConvergenceWarning,
            stacklevel=3,
        )


#: Default seeding subsample (``init_size=None``): this many samples per cluster, and at least
#: ``_INIT_SIZE_MIN`` samples. On clustered data of 50,000 x 1,024 into 1,000 clusters (3 seeds,
#: 20 Lloyd iterations on all rows), seeding on 16 samples per cluster gave on average the
#: objective of seeding on all samples (0.7030 vs 0.7031 per row) in half the time; 8 per
#: cluster lost 0.35%, 4 per cluster 0.5%, 2 per cluster 1.7%.
_INIT_SIZE_PER_CLUSTER = 16
_INIT_SIZE_MIN = 16384


def default_init_size(n_samples: int, n_clusters: int) -> int:
    """Number of samples the k-means++ seeding runs on when ``init_size=None``."""
    return int(min(n_samples, max(_INIT_SIZE_MIN, _INIT_SIZE_PER_CLUSTER * n_clusters)))


def draw_rows(n: int, size, random_state):
    """Sorted indices of ``size`` distinct rows drawn uniformly, or None when ``size >= n``."""
    if size is None or size >= n:
        return None
    return np.sort(random_state.choice(n, size=int(size), replace=False))


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


def _lloyd_iter(
    X: torch.Tensor,
    centers: torch.Tensor,
    chunk_size: int,
    search=None,
    workers=None,
    *,
    info=None,
):
    """One Lloyd iteration of spherical k-means.

    Assign each row of ``X`` (unit norm) to its most cosine-similar centre, relocate empty
    clusters, then set every centre to the mean of its members renormalised to unit length.
    With ``search`` (see :func:`._search.faiss_searcher`), the rows are searched by it;
    ``workers`` spreads the pass over the CPU workers (:mod:`._workers`). The centre sums are
    added block by block in row order, so they do not depend on the number of workers.

    Returns ``(new_centers, labels)``; ``labels`` are the assignments after relocation (every
    cluster non-empty), from which ``new_centers`` are computed. ``info`` (a dict), when
    given, receives ``best`` (every row's cosine to its centre in ``centers``) and
    ``relocated`` (whether an empty cluster was given a row).
    """
    n_clusters = centers.shape[0]
    sums = torch.zeros_like(centers)

    def add_to_sums(sl, labels_sl):  # the centre sums, in the same pass over the rows
        with single_threaded_on_cpu(X.device):
            sums.index_add_(0, labels_sl, X[sl])

    labels, best = assign(X, centers, chunk_size, search, on_chunk=add_to_sums, workers=workers)
    counts = torch.bincount(labels, minlength=n_clusters)
    empty = counts == 0
    relocated = bool(empty.any())
    if relocated:
        _relocate_empty_clusters(X, sums, counts, labels, best, empty)
    if info is not None:
        info.update(best=best, relocated=relocated)
    # The mean and the sum have the same direction, so normalising the sum is enough.
    norms = torch.linalg.vector_norm(sums, dim=1, keepdim=True)
    # A cluster whose members cancel out (sum ~ 0, only possible in degenerate data) keeps its
    # previous centre, so that a centre is never NaN.
    degenerate = norms[:, 0] <= torch.finfo(X.dtype).tiny ** 0.5
    new_centers = sums / norms.clamp_min(torch.finfo(X.dtype).tiny)
    if bool(degenerate.any()):
        new_centers[degenerate] = centers[degenerate]
    return new_centers, labels


def _spherical_kmeans_single(X, centers, *, max_iter, tol, chunk_size, search=None, workers=None):
    """Lloyd iterations from ``centers`` until convergence; returns centres, labels, obj, n_iter.

    When the labels stop changing, the centres they were assigned with are returned with
    them (the pass that found the fixed point is the final E-step); otherwise a last pass
    labels the rows with the returned centres.
    """
    labels_old = None
    n_iter = 0
    acc = sum_dtype(X.device)
    for n_iter in range(1, max_iter + 1):  # noqa: B007 (n_iter is returned)
        info = {}
        new_centers, labels = _lloyd_iter(X, centers, chunk_size, search, workers, info=info)
        if labels_old is not None and torch.equal(labels, labels_old):
            # strict convergence: the assignment is a fixed point. Without a relocation,
            # ``labels`` are the argmax under ``centers`` and ``best`` their cosines, and
            # ``centers`` are (up to rounding) the means of these very labels.
            if not info["relocated"]:
                return centers, labels, float(info["best"].sum(dtype=acc)), n_iter
            centers = new_centers
            break
        shift = float(((new_centers - centers) ** 2).sum())
        centers = new_centers
        if shift <= tol:
            break
        labels_old = labels
    # Final E-step so that the labels (and the objective) match the returned centres.
    labels, best = assign(X, centers, chunk_size, search, workers=workers)
    return centers, labels, float(best.sum(dtype=acc)), n_iter


def _restart(X_fit, n_clusters, run_rng, seed_size, *, workers, **lloyd):
    """One restart: k-means++ on a subsample of ``seed_size`` rows drawn with ``run_rng``,
    then Lloyd iterations on all of ``X_fit``; returns centres, labels, objective, n_iter."""
    seed_rows = draw_rows(X_fit.shape[0], seed_size, run_rng)
    X_seed = X_fit if seed_rows is None else X_fit[torch.as_tensor(seed_rows, device=X_fit.device)]
    # k-means++ on the unit vectors is the cosine k-means++: for unit x and c,
    # ||x - c||^2 = 2 - 2 cos(x, c), so sampling proportionally to the squared Euclidean
    # distance to the nearest chosen centre is sampling proportionally to
    # (1 - max cosine), and the chosen seeds are samples, hence already unit norm.
    centers0, _ = pooled_kmeans_plusplus(
        X_seed, n_clusters, run_rng, workers=workers, chunk_size=lloyd["chunk_size"]
    )
    del X_seed
    return _spherical_kmeans_single(X_fit, centers0, workers=workers, **lloyd)


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
        "backend": [StrOptions(set(BACKENDS))],
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
    greedy k-means++; ``n_init`` restarts are run and the one with the largest objective is
    kept.

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
        Seeds the k-means++ initialisations and the subsamples. The same value, data,
        device and backend give the same result, whatever the number of threads.
    device : str, torch.device or None, default=None
        Torch device to compute on; None picks the best available (CUDA, MPS, CPU).
    chunk_size : int or None, default=None
        Number of samples per block of the torch assignment step (and of the seeding's
        matrix products); None picks one from
        :func:`skgradnorm._utils._torch.default_chunk_size` (faiss passes use blocks of
        2,048 rows).
    verbose : bool, default=False
        Print the objective of every restart.
    init_size : int or None, default=None
        Number of samples drawn at random (without replacement, anew for every restart) to
        run the k-means++ seeding on; the Lloyd iterations then run on all the (fitting)
        samples. None means ``max(16 * n_clusters, 16384)`` samples, or all of them when
        there are fewer; pass ``n_samples`` to always seed on every sample. The greedy
        k-means++ compares ``2 + log(n_clusters)`` candidates over every sample it seeds on
        for each centre, so on large data seeding on every sample would cost more than the
        Lloyd iterations.
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
        near-tie between two centres). faiss's thread count
        (``faiss.omp_set_num_threads``) sets how many threads run its passes, torch's the
        rest.

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

    The seeding is greedy k-means++ ([2]_, with scikit-learn's ``2 + log(n_clusters)``
    candidates per centre), its candidates drawn in pools by rejection sampling
    ([3]_; :func:`._seeding.pooled_kmeans_plusplus`): the same distribution of seeds, with
    a few large matrix products instead of one small one per centre. On the CPU, the
    matrix products run on single-threaded worker threads over fixed blocks of rows
    (:mod:`._workers`), which stay efficient when other processes keep the cores busy.

    References
    ----------
    .. [1] I. S. Dhillon and D. S. Modha, "Concept decompositions for large sparse text data
       using clustering", Machine Learning 42, 2001.
    .. [2] D. Arthur and S. Vassilvitskii, "k-means++: the advantages of careful seeding",
       SODA 2007.
    .. [3] J. von Neumann, "Various techniques used in connection with random digits",
       National Bureau of Standards Applied Mathematics Series 12, 1951 (rejection
       sampling).

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
    search = resolve_search(backend, dev, dtype)
    X_np = X if X.dtype in (np.float32, np.float64) else X.astype(np.float64)
    Xt = as_tensor(X_np, dev, dtype)
    if chunk_size is None:
        chunk_size = default_chunk_size(n_clusters, dev)
    chunk_size = max(1, int(chunk_size))

    rng = check_random_state(random_state)
    seeds = rng.randint(np.iinfo(np.int32).max, size=n_init)
    fit_rows = draw_rows(n_samples, max_samples, rng)
    X_fit = Xt if fit_rows is None else Xt[torch.as_tensor(fit_rows, device=dev)]
    seed_size = default_init_size(X_fit.shape[0], n_clusters) if init_size is None else init_size

    faiss_threads = faiss_thread_count() if search is not None else None
    with cpu_workers(dev, faiss_threads=faiss_threads) as workers:
        best = None
        for run, seed in enumerate(seeds):
            restart = _restart(
                X_fit, n_clusters, np.random.RandomState(seed), seed_size,
                max_iter=max_iter, tol=tol, chunk_size=chunk_size, search=search,
                workers=workers,
            )  # fmt: skip
            if verbose:
                print(
                    f"spherical k-means restart {run + 1}/{n_init}: "
                    f"objective={restart[2]:.6f} after {restart[3]} iteration(s)"
                    + ("" if fit_rows is None else f" (on {len(X_fit)} of {n_samples} samples)")
                )
            if best is None or restart[2] > best[2]:
                best = restart
        centers, labels, objective, n_iter = best
        if fit_rows is not None:
            del X_fit
            labels, best_cos = assign(Xt, centers, chunk_size, search, workers=workers)
            objective = float(best_cos.sum(dtype=sum_dtype(dev)))
    return (
        centers.cpu().numpy().astype(X_np.dtype, copy=False),
        labels.cpu().numpy().astype(np.int64, copy=False),
        float(objective),
        int(n_iter),
    )
