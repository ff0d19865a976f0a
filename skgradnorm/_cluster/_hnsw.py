"""Approximate k nearest neighbours by inner product from faiss's HNSW graph index.

faiss's HNSW index (Malkov and Yashunin, "Efficient and robust approximate nearest
neighbor search using Hierarchical Navigable Small World graphs", TPAMI 2018) is built on
all the rows (inner product, ``M`` links per row and layer, ``efConstruction`` candidates
per insertion) and then searched with every row as a query (``efSearch`` candidates kept
per query). The index stores the rows as 8-bit scalar codes (``IndexHNSWSQ``, ``QT_8bit``,
per-feature ranges from all rows) rather than float32 (``IndexHNSWFlat``): its hits are
only the start of NN-descent, which re-scores every pair exactly, and on the 200,000-row
benchmark world the codes built and searched 1.8x faster than float32 in one run for the
same recall@50 after the search (0.810; 6-bit codes: 1.4x, 0.810; 4-bit: 0.785;
``benchmarks/RESULTS.md``, "A quantised HNSW start"). The graph is wide and the search
short (48 links, 64 construction and 64 search candidates): with 32 links, 80 and 128
candidates the search took about as long and found fewer of the 50 nearest (0.81 against
0.91 at 200,000 rows, 0.82 against 0.92 at 1.28M; "Wider HNSW links"). A library, not
hand-written: faiss's HNSW is well kept, fast on the CPU and its index holds only the codes
and links. It is CPU-only and its build inserts rows in parallel threads, so two builds on
several threads may differ in a few links (the result is not bit-reproducible across runs,
only across thread counts of one). :func:`._neighbors.nearest_neighbors` refines its graph
by NN-descent rounds (``algorithm="hnsw"``).
"""

from __future__ import annotations

import numpy as np
import torch

from .._utils._torch import iter_chunks
from ._ann import fill_exactly

__all__ = ["HNSW_EF_CONSTRUCTION", "HNSW_M", "default_ef_search", "hnsw_neighbors"]

#: Links per row and layer (faiss's level 0 holds twice as many). 48 rather than 32: on
#: the 200,000-row benchmark world the search of every row found 0.91 of the 50 nearest
#: against 0.81 in about the same time (``benchmarks/RESULTS.md``, "Wider HNSW links").
HNSW_M = 48
#: Candidates kept while inserting a row.
HNSW_EF_CONSTRUCTION = 64
#: Query rows per faiss search call (bounds the (rows, k) results held at once).
_QUERY_CHUNK = 65_536


def default_ef_search(n_neighbors: int) -> int:
    """Candidates kept per query: ``max(64, ceil(1.25 * n_neighbors))`` (more than asked)."""
    return max(64, -(-5 * int(n_neighbors) // 4))


def hnsw_neighbors(X, n_neighbors: int) -> np.ndarray:
    """Approximate ``n_neighbors`` largest inner products of every row, itself included.

    Parameters
    ----------
    X : ndarray of shape (n_samples, n_features)
        Unit rows (L2-normalised); searched in float32.
    n_neighbors : int
        Hits per row to return, the row itself included (callers drop it). The search
        keeps :func:`default_ef_search` candidates per query.

    Returns
    -------
    indices : ndarray of shape (n_samples, n_neighbors), int64
        Hits in order of decreasing inner product with the 8-bit codes (callers re-score
        exactly: :func:`._graph_refine.refine_graph`). A query that finds fewer than
        ``n_neighbors`` rows (rare: the graph search ran out of candidates) is searched
        exactly (:func:`._ann.fill_exactly`).
    """
    import faiss

    X = np.ascontiguousarray(X, dtype=np.float32)
    index = faiss.IndexHNSWSQ(
        X.shape[1], faiss.ScalarQuantizer.QT_8bit, HNSW_M, faiss.METRIC_INNER_PRODUCT
    )
    index.train(X)  # the codes' per-feature ranges: one pass over the rows
    index.hnsw.efConstruction = HNSW_EF_CONSTRUCTION
    index.add(X)
    index.hnsw.efSearch = default_ef_search(n_neighbors)
    out = np.empty((X.shape[0], n_neighbors), dtype=np.int64)
    for sl in iter_chunks(X.shape[0], _QUERY_CHUNK):
        _, out[sl] = index.search(X[sl], n_neighbors)
    del index
    fill_exactly(torch.from_numpy(X), torch.from_numpy(out), n_neighbors)  # -1: ran short
    return out
