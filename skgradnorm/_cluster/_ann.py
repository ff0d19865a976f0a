"""Approximate k nearest neighbours by inner product: an inverted file (IVF), torch or faiss.

TAC's exact search costs ``n_samples**2 * n_features`` multiply-adds per modality, some
2.7 hours per modality at ImageNet-1K scale on two CPU cores. An inverted file cuts it by
comparing each row only with the rows of a few clusters near it:

1. **coarse lists**: spherical k-means (the package's :func:`._kmeans.spherical_kmeans`,
   one restart of at most 20 iterations from ``n_lists`` distinct random rows, as faiss
   seeds its own) on a random subsample of ``64 * n_lists`` rows puts ``n_lists`` unit
   centres on the data; every row joins the list of its most similar centre;
2. **probing**: every row, as a query, scans the ``n_probe`` lists whose centres are most
   similar to it (its own list first) and keeps its ``n_neighbors + 1`` largest inner
   products there; the row itself is then removed as in the exact search.

The torch backend runs the scan list by list: the queries probing a list are compared
with its members in one matrix product, and their running top-k is merged with the
list's. The faiss backend builds a ``faiss.IndexIVFFlat`` on the same centres, so both
backends return the same neighbours up to float32 rounding. Rows whose probed lists
together hold fewer than ``n_neighbors + 1`` rows are searched exactly.
"""

from __future__ import annotations

import math

import numpy as np
import torch
from sklearn.utils import check_random_state

from .._utils._torch import as_tensor, iter_chunks, resolve_device, torch_dtype_for
from ._kmeans import draw_rows, spherical_kmeans

__all__ = [
    "coarse_centers",
    "default_n_lists",
    "default_n_probe",
    "fill_exactly",
    "ivf_neighbors",
]

#: Rows per centre the coarse k-means is fitted on (faiss warns below 39).
_TRAIN_ROWS_PER_LIST = 64
#: Lloyd iterations of the coarse k-means.
_COARSE_MAX_ITER = 20
#: Bytes of the (queries, list size) similarity block of the torch scan.
_BLOCK_BYTES = 64 << 20


def default_n_lists(n_samples: int) -> int:
    """``round(sqrt(n_samples))`` lists: the coarse pass and the scan then cost about alike."""
    return max(1, round(math.sqrt(n_samples)))


def default_n_probe(n_lists: int) -> int:
    """Lists each query scans by default: ``max(24, ceil(n_lists / 50))``, at most all."""
    return min(n_lists, max(24, math.ceil(n_lists / 50)))


def coarse_centers(X: np.ndarray, n_lists: int, random_state, device, backend="auto"):
    """Unit centres of the inverted lists: one spherical k-means restart on a subsample."""
    random_state = check_random_state(random_state)
    rows = draw_rows(X.shape[0], _TRAIN_ROWS_PER_LIST * n_lists, random_state)
    sample = X if rows is None else X[rows]
    centers, _, _, _ = spherical_kmeans(
        sample,
        n_lists,
        n_init=1,
        max_iter=_COARSE_MAX_ITER,
        random_state=random_state,
        init_size=n_lists,  # seeds: n_lists distinct random rows, as faiss's own k-means
        device=device,
        backend=backend,
    )
    return centers


