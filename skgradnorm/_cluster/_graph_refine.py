"""Refine an approximate k-nearest-neighbour graph by NN-descent's local joins, in torch.

NN-descent (Dong, Charikar and Li, "Efficient k-nearest neighbor graph construction for
generic similarity measures", WWW 2011) rests on "a neighbour of a neighbour is likely a
neighbour". Each round here is one local join over every row ``v``:

1. **join set**: ``S_v`` = ``v`` itself, its ``n_forward`` nearest current neighbours
   and up to ``n_reverse`` rows that list ``v`` among theirs (a fresh random sample of
   the reverse neighbours every round; without them a row that nobody lists would never
   be offered anything);
2. **local join**: the Gram matrix ``X[S_v] X[S_v]^T`` (one batched matrix product for a
   batch of rows ``v``) offers every member ``u`` of ``S_v`` the other members ``w``; of
   those whose inner product beats ``u``'s current k-th, the ``n_offers`` best are kept;
3. **merge**: every row keeps the ``k`` largest of its current neighbours and all it was
   offered (duplicates removed).

The rows a row is offered in one round are its neighbours' neighbours, its reverse
neighbours' neighbours and so on, so the graph can only improve: a row's k-th inner
product never decreases. The rounds stop after ``n_rounds`` or once a round changes fewer
than ``delta * n_samples * k`` entries, as in the paper.

Hand-written, not a library, because the libraries at hand cannot start from a given
graph: faiss's ``IndexNNDescentFlat`` (faiss-cpu 1.15.1) builds from a random graph, on
the CPU only, and hands its graph back only through its internals (``nndescent.
final_graph``); pynndescent needs numba, which the package does not depend on. This one
runs wherever torch does (batched Gram matrices: each gathered row serves ``|S_v|`` inner
products) and takes the IVF graph as its start. It is not
faster: on the 200,000-row world of ``benchmarks/bench_neighbors.py`` faiss's NN-descent
reached a higher recall in less time (``benchmarks/RESULTS.md``, "NN-descent").
"""

from __future__ import annotations

import numpy as np
import torch
from sklearn.utils import check_random_state

from .._utils._torch import iter_chunks

__all__ = ["REFINE_N_PROBE", "neighbor_similarities", "refine_graph", "reverse_sample"]

#: Lists each row of the starting IVF graph scans: a cheap start, the rounds repair it.
REFINE_N_PROBE = 4

#: Bytes of the gathered (rows, |S_v|, n_features) block of one batch of local joins.
_BLOCK_BYTES = 64 << 20
#: Target rows per merge bucket (bounds the sort of the offers of one bucket).
_BUCKET_ROWS = 65_536


