"""Spherical k-means in torch (cosine similarity, unit-norm centres).

Used twice by the GradNorm pipeline (see ``PAPER.md``, "Pipeline" items 3 and 6): to find the
fine-grained image centres ``W`` and to cluster the concatenated image/text embeddings. The
layout follows scikit-learn's ``sklearn/cluster/_kmeans.py``: a function doing the work
(:func:`spherical_kmeans`) and an estimator wrapping it (:class:`SphericalKMeans`).

Speed at scale (``benchmarks/bench_kmeans.py``): the seeding is scikit-learn's greedy
k-means++ (same random draws) re-implemented in torch, run on a random subsample
(``init_size``); the assignment passes are chunked matrix products in torch, or faiss's
exact inner-product search on the CPU when faiss is installed (``backend``); the centres can
be fitted on a subsample of the rows (``max_samples``) and every row assigned afterwards.
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
from sklearn.utils._param_validation import Interval, StrOptions
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


def _assign(X: torch.Tensor, centers: torch.Tensor, chunk_size: int, search=None, on_chunk=None):
    """Labels (argmax cosine) and best cosine of every row of ``X``, chunk by chunk.

    The (n_samples, n_clusters) similarity matrix is never held whole in memory. With
    ``search`` (see :func:`_faiss_search`), the pass is delegated to it. ``on_chunk(sl,
    labels)`` is called for every block of rows ``sl`` once labelled (for the whole range
    at once with ``search``), so that a caller can use the rows while they are in cache.
    """
    if search is not None:
        labels, best = search(X, centers)
        if on_chunk is not None:
            on_chunk(slice(0, X.shape[0]), labels)
        return labels, best
    n = X.shape[0]
    labels = torch.empty(n, dtype=torch.int64, device=X.device)
    best = torch.empty(n, dtype=X.dtype, device=X.device)
    centers_t = centers.T
    sim = _sim_buffer(X, centers, chunk_size)
    for sl in iter_chunks(n, chunk_size):
        block = sim[: sl.stop - sl.start]
        torch.mm(X[sl], centers_t, out=block)
        # one pass for the values and the indices; the first maximum on ties, like numpy
        torch.max(block, dim=1, out=(best[sl], labels[sl]))
        if on_chunk is not None:
            on_chunk(sl, labels[sl])
    return labels, best


def _sim_buffer(X, centers, chunk_size):
    """One (chunk, n_clusters) work matrix reused by every block of an assignment pass.

    Allocating it once per pass instead of once per block saves ~6% of a pass on the CPU
    (a fresh multi-MiB block is fresh pages, page-faulted in on every block).
    """
    rows = min(chunk_size, X.shape[0])
    return torch.empty((rows, centers.shape[0]), dtype=X.dtype, device=X.device)


def nearest_centers(X: np.ndarray, centers: np.ndarray, device=None) -> np.ndarray:
    """Index of the most cosine-similar centre (rows of ``centers``) for each row of ``X``.

    Rows are compared by dot product, so ``centers`` should have unit rows; ``X`` needs no
    normalisation (a positive row scale does not change the argmax). Chunked, on ``device``.
    """
    dev = resolve_device(device)
    dtype = torch.float64 if np.float64 in (X.dtype, centers.dtype) else torch.float32
    Xt, Ct = as_tensor(X, dev, dtype), as_tensor(centers, dev, dtype)
    labels, _ = _assign(Xt, Ct, default_chunk_size(centers.shape[0], dev))
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


def _acc_dtype(device: torch.device) -> torch.dtype:
    """Dtype of the sums over samples (objective, potentials): float64, but MPS has none."""
    return torch.float32 if device.type == "mps" else torch.float64


def _faiss_search(X: torch.Tensor, centers: torch.Tensor):
    """Labels and best cosine of every row of ``X`` by faiss's exact inner-product search.

    ``faiss.IndexFlatIP`` computes the same dot products as the torch pass, with its own
    BLAS and a max fused into its blocked loop. On 2 AMD EPYC cores a Lloyd pass over
    1.28M x 512 rows into 2,000 centres took 17.4 s this way against 22.4 s with torch's
    matrix products (on par at 50,000 x 1,024 into 1,000); see
    ``benchmarks/bench_kmeans.py``. CPU, float32 only.
    """
    import faiss

    index = faiss.IndexFlatIP(centers.shape[1])
    index.add(np.ascontiguousarray(centers.numpy()))
    best, labels = index.search(np.ascontiguousarray(X.numpy()), 1)
    return torch.from_numpy(labels[:, 0].copy()), torch.from_numpy(best[:, 0].copy())


_BACKENDS = ("auto", "torch", "faiss")


def _faiss_available() -> bool:
    try:
        import faiss  # noqa: F401
    except ImportError:
        return False
    return True


def _resolve_search(backend, device: torch.device, dtype: torch.dtype):
    """The assignment routine for ``backend``: None (torch) or :func:`_faiss_search`."""
    if backend not in _BACKENDS:
        raise ValueError(f"backend={backend!r} is not one of {_BACKENDS}.")
    if backend == "torch":
        return None
    usable = device.type == "cpu" and dtype == torch.float32
    if backend == "auto":
        return _faiss_search if usable and _faiss_available() else None
    if not _faiss_available():
        raise ImportError(
            "backend='faiss' needs the faiss-cpu package (pip install faiss-cpu); use "
            "backend='torch' or backend='auto' (faiss when installed, torch otherwise)."
        )
    if not usable:
        raise ValueError(
            f"backend='faiss' runs on the CPU in float32 only; got device={device.type!r} and "
            f"dtype={str(dtype).replace('torch.', '')}. Pass float32 data and device='cpu', or "
            "use backend='auto' (which picks torch in that case)."
        )
    return _faiss_search


def _lloyd_iter(X: torch.Tensor, centers: torch.Tensor, chunk_size: int, search=None):
    """One Lloyd iteration of spherical k-means.

    Assign each row of ``X`` (unit norm) to its most cosine-similar centre, relocate empty
    clusters, then set every centre to the mean of its members renormalised to unit length.
    With ``search`` (see :func:`_faiss_search`), the assignment is delegated to it.

    Returns ``(new_centers, labels)``; ``labels`` are the assignments after relocation (every
    cluster non-empty), from which ``new_centers`` are computed.
    """
    n_clusters = centers.shape[0]
    sums = torch.zeros_like(centers)

    def add_to_sums(sl, labels_sl):  # the centre sums, in the same pass over the rows
        with single_threaded_on_cpu(X.device):
            sums.index_add_(0, labels_sl, X[sl])

    labels, best = _assign(X, centers, chunk_size, search, on_chunk=add_to_sums)
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


def _spherical_kmeans_single(X, centers, *, max_iter, tol, chunk_size, search=None):
    """Lloyd iterations from ``centers`` until convergence; returns centres, labels, obj, n_iter."""
    labels_old = None
    n_iter = 0
    for n_iter in range(1, max_iter + 1):  # noqa: B007 (n_iter is returned)
        new_centers, labels = _lloyd_iter(X, centers, chunk_size, search)
        shift = float(((new_centers - centers) ** 2).sum())
        centers = new_centers
        if labels_old is not None and torch.equal(labels, labels_old):
            break  # strict convergence: the assignment is a fixed point
        if shift <= tol:
            break
        labels_old = labels
    # Final E-step so that the labels (and the objective) match the returned centres.
    labels, best = _assign(X, centers, chunk_size, search)
    return centers, labels, float(best.sum(dtype=_acc_dtype(X.device))), n_iter


#: Rows per block of the k-means++ distance updates: the (rows, n_local_trials) block of
#: distances stays in cache between the matrix product and the element-wise passes.
_SEEDING_CHUNK = 8192


def _kmeans_plusplus(
    X: torch.Tensor,
    n_clusters: int,
    random_state,
    *,
    n_local_trials=None,
    chunk_size=_SEEDING_CHUNK,
):
    """Greedy k-means++ seeding of the unit rows of ``X``, in torch, on ``X``'s device.

    The algorithm and the random draws are those of :func:`sklearn.cluster.kmeans_plusplus`
    (Arthur & Vassilvitskii's k-means++ with ``n_local_trials`` candidates per centre, the
    one that lowers the potential most being kept): given the same ``random_state``
    (a ``numpy.random.RandomState``) it takes the same draws from it in the same order, so
    it picks the same samples up to floating-point ties. For unit rows the squared Euclidean
    distance is ``2 - 2 cos``, so this is the cosine k-means++ of spherical k-means.

    Differences from scikit-learn's implementation, for speed only: the distances to the
    candidates are computed block by block as ``2 - 2 X @ candidates.T`` in the dtype of
    ``X`` (no float64 up-cast, no squared norms: the rows are unit), and the potentials and
    the cumulative sums are accumulated in float64 (float32 on MPS, which has no float64).

    Returns ``(centers, indices)``: a ``(n_clusters, n_features)`` tensor (rows of ``X``) and
    the int64 numpy array of their row indices.
    """
    n = X.shape[0]
    dev = X.device
    if n_local_trials is None:
        n_local_trials = 2 + int(np.log(n_clusters))  # scikit-learn's default
    n_local_trials = max(1, int(n_local_trials))
    chunk_size = max(1, int(chunk_size))
    np_dtype = np.float64 if X.dtype == torch.float64 else np.float32
    # Same first draw as scikit-learn (a choice with uniform sample weights).
    weights = np.ones(n, dtype=np_dtype)
    first = int(random_state.choice(n, p=weights / weights.sum()))
    indices = np.empty(n_clusters, dtype=np.int64)
    indices[0] = first

    closest = torch.empty(n, dtype=X.dtype, device=dev)
    x0 = X[first]
    for sl in iter_chunks(n, chunk_size):
        torch.mv(X[sl], x0, out=closest[sl])
    closest.mul_(-2.0).add_(2.0).clamp_min_(0.0)
    acc = _acc_dtype(dev)
    current_pot = float(closest.sum(dtype=acc))

    # dist[i, j]: squared distance of sample i to its nearest centre once candidate j is added.
    dist = torch.empty((n, n_local_trials), dtype=X.dtype, device=dev)
    for c in range(1, n_clusters):
        rand_vals = random_state.uniform(size=n_local_trials) * current_pot
        cumulative = torch.cumsum(closest, 0, dtype=acc)
        candidates = torch.searchsorted(
            cumulative, torch.as_tensor(rand_vals, dtype=acc, device=dev)
        ).clamp_max_(n - 1)  # rounding can put a draw past the last sum
        cand_t = X[candidates].T
        pots = torch.zeros(n_local_trials, dtype=acc, device=dev)
        for sl in iter_chunks(n, chunk_size):
            block = dist[sl]
            torch.mm(X[sl], cand_t, out=block)
            block.mul_(-2.0).add_(2.0).clamp_min_(0.0)
            torch.minimum(block, closest[sl, None], out=block)
            pots += block.sum(dim=0, dtype=acc)
        best = int(torch.argmin(pots))
        current_pot = float(pots[best])
        closest.copy_(dist[:, best])
        indices[c] = int(candidates[best])
    idx = torch.as_tensor(indices, device=dev)
    return X[idx], indices


#: Default seeding subsample (``init_size=None``): this many samples per cluster, and at least
#: ``_INIT_SIZE_MIN`` samples. On clustered data of 50,000 x 1,024 into 1,000 clusters (3 seeds,
#: 20 Lloyd iterations on all rows), seeding on 16 samples per cluster gave on average the
#: objective of seeding on all samples (0.7030 vs 0.7031 per row) in half the time; 8 per
#: cluster lost 0.35%, 4 per cluster 0.5%, 2 per cluster 1.7%.
_INIT_SIZE_PER_CLUSTER = 16
_INIT_SIZE_MIN = 16384


def _default_init_size(n_samples: int, n_clusters: int) -> int:
    """Number of samples the k-means++ seeding runs on when ``init_size=None``."""
    return int(min(n_samples, max(_INIT_SIZE_MIN, _INIT_SIZE_PER_CLUSTER * n_clusters)))


def _draw_rows(n: int, size, random_state):
    """Sorted indices of ``size`` distinct rows drawn uniformly, or None when ``size >= n``."""
    if size is None or size >= n:
        return None
    return np.sort(random_state.choice(n, size=int(size), replace=False))


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
        on large data it would cost more than the Lloyd iterations (at 1.28M rows into
        2,000 clusters: ~15 minutes on 2 CPU cores, estimated from the time per centre,
        against 17 s on the default 32,000).
        Measured at 50,000 x 1,024 into 1,000 clusters after 20 iterations
        (``benchmarks/bench_kmeans.py``): seeding on all rows gave a final objective 0.3%
        higher for 1.8x the time; on 4,096 rows, 0.5% lower for 0.6x the time.
    max_samples : int or None, default=None
        Fit the centres (seeding and Lloyd iterations, every restart) on a random subsample
        of this many rows, drawn once with ``random_state``, then assign all the rows to the
        fitted centres; the returned labels and objective are over all the rows. None fits
        on all the rows. This bounds the cost of the fit on very large data. Measured on
        1.28M x 512 rows into 2,000 clusters, 10 iterations (``benchmarks/bench_kmeans.py``):
        ``max_samples=524288`` took 0.52x the time of the full fit for an objective (over
        all rows) 0.12% lower, ``262144`` 0.31x the time for 0.27% lower, ``65536`` 0.18x
        for 1.1% lower.
    backend : {"auto", "torch", "faiss"}, default="auto"
        What computes the assignment passes (the matrix products and argmax of the Lloyd
        iterations and of the final labels). ``"torch"``: chunked torch matrix products on
        ``device``. ``"faiss"``: faiss's exact inner-product search (``faiss.IndexFlatIP``,
        package ``faiss-cpu``), CPU and float32 only; up to 1.3x faster per iteration than
        torch on the CPU measured, as fast as faiss's own k-means iterations
        (``benchmarks/bench_kmeans.py``).
        ``"auto"``: faiss when it is installed, the device is the CPU and ``X`` is float32,
        torch otherwise. Everything else (k-means++ seeding, empty-cluster relocation,
        centre update, convergence test) is the package's own in every case, so both
        backends run the same algorithm from the same seeds; their results agree up to
        float32 rounding (which can flip a near-tie between two centres). faiss uses its
        own thread pool (``faiss.omp_set_num_threads``), not torch's.

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
    init_size = _check_sample_size(init_size, "init_size", n_clusters)
    max_samples = _check_sample_size(max_samples, "max_samples", n_clusters)
    dev = resolve_device(device)
    dtype = torch.float64 if X.dtype == np.float64 else torch.float32
    search = _resolve_search(backend, dev, dtype)
    X_np = X if X.dtype in (np.float32, np.float64) else X.astype(np.float64)
    Xt = as_tensor(X_np, dev, dtype)
    if chunk_size is None:
        chunk_size = default_chunk_size(n_clusters, dev)
    chunk_size = max(1, int(chunk_size))

    rng = check_random_state(random_state)
    seeds = rng.randint(np.iinfo(np.int32).max, size=n_init)
    fit_rows = _draw_rows(n_samples, max_samples, rng)
    X_fit = Xt if fit_rows is None else Xt[torch.as_tensor(fit_rows, device=dev)]
    seed_size = _default_init_size(X_fit.shape[0], n_clusters) if init_size is None else init_size

    best = None
    for run, seed in enumerate(seeds):
        run_rng = np.random.RandomState(seed)
        seed_rows = _draw_rows(X_fit.shape[0], seed_size, run_rng)
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
        objective = float(best_cos.sum(dtype=_acc_dtype(dev)))
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
    init_size : int or None, default=None
        Number of samples (drawn at random for every restart) the k-means++ seeding runs
        on; the Lloyd iterations then use all the fitting samples. None means
        ``max(16 * n_clusters, 16384)`` samples, or all of them when there are fewer.
        See :func:`spherical_kmeans`.
    max_samples : int or None, default=None
        Fit the centres on a random subsample of this many rows (drawn with
        ``random_state``), then assign every row; ``labels_`` and ``objective_`` cover all
        the rows. None fits on all the rows. Use it to bound the cost of the fit on very
        large data (e.g. 1.28M image embeddings); see :func:`spherical_kmeans`.
    backend : {"auto", "torch", "faiss"}, default="auto"
        What computes the assignment passes of :meth:`fit`: torch, or faiss's exact
        inner-product search (faster on the CPUs measured; CPU and float32 only). ``"auto"``
        uses faiss when it is installed, the device is the CPU and ``X`` is float32.
        Seeding and centre updates are the package's own either way, so both give the same
        clustering up to float32 rounding. See :func:`spherical_kmeans`.
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
        "init_size": [None, Interval(Integral, 1, None, closed="left")],
        "max_samples": [None, Interval(Integral, 1, None, closed="left")],
        "backend": [StrOptions(set(_BACKENDS))],
        "verbose": ["verbose"],
    }

    def __init__(
        self,
        n_clusters=8,
        *,
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
        self.n_init = n_init
        self.max_iter = max_iter
        self.tol = tol
        self.random_state = random_state
        self.device = device
        self.init_size = init_size
        self.max_samples = max_samples
        self.backend = backend
        self.verbose = verbose

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
            init_size=self.init_size,
            max_samples=self.max_samples,
            backend=self.backend,
            verbose=bool(self.verbose),
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
        return float(best.sum(dtype=_acc_dtype(dev)))

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.transformer_tags.preserves_dtype = ["float64", "float32"]
        return tags
