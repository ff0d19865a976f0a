"""Exact k nearest neighbours by inner product, self excluded, without an n x n matrix.

TAC pairs every sample with one of its 50 nearest neighbours (inner product of the
L2-normalised embeddings) among the images, and separately among the text counterparts.
The search is exact and chunked: faiss's ``IndexFlatIP`` when faiss is installed, on the CPU
in float32 (as the k-means assignment passes of :mod:`._search` do), else blocks of rows
against all rows with torch's matrix product and ``topk``. Memory: one (chunk, n_samples)
block at a time, plus the (n_samples, n_neighbors) result.
"""

from __future__ import annotations

import numpy as np
import torch
from sklearn.utils import check_random_state

from .._utils._torch import as_tensor, default_chunk_size, iter_chunks, resolve_device
from ._ann import ivf_neighbors
from ._graph_refine import REFINE_N_PROBE, refine_graph
from ._hnsw import hnsw_neighbors
from ._search import BACKENDS, faiss_available

__all__ = [
    "ALGORITHMS",
    "EXACT_MAX_SAMPLES",
    "auto_algorithm",
    "drop_self",
    "nearest_neighbors",
]

#: The values of the ``algorithm`` parameter.
ALGORITHMS = ("auto", "exact", "ivf", "nndescent", "hnsw")
#: ``algorithm="auto"`` searches exactly up to this many rows (:func:`auto_algorithm`).
#: On the benchmark's CLIP-like worlds, two cores, the exact search of every row took 42 s
#: at 100,000 rows and 186 s at 200,000, the HNSW search and its two rounds 47 s (recall@50
#: 0.918) and 98 s (0.940): from here on the HNSW is about twice as fast (``benchmarks/
#: RESULTS.md``, "neighbor_algorithm='auto'").
EXACT_MAX_SAMPLES = 200_000
#: At most this many NN-descent rounds after the IVF start (fewer once a round changes
#: under 0.1% of the graph).
NNDESCENT_N_ROUNDS = 4
#: At most this many after the HNSW start (48 links): at 1.28M x 512 its search found
#: recall@50 0.923, one round 0.960, two 0.969 (12.9 min in all on two cores; earlier,
#: with 12 reverse neighbours, rounds 3 and 4 added 0.005 and 0.001: ``benchmarks/
#: RESULTS.md``, "Wider HNSW links" and "Cheaper rounds after the HNSW start").
HNSW_N_ROUNDS = 2
#: Reverse neighbours sampled into each join set after the HNSW start (the rounds' default
#: is ``n_forward // 2``, 12 at k = 50). The HNSW search has already given every row its
#: own list, so the reverse samples add little: with 6, a round took 0.74-0.84x the time
#: for 0.0002-0.003 less recall@50 after two rounds on four benchmark worlds
#: (``benchmarks/RESULTS.md``, "Cheaper rounds after the HNSW start").
HNSW_N_REVERSE = 6


def auto_algorithm(n_samples: int, *, on_cpu: bool, faiss_ok: bool) -> str:
    """The search ``algorithm="auto"`` runs on ``n_samples`` rows.

    ``"exact"`` up to :data:`EXACT_MAX_SAMPLES` rows, and at any size on an accelerator
    (a GPU does the exact search's ``n**2 d`` multiply-adds as matrix products; the
    HNSW index is CPU-only). Above it on the CPU: ``"hnsw"`` when faiss is installed
    (recall@50 0.969 at 1.28M x 512 in 11.5 to 12.9 min on two cores, against 126 min
    for the exact search), else ``"nndescent"`` (torch only; 0.83 at 200,000 rows). The
    plain IVF is never chosen: 0.46 at 1.28M, and the neighbours it missed were the
    same-class ones the heads need (``benchmarks/RESULTS.md``, "Approximate neighbours",
    "Cheaper rounds after the HNSW start").
    """
    if n_samples <= EXACT_MAX_SAMPLES or not on_cpu:
        return "exact"
    return "hnsw" if faiss_ok else "nndescent"


