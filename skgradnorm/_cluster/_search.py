"""Which centre is nearest to each row: the assignment pass of k-means, and its backends.

A pass gives every row its most cosine-similar centre in chunks (the (n_samples,
n_clusters) similarity matrix is never held whole), with torch's matrix products on any
device or faiss's exact inner-product search on the CPU (``backend``). The k-means
iterations (:mod:`._kmeans`), ``predict`` of the clusterers and the neighbour search
(:mod:`._neighbors`) use it.
"""

from __future__ import annotations

import numpy as np
import torch

from .._utils._torch import (
    as_tensor,
    default_chunk_size,
    iter_chunks,
    resolve_device,
    torch_dtype_for,
)

__all__ = ["BACKENDS", "assign", "faiss_available", "nearest_centers", "resolve_search"]

#: The values of the ``backend`` parameters.
BACKENDS = ("auto", "torch", "faiss")


def assign(X: torch.Tensor, centers: torch.Tensor, chunk_size: int, search=None, on_chunk=None):
    """Labels (argmax cosine) and best cosine of every row of ``X``, chunk by chunk.

    The (n_samples, n_clusters) similarity matrix is never held whole in memory. With
    ``search`` (see :func:`faiss_search`), the pass is delegated to it. ``on_chunk(sl,
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
    labels, _ = assign(Xt, Ct, default_chunk_size(centers.shape[0], dev))
    return labels.cpu().numpy()


def faiss_search(X: torch.Tensor, centers: torch.Tensor):
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


def faiss_available() -> bool:
    try:
        import faiss  # noqa: F401
    except ImportError:
        return False
    return True


def resolve_search(backend, device: torch.device, dtype: torch.dtype):
    """The assignment routine for ``backend``: None (torch) or :func:`faiss_search`."""
    if backend not in BACKENDS:
        raise ValueError(f"backend={backend!r} is not one of {BACKENDS}.")
    if backend == "torch":
        return None
    usable = device.type == "cpu" and dtype == torch.float32
    if backend == "auto":
        return faiss_search if usable and faiss_available() else None
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
    return faiss_search
