"""k-means++ seedings of unit rows, in torch: the default (candidates drawn in pools, by
rejection) and the exact replay of scikit-learn's draws.

Both are Arthur & Vassilvitskii's greedy k-means++: each new centre is the best, by the
potential it leaves, of ``n_local_trials`` candidates drawn with probability proportional to
the squared distance to the nearest centre so far (:math:`D^2`). For unit rows
:math:`\\|x - c\\|^2 = 2 - 2 \\langle x, c \\rangle`, so this is the cosine k-means++ of
spherical k-means.
"""

from __future__ import annotations

import numpy as np
import torch

from .._utils._torch import iter_chunks, numpy_dtype_for, sum_dtype

__all__ = ["SEEDING_POOL_SIZE", "kmeans_plusplus", "pooled_kmeans_plusplus"]

#: Rows per block of the distance updates: a (rows, candidates) block stays in cache
#: between the matrix product and the element-wise passes.
_SEEDING_CHUNK = 8192

#: Most candidates drawn at once by :func:`pooled_kmeans_plusplus`: their similarities to
#: every row are one matrix product. On the 2-core CPU of ``benchmarks/RESULTS.md``, one
#: thread multiplied 16,384 x 128 rows by 256 columns at 52-56 GFLOP/s, by the 7 columns of
#: one centre's trials at 13-15 GFLOP/s; 512 columns were no faster over a whole seeding
#: (more of each pool is dropped when the potential halves).
SEEDING_POOL_SIZE = 256

#: At most this many bytes of pool similarities (``pool_size`` x rows): the pools shrink
#: when the seeding runs on very many rows (``init_size``), down to ``n_local_trials``.
_POOL_BYTES = 256 << 20


def _default_trials(n_clusters, n_local_trials):
    if n_local_trials is None:
        n_local_trials = 2 + int(np.log(n_clusters))  # scikit-learn's default
    return max(1, int(n_local_trials))


class _CandidatePool:
    """Candidates drawn from :math:`D^2` in a batch, handed out by rejection sampling.

    A pool is drawn from the distances ``D_s`` of the moment it is drawn: ``size`` rows
    i.i.d. with probability ``D_s(x) / sum D_s``, each with a uniform ``u``, and the
    similarities of the pool to every row in one matrix product. Later, when the distances
    are ``D_t <= D_s`` (centres only get added), an entry ``x`` is accepted as a draw from
    ``D_t`` when ``u * D_s(x) <= D_t(x)``: exact rejection sampling, as ``D_t / D_s <= 1``,
    so the accepted entries are i.i.d. draws from ``D_t``. The entries are examined in
    order, each once. A new pool is drawn when this one is used up (the candidates it gave
    for the current centre are then dropped and all taken from the new pool), or when the
    potential has halved since it was drawn (then fewer than half of its entries would be
    accepted).
    The pools start small (the potential falls fast over the first centres) and double up
    to ``max_size``.
    """

    def __init__(self, X, random_state, *, first_size, max_size, workers=None, chunk_size):
        self.X = X
        self.chunk_size = chunk_size
        self.random_state = random_state
        self.size = 0
        self.next_size = max(1, int(first_size))
        self.max_size = max(self.next_size, int(max_size))
        self.workers = workers
        self.pos = 0
        self.potential = 0.0
        self.sims = None

    def _draw(self, closest):
        """A new pool from the squared distances ``closest`` (numpy draws: positions, then
        acceptance uniforms)."""
        X, n = self.X, self.X.shape[0]
        size = self.next_size
        self.next_size = min(self.max_size, 2 * size)
        cumulative = torch.cumsum(closest, 0, dtype=sum_dtype(X.device))
        total = float(cumulative[-1])
        draws = self.random_state.uniform(size=size) * total
        rows = torch.searchsorted(
            cumulative, torch.as_tensor(draws, dtype=cumulative.dtype, device=X.device)
        ).clamp_max_(n - 1)  # rounding can put a draw past the last sum
        self.uniforms = self.random_state.uniform(size=size)
        self.rows = rows.cpu().numpy()
        self.weights = closest[rows].cpu().numpy().astype(np.float64)
        if self.sims is None or self.sims.shape[0] < size:
            self.sims = torch.empty((self.max_size, n), dtype=X.dtype, device=X.device)
        sims = self.sims[:size]
        pool = X[rows]
        if self.workers is None:
            torch.mm(pool, X.T, out=sims)
        else:  # blocks of columns on the CPU workers; out= a column block needs no copy

            def block(sl):
                torch.mm(pool, X[sl].T, out=sims[:, sl])

            self.workers.run(block, iter_chunks(n, self.chunk_size))
        self.size, self.pos, self.potential = size, 0, total

    def take(self, count, best_sim, potential):
        """Positions in the pool of ``count`` i.i.d. draws from the current :math:`D^2`.

        ``best_sim`` is every row's largest similarity to the centres chosen so far and
        ``potential`` the sum of its squared distances.
        """
        chosen = []
        while len(chosen) < count:
            if self.size == 0 or self.pos >= self.size or potential < 0.5 * self.potential:
                self._draw((2.0 - 2.0 * best_sim).clamp_min_(0.0))
                # The draws accepted from the old pool go with it (their similarities are
                # overwritten); all of this centre's candidates come from the new pool,
                # whose entries are i.i.d. draws from the current distances.
                chosen = []
            need = count - len(chosen)
            window = slice(self.pos, min(self.size, self.pos + 2 * need + 4))
            rows = torch.as_tensor(self.rows[window], device=best_sim.device)
            now = (2.0 - 2.0 * best_sim[rows]).clamp_min_(0.0).cpu().numpy().astype(np.float64)
            accepted = np.flatnonzero(self.uniforms[window] * self.weights[window] <= now)
            accepted = accepted[:need] + window.start
            chosen.extend(accepted.tolist())
            self.pos = accepted[-1] + 1 if len(accepted) == need else window.stop
        return chosen