def neighbor_similarities(Xt: torch.Tensor, indices: torch.Tensor) -> torch.Tensor:
    """``sim[i, j] = X[i] . X[indices[i, j]]`` for every row, in batches."""
    n, k = indices.shape
    out = torch.empty((n, k), dtype=Xt.dtype, device=Xt.device)
    rows = max(1, _BLOCK_BYTES // (Xt.element_size() * Xt.shape[1] * k))
    buf = torch.empty((rows * k, Xt.shape[1]), dtype=Xt.dtype, device=Xt.device)
    for sl in iter_chunks(n, rows):
        b = sl.stop - sl.start
        Y = torch.index_select(Xt, 0, indices[sl].reshape(-1), out=buf[: b * k])
        out[sl] = torch.bmm(Y.view(b, k, -1), Xt[sl].unsqueeze(2)).squeeze(2)
    return out


def reverse_sample(indices: torch.Tensor, n_reverse: int, generator, is_new=None):
    """Up to ``n_reverse`` random rows listing each row as a neighbour; -1 pads.

    With ``is_new`` (the flags of ``indices``' entries), also the flag of each listing.
    """
    n, k = indices.shape
    out = torch.full((n, n_reverse), -1, dtype=torch.int64, device=indices.device)
    flags = torch.zeros((n, n_reverse), dtype=torch.bool, device=indices.device)
    if n_reverse == 0:
        return out if is_new is None else (out, flags)
    perm = torch.randperm(n * k, generator=generator).to(indices.device)
    target = indices.reshape(-1)[perm]
    order = torch.argsort(target, stable=True)  # random order within each target
    target, source = target[order], perm[order] // k
    starts = torch.zeros(n + 1, dtype=torch.int64, device=indices.device)
    torch.cumsum(torch.bincount(target, minlength=n), 0, out=starts[1:])
    rank = torch.arange(target.numel(), device=indices.device) - starts[target]
    keep = rank < n_reverse
    out[target[keep], rank[keep]] = source[keep]
    if is_new is None:
        return out
    flags[target[keep], rank[keep]] = is_new.reshape(-1)[perm[order][keep]]
    return out, flags


class _JoinBuffers:
    """The fixed-size per-batch tensors of :func:`_offers`, allocated once per refinement.

    Fresh tensors of tens of MB per batch cost page faults whenever the allocator has
    handed their memory back to the system: at 1.28M rows, after an exact search in the
    same process, a first round took 172 and 191 s with fresh tensors, 137 and 155 s with
    these buffers (``benchmarks/RESULTS.md``, "Cheaper rounds after the HNSW start"). The
    batches write into views of them instead; only the offers, whose number varies, are
    allocated per batch.
    """

    def __init__(self, Xt, batch, m, k, n_top):
        dev, ids = Xt.device, torch.int64

        def empty(shape, dtype):
            return torch.empty(shape, dtype=dtype, device=dev)

        self.rows = empty((batch * m, Xt.shape[1]), Xt.dtype)  # the gathered members
        self.gram = empty((batch, m, m), Xt.dtype)
        self.floor = empty((batch * m,), Xt.dtype)
        self.lists = empty((batch * m, k), ids)  # the members' neighbours, sorted
        self.pairs = empty((batch * m, m), ids)  # member j of the set, for each member i
        self.pos = empty((batch * m, m), ids)
        self.found = empty((batch * m, m), ids)
        self.mask = empty((batch * m, m), torch.bool)
        self.stale = empty((batch * m, m), torch.bool)
        self.values = empty((batch, m, n_top), Xt.dtype)
        self.top = empty((batch, m, n_top), ids)


def _known(by_id, join, buf):
    """``out[b, i, j]``: is ``join[b, j]`` already a neighbour of ``join[b, i]``?

    ``by_id`` holds every row's neighbours sorted by index (binary searches); the result
    is a view of ``buf.mask``.
    """
    b, m = join.shape
    lists = torch.index_select(by_id, 0, join.reshape(-1), out=buf.lists[: b * m])
    queries = buf.pairs[: b * m]
    queries.view(b, m, m).copy_(join.unsqueeze(1).expand(b, m, m))
    pos = torch.searchsorted(lists, queries, out=buf.pos[: b * m]).clamp_(max=lists.shape[1] - 1)
    found = torch.gather(lists, 1, pos, out=buf.found[: b * m])
    return torch.eq(found, queries, out=buf.mask[: b * m]).view(b, m, m)


def _offers(Xt, join, fresh, by_id, kth, n_offers, buf):
    """The local joins of one batch: (target, offered row, inner product) triples.

    ``join`` (rows, m) holds the join sets (padded with the joining row itself); every
    member ``u`` is offered the ``n_offers`` members with the largest inner products above
    ``kth[u]`` that it does not list already, pairs of two members flagged old in ``fresh``
    excepted (they met before).
    Offers of a row to itself (a member listed twice) are left to the merge.
    ``buf`` (:class:`_JoinBuffers`) holds the batch's large tensors.
    """
    b, m = join.shape
    flat = join.reshape(-1)
    Y = torch.index_select(Xt, 0, flat, out=buf.rows[: b * m]).view(b, m, -1)
    gram = torch.bmm(Y, Y.transpose(1, 2), out=buf.gram[:b])
    floor = torch.index_select(kth, 0, flat, out=buf.floor[: b * m]).view(b, m)
    gram.sub_(floor.unsqueeze(2))  # > 0: beats the member's current k-th
    stale = buf.stale[: b * m].view(b, m, m)
    torch.logical_or(fresh.unsqueeze(2), fresh.unsqueeze(1), out=stale).logical_not_()
    gram.masked_fill_(stale, float("-inf"))
    gram.diagonal(dim1=1, dim2=2).fill_(float("-inf"))
    gram.masked_fill_(_known(by_id, join, buf), float("-inf"))
    values, pos = torch.topk(gram, buf.top.shape[2], dim=2, out=(buf.values[:b], buf.top[:b]))
    keep = values > 0
    offered = torch.gather(join, 1, pos.view(b, -1)).view(pos.shape)[keep]
    target = join.unsqueeze(2).expand_as(pos)[keep]
    return target, offered, (values + floor.unsqueeze(2))[keep]


def _joining_rows(forward_new, reverse_new, everyone):
    """The rows ``v`` whose join set holds a fresh member (all rows in the first round).

    A join set with no fresh member offers nothing (every pair of its members met in an
    earlier round, see :func:`_offers`), so skipping it changes no result; after the first
    rounds most rows are skipped (on the 200,000-row benchmark world: 10% of the rows in
    round 2, 59% in round 3, 82% in round 4).
    """
    n = forward_new.shape[0]
    if everyone:
        return torch.arange(n, device=forward_new.device)
    return torch.nonzero(forward_new.any(1) | reverse_new.any(1)).squeeze(1)


def _sortable(values: torch.Tensor) -> torch.Tensor:
    """int64 keys in the order of decreasing float ``values``, in [0, 2**32) (float32)."""
    bits = (-values.to(torch.float32)).view(torch.int32).to(torch.int64)
    return torch.where(bits < 0, -(2**31) - 1 - bits, bits) + 2**31


def _merge(indices, sims, is_new, lo, hi, target, offered, values):
    """Keep the ``k`` best of rows ``lo:hi``'s neighbours and their offers (in place).

    Flags the entries that came in (``is_new``) and returns how many did.
    """
    n, k = indices.shape
    dev = indices.device
    rows = hi - lo
    drop = offered == target  # a row offered itself
    target, offered, values = target[~drop], offered[~drop], values[~drop]
    tgt = torch.cat([torch.arange(rows, device=dev).repeat_interleave(k), target - lo])
    cand = torch.cat([indices[lo:hi].reshape(-1), offered])
    val = torch.cat([sims[lo:hi].reshape(-1), values.to(sims.dtype)])
    # one entry per (row, candidate): the current neighbours come first, so they survive
    order = torch.sort(tgt * n + cand, stable=True).indices
    key = (tgt * n + cand)[order]
    first = torch.ones_like(key, dtype=torch.bool)
    first[1:] = key[1:] != key[:-1]
    order = order[first]
    tgt, cand, val = tgt[order], cand[order], val[order]
    order = torch.sort(tgt * 2**32 + _sortable(val)).indices  # by row, then best first
    tgt, cand, val = tgt[order], cand[order], val[order]
    starts = torch.zeros(rows + 1, dtype=torch.int64, device=dev)
    torch.cumsum(torch.bincount(tgt, minlength=rows), 0, out=starts[1:])
    rank = torch.arange(tgt.numel(), device=dev) - starts[tgt]
    top = rank < k
    new = torch.empty((rows, k), dtype=torch.int64, device=dev)
    new_sims = torch.empty((rows, k), dtype=sims.dtype, device=dev)
    new[tgt[top], rank[top]] = cand[top]
    new_sims[tgt[top], rank[top]] = val[top]
    is_new[lo:hi] = ~(new.unsqueeze(2) == indices[lo:hi].unsqueeze(1)).any(2)
    indices[lo:hi], sims[lo:hi] = new, new_sims
    return int(is_new[lo:hi].sum())


def refine_graph(
    Xt: torch.Tensor,
    indices: torch.Tensor,
    *,
    n_rounds: int = 4,
    n_forward: int | None = None,
    n_reverse: int | None = None,
    n_offers: int = 8,
    delta: float = 0.001,
    random_state=None,
    callback=None,
):
    """Improve a k-nearest-neighbour graph (self excluded) by NN-descent rounds.

    Parameters
    ----------
    Xt : tensor of shape (n_samples, n_features)
        The rows (unit rows for cosine neighbours).
    indices : tensor of shape (n_samples, k), int64
        The starting graph: ``k`` distinct neighbours per row, the row itself excluded.
    n_rounds : int, default=4
        At most this many local joins of every row.
    n_forward : int or None, default=None
        Nearest current neighbours of a row in its join set (None: ``k // 2``).
    n_reverse : int or None, default=None
        Reverse neighbours sampled into each join set (None: ``n_forward // 2``).
    n_offers : int, default=8
        Offers each member of a join set receives from it, at most.
    delta : float, default=0.001
        Stop once a round changes fewer than ``delta * n_samples * k`` entries.
    random_state : int, RandomState instance or None, default=None
        Seeds the reverse samples.
    callback : callable or None, default=None
        Called as ``callback(round, indices, changed)`` after every round.

    Returns
    -------
    indices : tensor of shape (n_samples, k), int64
        The refined graph, each row's neighbours by decreasing inner product.
    """
    n, k = indices.shape
    n_forward = max(1, k // 2) if n_forward is None else min(k, int(n_forward))
    n_reverse = n_forward // 2 if n_reverse is None else int(n_reverse)
    generator = torch.Generator().manual_seed(
        int(check_random_state(random_state).randint(np.iinfo(np.int32).max))
    )
    sims = neighbor_similarities(Xt, indices)
    order = torch.argsort(sims, dim=1, descending=True)  # nearest first
    indices, sims = torch.gather(indices, 1, order), torch.gather(sims, 1, order)
    m = 1 + n_forward + n_reverse
    batch = max(1, _BLOCK_BYTES // (Xt.element_size() * Xt.shape[1] * m))
    n_buckets = max(1, -(-n // _BUCKET_ROWS))
    size = -(-n // n_buckets)
    buffers = _JoinBuffers(Xt, batch, m, k, min(n_offers, m - 1))
    is_new = torch.ones((n, k), dtype=torch.bool, device=indices.device)
    # A round holds every offer until its merges (up to n * m * n_offers of them): row
    # indices are kept in int32 there (lossless below 2**31 rows), 12 bytes an offer
    # instead of 20 (at 1.28M rows the int64 offers of one round outgrew 24 GB).
    slim = torch.int32 if n < 2**31 else torch.int64
    for r in range(n_rounds):
        kth = sims.min(dim=1).values
        by_id = torch.sort(indices, dim=1).values
        rev, rev_new = reverse_sample(indices, n_reverse, generator, is_new)
        buckets = [[] for _ in range(n_buckets)]
        rows = _joining_rows(is_new[:, :n_forward], rev_new, everyone=r == 0)
        for sl in iter_chunks(rows.numel(), batch):
            v = rows[sl]
            pivot = v.unsqueeze(1)
            join = torch.cat([pivot, indices[v, :n_forward], rev[v]], dim=1)
            join = torch.where(join < 0, pivot, join)
            first = torch.full_like(pivot, r == 0, dtype=torch.bool)  # v meets its list once
            fresh = torch.cat([first, is_new[v, :n_forward], rev_new[v]], dim=1)
            target, offered, values = _offers(Xt, join, fresh, by_id, kth, n_offers, buffers)
            target, offered = target.to(slim), offered.to(slim)
            if n_buckets == 1:
                buckets[0].append((target, offered, values))
                continue
            which = target // size
            for b in range(n_buckets):
                mine = torch.nonzero(which == b).squeeze(1)
                if mine.numel():
                    buckets[b].append((target[mine], offered[mine], values[mine]))
        del rev, rev_new, by_id
        is_new.zero_()  # rows that nobody offered anything keep no new entry
        changed = 0
        for b in range(n_buckets):
            lo, hi = b * size, min(n, (b + 1) * size)
            parts = buckets[b]
            buckets[b] = None
            if not parts:
                continue
            target, offered, values = (torch.cat(t) for t in zip(*parts, strict=True))
            del parts
            changed += _merge(indices, sims, is_new, lo, hi, target.long(), offered.long(), values)
        if callback is not None:
            callback(r, indices, changed)
        if changed < delta * n * k:
            break
    return indices