def drop_self(indices: np.ndarray, n_neighbors: int) -> np.ndarray:
    """Remove each row's own index from a (n, n_neighbors + 1) result (else its last column).

    A row's own index is normally its first hit, but exact ties (duplicated samples) may put
    a twin first: the row itself is removed wherever it stands, and when it was not
    returned at all the farthest hit is dropped instead.
    """
    n = indices.shape[0]
    is_self = indices == np.arange(n)[:, None]
    missing = ~is_self.any(axis=1)
    is_self[missing, -1] = True  # drop the farthest hit where the row itself is absent
    return indices[~is_self].reshape(n, n_neighbors)


def _nndescent(X, n_neighbors, n_lists, n_probe, backend, device, random_state, start):
    """A cheap IVF graph (few lists probed), or faiss's HNSW search (``start="hnsw"``),
    then NN-descent rounds on it."""
    rng = check_random_state(random_state)
    if start == "hnsw":
        hits = hnsw_neighbors(X, n_neighbors + 1)
    else:
        hits = ivf_neighbors(
            X, n_neighbors + 1, n_lists=n_lists,
            n_probe=REFINE_N_PROBE if n_probe is None else n_probe,
            backend=backend, device=device, random_state=rng,
        )  # fmt: skip
    graph = torch.from_numpy(drop_self(hits, n_neighbors))
    dev = resolve_device(device)
    Xt = as_tensor(X, dev, torch.float64 if X.dtype == np.float64 else torch.float32)
    kw = {"n_rounds": NNDESCENT_N_ROUNDS}
    if start == "hnsw":
        kw = {"n_rounds": HNSW_N_ROUNDS, "n_reverse": HNSW_N_REVERSE}
    return refine_graph(Xt, graph.to(dev), random_state=rng, **kw).cpu().numpy()


def _faiss_neighbors(X: np.ndarray, n_neighbors: int) -> np.ndarray:
    import faiss

    X = np.ascontiguousarray(X, dtype=np.float32)
    index = faiss.IndexFlatIP(X.shape[1])
    index.add(X)
    _, indices = index.search(X, n_neighbors + 1)
    return drop_self(indices, n_neighbors)


def _torch_neighbors(X: np.ndarray, n_neighbors: int, device, chunk_size) -> np.ndarray:
    dev = resolve_device(device)
    dtype = torch.float64 if X.dtype == np.float64 else torch.float32
    Xt = as_tensor(X, dev, dtype)
    n = Xt.shape[0]
    # larger blocks than the k-means' cache-sized ones: topk over n columns dominates here
    chunk_size = chunk_size or default_chunk_size(n, dev, (64 << 20) if dev.type == "cpu" else None)
    out = torch.empty((n, n_neighbors), dtype=torch.int64, device=dev)
    for sl in iter_chunks(n, chunk_size):
        sim = Xt[sl] @ Xt.T
        rows = torch.arange(sl.stop - sl.start, device=dev)
        sim[rows, rows + sl.start] = float("-inf")  # self excluded
        out[sl] = torch.topk(sim, n_neighbors, dim=1).indices
    return out.cpu().numpy()