def pooled_kmeans_plusplus(
    X: torch.Tensor,
    n_clusters: int,
    random_state,
    *,
    n_local_trials=None,
    pool_size=SEEDING_POOL_SIZE,
    workers=None,
    chunk_size=_SEEDING_CHUNK,
):
    """Greedy k-means++ seeding of the unit rows of ``X``, candidates drawn in pools.

    The algorithm of :func:`kmeans_plusplus` (and of scikit-learn): the first centre is a
    row drawn uniformly; every next one is, of ``n_local_trials`` rows drawn i.i.d. with
    probability proportional to their squared distance to the nearest centre so far, the
    one that leaves the smallest potential (sum of those distances). The centres have the
    same distribution as there; only the random draws differ. The candidates are drawn in
    pools of up to ``pool_size`` (fewer on very many rows, to hold the pool's similarities
    in 256 MiB) by rejection sampling (see ``_CandidatePool``), so that
    the similarities of all the rows to them are a few large matrix products instead of
    one small one per centre; what remains per centre is an element-wise maximum and a sum
    over ``n_local_trials`` rows of similarities.

    On the CPU, run it with the calling thread's torch on one thread (as
    :func:`.cpu_workers` does); the matrix products then run on ``workers`` (a
    :class:`.Workers`, or None: in the calling thread), in blocks of ``chunk_size`` rows.
    The result does not depend on the number of workers.

    Returns ``(centers, indices)``: a ``(n_clusters, n_features)`` tensor (rows of ``X``)
    and the int64 numpy array of their row indices.
    """
    n = X.shape[0]
    trials = _default_trials(n_clusters, n_local_trials)
    indices = np.empty(n_clusters, dtype=np.int64)
    indices[0] = random_state.randint(n)
    # best_sim[i]: the largest cosine of row i to a chosen centre; its squared distance to
    # the nearest centre is 2 - 2 best_sim[i].
    best_sim = torch.mv(X, X[int(indices[0])])
    potential = float((2.0 - 2.0 * best_sim).clamp_min_(0.0).sum(dtype=sum_dtype(X.device)))
    max_size = max(trials, min(int(pool_size), _POOL_BYTES // (X.element_size() * n)))
    pool = _CandidatePool(
        X,
        random_state,
        first_size=min(max_size, 4 * trials),
        max_size=max_size,
        workers=workers,
        chunk_size=max(1, int(chunk_size)),
    )
    gains = torch.empty((trials, n), dtype=X.dtype, device=X.device)
    for c in range(1, n_clusters):
        positions = pool.take(trials, best_sim, potential)
        # gains[j, i]: how much the cosine of row i to its nearest centre rises if candidate
        # j is added; the potential falls by 2 sum_i gains[j, i]. Summing the gains rather
        # than the new distances keeps the float32 sums accurate relative to the
        # differences between the candidates, which decide.
        torch.index_select(pool.sims, 0, torch.as_tensor(positions, device=X.device), out=gains)
        gains.sub_(best_sim).clamp_min_(0.0)
        totals = gains.sum(dim=1)
        best = int(torch.argmax(totals))
        best_sim = best_sim + gains[best]
        potential = max(0.0, potential - 2.0 * float(totals[best]))
        indices[c] = pool.rows[positions[best]]
    idx = torch.as_tensor(indices, device=X.device)
    return X[idx], indices


def kmeans_plusplus(
    X: torch.Tensor,
    n_clusters: int,
    random_state,
    *,
    n_local_trials=None,
    chunk_size=_SEEDING_CHUNK,
):
    """Greedy k-means++ seeding of the unit rows of ``X`` with scikit-learn's draws.

    The algorithm and the random draws are those of :func:`sklearn.cluster.kmeans_plusplus`
    (Arthur & Vassilvitskii's k-means++ with ``n_local_trials`` candidates per centre, the
    one that lowers the potential most being kept): given the same ``random_state``
    (a ``numpy.random.RandomState``) it takes the same draws from it in the same order, so
    it picks the same samples up to floating-point ties. It makes one small matrix product
    per centre; :func:`pooled_kmeans_plusplus`, which :func:`.spherical_kmeans` uses, draws
    from the same distribution with far fewer, larger ones.

    Differences from scikit-learn's implementation, for speed only: the distances to the
    candidates are computed block by block as ``2 - 2 X @ candidates.T`` in the dtype of
    ``X`` (no float64 up-cast, no squared norms: the rows are unit), and the potentials and
    the cumulative sums are accumulated in float64 (float32 on MPS, which has no float64).

    Returns ``(centers, indices)``: a ``(n_clusters, n_features)`` tensor (rows of ``X``) and
    the int64 numpy array of their row indices.
    """
    n = X.shape[0]
    dev = X.device
    n_local_trials = _default_trials(n_clusters, n_local_trials)
    chunk_size = max(1, int(chunk_size))
    np_dtype = numpy_dtype_for(X.dtype)
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
    acc = sum_dtype(dev)
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
