"""Which centre is nearest to each row: the assignment pass of k-means, and its backends.

A pass gives every row its most cosine-similar centre in chunks (the (n_samples,
n_clusters) similarity matrix is never held whole), with torch's matrix products on any
device or faiss's exact inner-product search on the CPU (``backend``). The k-means
iterations (:mod:`._kmeans`), ``predict`` of the clusterers and the neighbour search
(:mod:`._neighbors`) use it.
"""

from __future__ import annotations

import threading

import numpy as np
import torch

from .._utils._torch import (
    as_tensor,
    default_chunk_size,
    iter_chunks,
    resolve_device,
    torch_dtype_for,
)

__all__ = [
    "BACKENDS",
    "FAISS_BLOCK",
    "assign",
    "faiss_available",
    "faiss_search",
    "faiss_searcher",
    "faiss_thread_count",
    "nearest_centers",
    "resolve_search",
]

#: The values of the ``backend`` parameters.
BACKENDS = ("auto", "torch", "faiss")


#: Rows per block of a faiss assignment pass on the CPU workers: on 2 cores, blocks of 1,024
#: to 4,096 rows searched as fast as (or faster than) one call over all the rows, at 128 to
#: 1,024 features and 300 to 2,000 centres; 512 rows were up to 2.4 times slower.
FAISS_BLOCK = 2048


def assign(
    X: torch.Tensor,
    centers: torch.Tensor,
    chunk_size: int,
    search=None,
    on_chunk=None,
    *,
    workers=None,
):
    """Labels (argmax cosine) and best cosine of every row of ``X``, block by block.

    The (n_samples, n_clusters) similarity matrix is never held whole in memory. With
    ``search`` (see :func:`faiss_searcher`), the blocks are searched by it. ``on_chunk(sl,
    labels)`` is called for every block of rows ``sl`` once labelled, in row order, so that
    a caller can use the rows while they are in cache. ``workers`` (a
    :class:`._workers.Workers`, on the CPU) spreads the blocks over its single-threaded
    workers; without it the blocks run one after the other in the calling thread (for
    faiss, as one call over all the rows, with faiss's own threads).
    """
    n = X.shape[0]
    labels = torch.empty(n, dtype=torch.int64, device=X.device)
    best = torch.empty(n, dtype=X.dtype, device=X.device)
    if search is None:
        block, library = _torch_searcher(centers, min(chunk_size, n)), "torch"
    else:
        block, library = search(centers), "faiss"
        chunk_size = n if workers is None else FAISS_BLOCK

    def one(sl):
        block(X[sl], labels[sl], best[sl])

    then = None if on_chunk is None else (lambda sl, _: on_chunk(sl, labels[sl]))
    if workers is None:
        for sl in iter_chunks(n, chunk_size):
            one(sl)
            if then is not None:
                then(sl, None)
    else:
        workers.run(one, iter_chunks(n, chunk_size), library=library, then=then)
    return labels, best


def _torch_searcher(centers, rows):
    """The torch block search: a matrix product into a work matrix, then one max pass.

    Each thread reuses one (rows, n_clusters) work matrix for all its blocks: allocating it
    once per pass instead of once per block saved ~6% of a pass on the CPU (a fresh
    multi-MiB block is fresh pages, page-faulted in on every block).
    """
    centers_t = centers.T
    local = threading.local()

    def search(X_block, labels_out, best_out):
        sim = getattr(local, "sim", None)
        if sim is None:
            sim = local.sim = torch.empty(
                (rows, centers.shape[0]), dtype=centers.dtype, device=centers.device
            )
        sim = sim[: X_block.shape[0]]
        torch.mm(X_block, centers_t, out=sim)
        # one pass for the values and the indices; the first maximum on ties, like numpy
        torch.max(sim, dim=1, out=(best_out, labels_out))

    return search


def nearest_centers(X: np.ndarray, centers: np.ndarray, device=None) -> np.ndarray:
    """Index of the most cosine-similar centre (rows of ``centers``) for each row of ``X``.

    Rows are compared by dot product, so ``centers`` should have unit rows; ``X`` needs no
    normalisation (a positive row scale does not change the argmax). Chunked, on ``device``.
    """
    dev = resolve_device(device)
    dtype = torch_dtype_for(X, centers)
    Xt, Ct = as_tensor(X, dev, dtype), as_tensor(centers, dev, dtype)
    labels, _ = assign(Xt, Ct, default_chunk_size(centers.shape[0], dev))
    return labels.cpu().numpy()


def faiss_searcher(centers: torch.Tensor):
    """faiss's exact inner-product search against ``centers``, as a block function.

    Returns ``search(X_block, labels_out, best_out)``, which writes the label and the best
    cosine of every row of ``X_block`` into the (contiguous, CPU) tensors ``labels_out`` and
    ``best_out``. ``faiss.IndexFlatIP`` computes the same dot products as the torch pass,
    with its own BLAS and a max fused into its blocked loop, which was faster on the CPUs
    measured (``benchmarks/RESULTS.md``). The index is built once; faiss's const searches
    may run from several threads at once. CPU, float32 only.
    """
    import faiss

    index = faiss.IndexFlatIP(centers.shape[1])
    index.add(np.ascontiguousarray(centers.numpy()))

    def search(X_block, labels_out, best_out):
        index.search(
            np.ascontiguousarray(X_block.numpy()),
            1,
            D=best_out.numpy().reshape(-1, 1),
            I=labels_out.numpy().reshape(-1, 1),
        )

    return search


def faiss_search(X: torch.Tensor, centers: torch.Tensor):
    """Labels and best cosine of every row of ``X`` by :func:`faiss_searcher`, in one call."""
    labels = torch.empty(X.shape[0], dtype=torch.int64)
    best = torch.empty(X.shape[0], dtype=torch.float32)
    faiss_searcher(centers)(X, labels, best)
    return labels, best


def faiss_thread_count() -> int:
    """The number of threads faiss is set to use (``faiss.omp_set_num_threads``)."""
    import faiss

    return int(faiss.omp_get_max_threads())


def faiss_available() -> bool:
    try:
        import faiss  # noqa: F401
    except ImportError:
        return False
    return True


def resolve_search(backend, device: torch.device, dtype: torch.dtype):
    """The assignment routine for ``backend``: None (torch) or :func:`faiss_searcher`."""
    if backend not in BACKENDS:
        raise ValueError(f"backend={backend!r} is not one of {BACKENDS}.")
    if backend == "torch":
        return None
    usable = device.type == "cpu" and dtype == torch.float32
    if backend == "auto":
        return faiss_searcher if usable and faiss_available() else None
    if not faiss_available():
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
    return faiss_searcher
