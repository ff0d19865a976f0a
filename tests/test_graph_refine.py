"""The NN-descent refinement of a neighbour graph against plain references."""

import numpy as np
import pytest
import torch
from conftest import small_heads_world

from skgradnorm._cluster._graph_refine import refine_graph, reverse_sample
from skgradnorm._cluster._neighbors import nearest_neighbors


def _unit(rng, n, d):
    X = rng.standard_normal((n, d)).astype(np.float32)
    return X / np.linalg.norm(X, axis=1, keepdims=True)


def _exact(X, k):
    S = X @ X.T
    np.fill_diagonal(S, -np.inf)
    return np.argsort(-S, axis=1)[:, :k]


def _recall(got, exact):
    return np.mean([np.intersect1d(g, e).size / e.size for g, e in zip(got, exact, strict=True)])


def _random_graph(rng, n, k):
    return np.array([rng.choice(np.delete(np.arange(n), i), k, replace=False) for i in range(n)])


def _one_round_reference(X, graph, with_reverse):
    """One local join of every row, by loops: each member of a join set is offered the others.

    The join set of ``v``: ``v``, its neighbours and (``with_reverse``) all rows listing it.
    """
    n, k = graph.shape
    join = [[v, *graph[v]] for v in range(n)]
    if with_reverse:
        for u in range(n):
            for v in graph[u]:
                join[v].append(u)
    offers = [set(graph[u]) for u in range(n)]
    for members in join:
        for u in members:
            offers[u].update(w for w in members if w != u)
    out = []
    for u in range(n):
        cand = np.array(sorted(offers[u]))
        out.append(cand[np.argsort(-(X[cand] @ X[u]), kind="stable")[:k]])
    return np.array(out)


@pytest.mark.parametrize("small_batches", [False, True])
@pytest.mark.parametrize("with_reverse", [False, True])
def test_one_round_equals_the_plain_local_join(with_reverse, small_batches, monkeypatch):
    from skgradnorm._cluster import _graph_refine

    rng = np.random.RandomState(0)
    X, k = _unit(rng, 300, 8), 6
    start = _random_graph(rng, 300, k)
    n_reverse = int(np.bincount(start.ravel()).max()) if with_reverse else 0
    if small_batches:  # 7 join sets a batch (a shorter last one) into buckets of 64 rows:
        # the batches reuse one set of buffers, so a stale value would show here
        block = 7 * X.itemsize * X.shape[1] * (1 + k + n_reverse)
        monkeypatch.setattr(_graph_refine, "_BLOCK_BYTES", block)
        monkeypatch.setattr(_graph_refine, "_BUCKET_ROWS", 64)
    got = refine_graph(
        torch.from_numpy(X), torch.from_numpy(start), n_rounds=1, n_forward=k, n_reverse=n_reverse,
        n_offers=k + n_reverse, delta=0, random_state=0,
    ).numpy()  # fmt: skip
    want = _one_round_reference(X, start, with_reverse)
    assert np.array_equal(np.sort(got, axis=1), np.sort(want, axis=1))
    sims = np.einsum("nd,nkd->nk", X, X[got])
    assert np.all(np.diff(sims, axis=1) <= 0)  # nearest first