def _probes(Xt: torch.Tensor, Ct: torch.Tensor, n_probe: int) -> torch.Tensor:
    """The ``n_probe`` most similar centres of every row, most similar first."""
    n = Xt.shape[0]
    out = torch.empty((n, n_probe), dtype=torch.int64, device=Xt.device)
    rows = max(1, _BLOCK_BYTES // (4 * Ct.shape[0]))
    for sl in iter_chunks(n, rows):
        out[sl] = torch.topk(Xt[sl] @ Ct.T, n_probe, dim=1).indices
    return out


def _groups(keys: torch.Tensor, n_groups: int):
    """Indices sorted by ``keys`` (stable) and the start offset of every group."""
    order = torch.argsort(keys, stable=True)
    counts = torch.bincount(keys, minlength=n_groups)
    starts = torch.zeros(n_groups + 1, dtype=torch.int64, device=keys.device)
    torch.cumsum(counts, 0, out=starts[1:])
    return order, starts.tolist()


def _merge(best_val, best_idx, queries, values, indices, k1):
    """Fold a block's top hits into the running top-``k1`` of ``queries`` (in place)."""
    cat_val = torch.cat([best_val[queries], values], dim=1)
    cat_idx = torch.cat([best_idx[queries], indices], dim=1)
    top_val, pos = torch.topk(cat_val, k1, dim=1)
    best_val[queries] = top_val
    best_idx[queries] = torch.gather(cat_idx, 1, pos)


def _torch_ivf(Xt: torch.Tensor, Ct: torch.Tensor, k1: int, n_probe: int):
    """Top-``k1`` inner products of every row within its ``n_probe`` lists (self included).

    Returns the indices, with -1 where the probed lists held fewer than ``k1`` rows.
    """
    n, n_lists = Xt.shape[0], Ct.shape[0]
    probes = _probes(Xt, Ct, n_probe)
    members, member_starts = _groups(probes[:, 0].contiguous(), n_lists)
    pairs, pair_starts = _groups(probes.reshape(-1), n_lists)
    queries_of = pairs // n_probe  # the query of every (query, list) pair, grouped by list
    del probes, pairs
    best_val = torch.full((n, k1), float("-inf"), dtype=Xt.dtype, device=Xt.device)
    best_idx = torch.full((n, k1), -1, dtype=torch.int64, device=Xt.device)
    for j in range(n_lists):
        ids = members[member_starts[j] : member_starts[j + 1]]
        if ids.numel() == 0:
            continue
        Y_t = Xt[ids].T
        kk = min(k1, ids.numel())
        group = queries_of[pair_starts[j] : pair_starts[j + 1]]
        for sl in iter_chunks(group.numel(), max(1, _BLOCK_BYTES // (4 * ids.numel()))):
            q = group[sl]
            values, pos = torch.topk(Xt[q] @ Y_t, kk, dim=1)
            _merge(best_val, best_idx, q, values, ids[pos], k1)
    return best_idx


def _faiss_ivf(X: np.ndarray, centers: np.ndarray, k1: int, n_probe: int) -> np.ndarray:
    """The same search by ``faiss.IndexIVFFlat`` on the given centres (CPU, float32)."""
    import faiss

    d = X.shape[1]
    quantizer = faiss.IndexFlatIP(d)
    quantizer.add(np.ascontiguousarray(centers, dtype=np.float32))
    index = faiss.IndexIVFFlat(quantizer, d, centers.shape[0], faiss.METRIC_INNER_PRODUCT)
    index.add(X)  # trained already: the quantizer holds every centre
    index.nprobe = n_probe
    _, indices = index.search(X, k1)
    return indices.astype(np.int64, copy=False)


def fill_exactly(Xt: torch.Tensor, indices: torch.Tensor, k1: int) -> None:
    """Search exactly the rows left with fewer than ``k1`` hits (in place)."""
    short = torch.nonzero((indices < 0).any(dim=1)).flatten()
    for sl in iter_chunks(short.numel(), max(1, _BLOCK_BYTES // (4 * Xt.shape[0]))):
        rows = short[sl]
        indices[rows] = torch.topk(Xt[rows] @ Xt.T, k1, dim=1).indices


def ivf_neighbors(
    X,
    n_neighbors: int,
    *,
    n_lists: int | None = None,
    n_probe: int | None = None,
    backend: str = "torch",
    device=None,
    random_state=None,
) -> np.ndarray:
    """Approximate ``n_neighbors`` largest inner products of every row, itself included.

    Parameters
    ----------
    X : ndarray of shape (n_samples, n_features), float32 or float64
        Unit rows (L2-normalised).
    n_neighbors : int
        Hits per row to return, the row itself included (callers drop it).
    n_lists : int or None, default=None
        Number of inverted lists (None: :func:`default_n_lists`).
    n_probe : int or None, default=None
        Lists each row scans (None: :func:`default_n_probe`); ``n_probe = n_lists`` is the
        exact search.
    backend : {"torch", "faiss"}, default="torch"
        What scans the lists (``"faiss"``: CPU and float32 only; the caller checks).
    device : str, torch.device or None, default=None
        Where torch computes (the coarse k-means, and the torch scan).
    random_state : int, RandomState instance or None, default=None
        Seeds the subsample and the k-means of the coarse centres.

    Returns
    -------
    indices : ndarray of shape (n_samples, n_neighbors), int64
        Hits in order of decreasing inner product.
    """
    n = X.shape[0]
    n_lists = min(n, default_n_lists(n) if n_lists is None else int(n_lists))
    n_probe = min(n_lists, default_n_probe(n_lists) if n_probe is None else int(n_probe))
    dev = resolve_device(device)
    centers = coarse_centers(X, n_lists, random_state, dev, backend)
    Xt = as_tensor(X, dev, torch_dtype_for(X))
    if backend == "faiss":
        X32 = np.ascontiguousarray(X, dtype=np.float32)
        indices = torch.from_numpy(_faiss_ivf(X32, centers, n_neighbors, n_probe))
    else:
        Ct = as_tensor(centers, dev, Xt.dtype)
        indices = _torch_ivf(Xt, Ct, n_neighbors, n_probe)
    fill_exactly(Xt, indices, n_neighbors)
    return indices.cpu().numpy()
