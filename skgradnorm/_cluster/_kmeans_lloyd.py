"""The Lloyd iterations of spherical k-means: assignment passes, centre updates, backends.

An assignment pass gives every row its most cosine-similar centre in chunks (the
(n_samples, n_clusters) similarity matrix is never held whole), with torch's matrix products
or faiss's exact inner-product search (``backend``). A Lloyd iteration adds the centre
update (the normalised sum of the members) and relocates empty clusters as scikit-learn
does. :func:`skgradnorm._spherical_kmeans.spherical_kmeans` runs them from k-means++ seeds.
"""

from __future__ import annotations

import numpy as np
import torch

from .._utils._torch import (
    as_tensor,
    default_chunk_size,
    iter_chunks,
    resolve_device,
    single_threaded_on_cpu,
    sum_dtype,
    torch_dtype_for,
)

__all__ = ["nearest_centers"]


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
    dtype = torch_dtype_for(X, centers)
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


def _faiss_search(X: torch.Tensor, centers: torch.Tensor):
    """Labels and best cosine of every row of ``X`` by faiss's exact inner-product search.

    ``faiss.IndexFlatIP`` computes the same dot products as the torch pass, with its own
    BLAS and a max fused into its blocked loop, which was faster on the CPUs measured
    (``benchmarks/RESULTS.md``). CPU, float32 only.
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
    return centers, labels, float(best.sum(dtype=sum_dtype(X.device))), n_iter