def test_recall_reaches_one_from_the_neighbours_neighbours():
    # tight clusters of k + 1 rows: a row's exact neighbours are its cluster mates. Each
    # row lists its cluster's first row and k - 1 far rows; the first row lists all its mates
    rng = np.random.RandomState(1)
    k, n_clusters, d = 7, 40, 16
    centres = _unit(rng, n_clusters, d)
    X = np.repeat(centres, k + 1, axis=0) + 0.05 * rng.standard_normal((n_clusters * (k + 1), d))
    X = (X / np.linalg.norm(X, axis=1, keepdims=True)).astype(np.float32)
    n = X.shape[0]
    exact = _exact(X, k)
    start = _random_graph(rng, n, k)
    for c in range(n_clusters):
        rows = np.arange(c * (k + 1), (c + 1) * (k + 1))
        head = rows[0]
        start[head] = rows[1:]
        for u in rows[1:]:
            far = [w for w in start[u] if w // (k + 1) != c and w != head][: k - 1]
            far += [w for w in rng.permutation(n) if w // (k + 1) != c and w not in far]
            start[u] = [head] + far[: k - 1]
    assert _recall(start, exact) < 0.5
    recalls = []
    got = refine_graph(
        torch.from_numpy(X), torch.from_numpy(start), n_rounds=3, n_forward=k, n_offers=16,
        delta=0,
        random_state=0, callback=lambda r, g, c: recalls.append(_recall(g.numpy(), exact)),
    ).numpy()  # fmt: skip
    assert _recall(got, exact) == 1.0
    assert recalls == sorted(recalls)


def test_rounds_never_worsen_a_row():
    rng = np.random.RandomState(2)
    X, k = _unit(rng, 500, 6), 10
    exact = _exact(X, k)
    start = _random_graph(rng, 500, k)
    Xt = torch.from_numpy(X)
    kth, recalls = [], []

    def record(r, g, changed):
        g = g.numpy()
        kth.append(np.einsum("nd,nkd->nk", X, X[g]).min(axis=1))
        recalls.append(_recall(g, exact))
        assert all(len(set(row)) == k and i not in row for i, row in enumerate(g))

    refine_graph(Xt, torch.from_numpy(start), n_rounds=8, n_forward=6, n_reverse=4,
                 n_offers=4, delta=0, random_state=0, callback=record)  # fmt: skip
    assert all(np.all(b >= a) for a, b in zip(kth[:-1], kth[1:], strict=True))
    assert recalls == sorted(recalls) and recalls[-1] > 0.9


def test_skipping_join_sets_without_news_changes_nothing(monkeypatch):
    """Rounds after the first join only the rows whose join set holds a fresh member: the
    graph equals the one of joining every row in every round, and later rounds skip rows."""
    from skgradnorm._cluster import _graph_refine

    rng = np.random.RandomState(5)
    X, k = _unit(rng, 800, 10), 12
    Xt, start = torch.from_numpy(X), torch.from_numpy(_random_graph(rng, 800, k))
    kw = dict(n_rounds=6, n_forward=8, n_reverse=4, n_offers=5, delta=0, random_state=0)
    joined = []
    skipping = _graph_refine._joining_rows

    def spy(forward_new, reverse_new, everyone):
        rows = skipping(forward_new, reverse_new, everyone)
        joined.append(rows.numel())
        return rows

    monkeypatch.setattr(_graph_refine, "_joining_rows", spy)
    fast = refine_graph(Xt, start.clone(), **kw)
    monkeypatch.setattr(
        _graph_refine, "_joining_rows", lambda f, r, everyone: torch.arange(f.shape[0])
    )
    every_row = refine_graph(Xt, start.clone(), **kw)
    assert torch.equal(fast, every_row)
    assert joined[0] == 800 and min(joined[1:]) < 800


def test_reverse_sample_lists_only_reverse_neighbours():
    rng = np.random.RandomState(3)
    graph = torch.from_numpy(_random_graph(rng, 50, 5))
    rev = reverse_sample(graph, 3, torch.Generator().manual_seed(0)).numpy()
    indegree = np.bincount(graph.numpy().ravel(), minlength=50)
    for v in range(50):
        got = rev[v][rev[v] >= 0]
        assert got.size == min(3, indegree[v]) and len(set(got)) == got.size
        assert all(v in graph[u] for u in got)


def test_nndescent_algorithm_beats_its_ivf_start():
    rng = np.random.RandomState(4)
    X = _unit(rng, 1500, 12)
    exact = _exact(X, 20)
    kw = dict(n_lists=40, n_probe=3, device="cpu", random_state=0)
    ivf = nearest_neighbors(X, 20, algorithm="ivf", **kw)
    refined = nearest_neighbors(X, 20, algorithm="nndescent", **kw)
    assert _recall(refined, exact) > max(0.9, _recall(ivf, exact) + 0.2)
    assert not (refined == np.arange(1500)[:, None]).any()


@pytest.mark.slow
def test_estimator_with_the_nndescent_search():
    """The heads train on refined neighbours, seeded: the same labels twice."""
    from skgradnorm.metrics import clustering_accuracy_score

    world, make = small_heads_world()
    model = make(neighbor_algorithm="nndescent")
    first = model.fit(world.data).labels_
    assert clustering_accuracy_score(world.target, first) >= 0.9
    np.testing.assert_array_equal(model.fit(world.data).labels_, first)