def nearest_neighbors(
    X,
    n_neighbors: int,
    *,
    backend: str = "auto",
    device=None,
    chunk_size: int | None = None,
    algorithm: str = "exact",
    n_lists: int | None = None,
    n_probe: int | None = None,
    random_state=None,
) -> np.ndarray:
    """Indices of each row's ``n_neighbors`` largest inner products with the other rows.

    Parameters
    ----------
    X : ndarray of shape (n_samples, n_features)
        The embeddings (L2-normalised for cosine neighbours).
    n_neighbors : int
        Neighbours per row, at most ``n_samples - 1`` (a row is never its own neighbour).
    backend : {"auto", "torch", "faiss"}, default="auto"
        ``"faiss"``: ``faiss.IndexFlatIP`` (CPU, float32). ``"torch"``: chunked matrix
        products on ``device``. ``"auto"``: faiss when it is installed, ``device`` resolves to
        the CPU and ``X`` is float32, torch otherwise.
    device : str, torch.device or None, default=None
        Where the torch backend computes (None: CUDA, then MPS, then CPU).
    chunk_size : int or None, default=None
        Rows per block of the torch backend (None: a (chunk, n_samples) block of about
        64 MiB on the CPU, 256 MiB on accelerators).
    algorithm : {"auto", "exact", "ivf", "nndescent", "hnsw"}, default="exact"
        ``"exact"``: every pair of rows is compared. ``"ivf"``: the approximate inverted-file
        search of :func:`._ann.ivf_neighbors` (each row scans ``n_probe`` of ``n_lists``
        clusters). ``"nndescent"``: that IVF's graph (``n_probe`` default
        ``REFINE_N_PROBE``) refined by NN-descent rounds (:func:`._graph_refine.refine_graph`).
        ``"hnsw"``: faiss's HNSW index searched with every row (:func:`._hnsw.hnsw_neighbors`;
        needs faiss, CPU), refined by the same rounds. ``"auto"``: see
        :func:`auto_algorithm` (exact up to ``EXACT_MAX_SAMPLES``, 200,000 rows, and on
        accelerators; above it on the CPU, ``"hnsw"`` with faiss, else ``"nndescent"``).
    n_lists, n_probe : int or None, default=None
        The IVF's lists and lists scanned per row (None: :func:`._ann.default_n_lists`,
        :func:`._ann.default_n_probe`, or ``REFINE_N_PROBE`` for ``"nndescent"``).
    random_state : int, RandomState instance or None, default=None
        Seeds the IVF's coarse k-means and NN-descent's samples (the exact search draws
        nothing).

    Returns
    -------
    indices : ndarray of shape (n_samples, n_neighbors), int64
        Neighbours in order of decreasing inner product. Ties may be ordered differently
        by the two backends. The IVF's hits are the exact ones among the rows it scans.
    """
    n = X.shape[0]
    if n_neighbors < 1:
        raise ValueError(f"n_neighbors={n_neighbors} must be at least 1.")
    if n_neighbors > n - 1:
        raise ValueError(
            f"n_neighbors={n_neighbors} needs at least n_neighbors + 1 = {n_neighbors + 1} "
            f"samples (a sample is not its own neighbour); got n_samples={n}. Pass "
            f"n_neighbors <= {max(n - 1, 1)} or more samples."
        )
    if backend not in BACKENDS:
        raise ValueError(f"backend={backend!r} is not one of {BACKENDS}.")
    if algorithm not in ALGORITHMS:
        raise ValueError(f"algorithm={algorithm!r} is not one of {ALGORITHMS}.")
    on_cpu = resolve_device(device).type == "cpu"
    if backend == "auto":
        backend = "faiss" if on_cpu and X.dtype == np.float32 and faiss_available() else "torch"
    if algorithm == "auto":
        algorithm = auto_algorithm(n, on_cpu=on_cpu, faiss_ok=faiss_available())
    if algorithm == "hnsw" and not faiss_available():
        raise ImportError(
            'algorithm="hnsw" needs faiss (pip install faiss-cpu); use "nndescent" (torch '
            'only) or "exact" without it.'
        )
    if algorithm in ("nndescent", "hnsw"):
        return _nndescent(
            X, n_neighbors, n_lists, n_probe, backend, device, random_state, start=algorithm
        )
    if algorithm == "ivf":
        hits = ivf_neighbors(
            X, n_neighbors + 1, n_lists=n_lists, n_probe=n_probe, backend=backend,
            device=device, random_state=random_state,
        )  # fmt: skip
        return drop_self(hits, n_neighbors)
    if backend == "faiss":
        return _faiss_neighbors(X, n_neighbors).astype(np.int64, copy=False)
    return _torch_neighbors(X, n_neighbors, device, chunk_size)
