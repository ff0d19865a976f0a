"""The HNSW start of the neighbour search (faiss's index), checked against the exact search."""

import numpy as np
import pytest
from conftest import small_heads_world

from skgradnorm._cluster import _neighbors
from skgradnorm._cluster._hnsw import hnsw_neighbors
from skgradnorm._cluster._neighbors import nearest_neighbors
from skgradnorm._cluster._search import faiss_available

needs_faiss = pytest.mark.skipif(not faiss_available(), reason="faiss is not installed")


def _unit(rng, n, d):
    X = rng.standard_normal((n, d)).astype(np.float32)
    return X / np.linalg.norm(X, axis=1, keepdims=True)


def _exact(X, k, keep_self=False):
    S = X @ X.T
    if not keep_self:
        np.fill_diagonal(S, -np.inf)
    return np.argsort(-S, axis=1)[:, :k]


def _recall(got, exact):
    return np.mean([np.intersect1d(g, e).size / e.size for g, e in zip(got, exact, strict=True)])


@needs_faiss
def test_hnsw_hits_are_near_exact_and_sorted_by_their_codes():
    import faiss

    rng = np.random.RandomState(0)
    X = _unit(rng, 1500, 12)
    hits = hnsw_neighbors(X, 11)
    assert hits.shape == (1500, 11) and hits.dtype == np.int64
    assert _recall(hits, _exact(X, 11, keep_self=True)) > 0.95
    assert all(len(set(row)) == row.size for row in hits)
    # ordered by the inner product of each query with the 8-bit codes of its hits: the
    # rows as the index stores them, decoded by faiss's plain scalar quantiser
    sq = faiss.IndexScalarQuantizer(12, faiss.ScalarQuantizer.QT_8bit, faiss.METRIC_INNER_PRODUCT)
    sq.train(X)
    sq.add(X)
    decoded = sq.reconstruct_n(0, 1500)
    assert np.abs(decoded - X).max() < 0.01  # 256 levels per feature
    sims = np.einsum("nd,nkd->nk", X, decoded[hits])
    assert np.all(np.diff(sims, axis=1) <= 1e-5)


@needs_faiss
def test_hnsw_algorithm_refines_its_start():
    rng = np.random.RandomState(4)
    X = _unit(rng, 1500, 24)
    exact = _exact(X, 20)
    refined = nearest_neighbors(X, 20, algorithm="hnsw", device="cpu", random_state=0)
    assert refined.shape == (1500, 20)
    assert not (refined == np.arange(1500)[:, None]).any()
    assert all(len(set(row)) == 20 for row in refined)
    start = hnsw_neighbors(X, 21)
    start = np.array([row[row != i][:20] for i, row in enumerate(start)])
    assert _recall(refined, exact) >= _recall(start, exact) > 0.8
    assert _recall(refined, exact) > 0.97


def test_hnsw_without_faiss_says_what_to_do(monkeypatch):
    monkeypatch.setattr(_neighbors, "faiss_available", lambda: False)
    X = _unit(np.random.RandomState(0), 50, 4)
    with pytest.raises(ImportError, match="faiss-cpu.*nndescent"):
        nearest_neighbors(X, 5, algorithm="hnsw")


@needs_faiss
@pytest.mark.slow
def test_estimator_with_the_hnsw_search():
    from skgradnorm.metrics import clustering_accuracy_score

    world, make = small_heads_world()
    labels = make(neighbor_algorithm="hnsw").fit(world.data).labels_
    assert clustering_accuracy_score(world.target, labels) >= 0.9
