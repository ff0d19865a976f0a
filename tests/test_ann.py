"""The approximate (IVF) neighbour search against the exact one, on small clustered data."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import random_unit_rows, small_heads_world

from skgradnorm._cluster._ann import default_n_lists, default_n_probe, ivf_neighbors
from skgradnorm._cluster._neighbors import nearest_neighbors
from skgradnorm._cluster._search import faiss_available

BACKENDS = ["torch", pytest.param("faiss", marks=pytest.mark.skipif(
    not faiss_available(), reason="faiss is not installed"))]  # fmt: skip


def clustered_unit_rows(seed, n, d=32, n_centers=40, spread=0.35, dtype=np.float32):
    """Unit rows around ``n_centers`` random directions, each cluster along its own 4-d plane."""
    rng = np.random.default_rng(seed)
    centers = random_unit_rows(rng, n_centers, d)
    planes = rng.normal(size=(n_centers, 4, d)) / np.sqrt(d)
    label = rng.integers(n_centers, size=n)
    local = np.einsum("nr,nrd->nd", rng.normal(size=(n, 4)), planes[label])
    X = centers[label] + spread * (2 * local + 0.3 * rng.normal(size=(n, d)) / np.sqrt(d))
    return (X / np.linalg.norm(X, axis=1, keepdims=True)).astype(dtype)


def recall(got, exact):
    """Mean share of each row's exact neighbours that ``got`` found (recall@k)."""
    return float(
        np.mean([np.intersect1d(g, e).size / e.size for g, e in zip(got, exact, strict=True)])
    )


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("seed", range(2))
def test_recall_at_the_defaults(backend, seed):
    X = clustered_unit_rows(seed, 1500)
    exact = nearest_neighbors(X, 20, backend="torch", device="cpu")
    got = nearest_neighbors(
        X, 20, algorithm="ivf", backend=backend, device="cpu", random_state=seed
    )
    assert got.shape == (1500, 20) and got.dtype == np.int64
    assert not np.any(got == np.arange(1500)[:, None])
    # 39 lists, 24 probed: the defaults scan ~60% of such a small set; recall must be high
    assert default_n_probe(default_n_lists(1500)) < default_n_lists(1500)
    assert recall(got, exact) >= 0.95


@pytest.mark.parametrize("backend", BACKENDS)
def test_few_probes_lose_recall_and_stay_sorted(backend):
    """The search is approximate (a test that could not fail would prove nothing)."""
    X = clustered_unit_rows(0, 1500)
    exact = nearest_neighbors(X, 20, backend="torch", device="cpu")
    got = nearest_neighbors(
        X, 20, algorithm="ivf", n_lists=60, n_probe=1, backend=backend, device="cpu",
        random_state=0,
    )  # fmt: skip
    assert 0.3 < recall(got, exact) < 0.95
    sims = np.einsum("nd,nkd->nk", X.astype(np.float64), X[got].astype(np.float64))
    assert np.all(np.diff(sims, axis=1) <= 1e-6)  # decreasing inner product


@pytest.mark.parametrize("backend", BACKENDS)
def test_probing_every_list_is_the_exact_search(backend):
    X = random_unit_rows(1, 400, 12, dtype=np.float32)
    exact = nearest_neighbors(X, 10, backend="torch", device="cpu")
    got = nearest_neighbors(
        X, 10, algorithm="ivf", n_lists=16, n_probe=16, backend=backend, device="cpu",
        random_state=0,
    )  # fmt: skip
    S = X.astype(np.float64) @ X.astype(np.float64).T
    rows = np.arange(400)[:, None]
    np.testing.assert_allclose(S[rows, got], S[rows, exact], atol=1e-6)
    assert np.mean(got == exact) > 0.99


def test_torch_and_faiss_backends_agree():
    if not faiss_available():
        pytest.skip("faiss is not installed")
    X = clustered_unit_rows(2, 2000)
    kw = dict(algorithm="ivf", n_lists=30, n_probe=4, device="cpu", random_state=3)
    torch_hits = nearest_neighbors(X, 15, backend="torch", **kw)
    faiss_hits = nearest_neighbors(X, 15, backend="faiss", **kw)
    assert np.mean(torch_hits == faiss_hits) > 0.99  # same lists; float32 rounding aside


@pytest.mark.parametrize("backend", BACKENDS)
def test_deterministic_under_random_state(backend):
    X = clustered_unit_rows(4, 1500)
    kw = dict(algorithm="ivf", n_lists=25, n_probe=3, backend=backend, device="cpu")
    first = nearest_neighbors(X, 10, random_state=7, **kw)
    np.testing.assert_array_equal(first, nearest_neighbors(X, 10, random_state=7, **kw))


@pytest.mark.parametrize("backend", BACKENDS)
def test_duplicated_rows_never_list_themselves(backend):
    base = clustered_unit_rows(5, 200, d=8)
    X = np.vstack([base, base, base])  # every row has two exact twins
    got = nearest_neighbors(
        X, 4, algorithm="ivf", n_lists=10, n_probe=3, backend=backend, device="cpu",
        random_state=0,
    )  # fmt: skip
    assert not np.any(got == np.arange(600)[:, None])
    twins = [{(i + 200) % 600, (i + 400) % 600} for i in range(600)]
    assert np.mean([set(got[i, :2]) == twins[i] for i in range(600)]) > 0.99


def test_float64_is_searched_in_float64():
    X = clustered_unit_rows(6, 800, dtype=np.float64)
    exact = nearest_neighbors(X, 8, backend="torch", device="cpu")
    got = nearest_neighbors(
        X, 8, algorithm="ivf", n_lists=12, n_probe=12, backend="torch", device="cpu",
        random_state=0,
    )  # fmt: skip
    np.testing.assert_array_equal(got, exact)  # every list probed: exact, float64 ties aside


def test_rows_with_too_few_scanned_candidates_are_searched_exactly():
    # 50 lists of ~4 rows, one probed: most rows see fewer than 11 candidates
    X = random_unit_rows(8, 200, 6, dtype=np.float32)
    got = ivf_neighbors(X, 11, n_lists=50, n_probe=1, backend="torch", device="cpu")
    assert np.all(got >= 0)
    assert np.all(np.sort(got, axis=1)[:, 1:] != np.sort(got, axis=1)[:, :-1])  # distinct


def test_auto_is_exact_below_the_threshold():
    X = clustered_unit_rows(9, 500)
    np.testing.assert_array_equal(
        nearest_neighbors(X, 6, algorithm="auto", backend="torch", device="cpu"),
        nearest_neighbors(X, 6, algorithm="exact", backend="torch", device="cpu"),
    )


def test_auto_algorithm_rule():
    from skgradnorm._cluster._neighbors import EXACT_MAX_SAMPLES, auto_algorithm

    small, large = EXACT_MAX_SAMPLES, EXACT_MAX_SAMPLES + 1
    assert auto_algorithm(small, on_cpu=True, faiss_ok=True) == "exact"
    assert auto_algorithm(large, on_cpu=True, faiss_ok=True) == "hnsw"
    assert auto_algorithm(large, on_cpu=True, faiss_ok=False) == "nndescent"
    assert auto_algorithm(large, on_cpu=False, faiss_ok=True) == "exact"  # a GPU: exact


@pytest.mark.parametrize("faiss_ok", [True, False])
def test_auto_above_the_threshold_runs_the_graph_search(monkeypatch, faiss_ok):
    """Above the threshold on the CPU, "auto" starts NN-descent from the HNSW (faiss) or the
    IVF (no faiss), never the plain IVF; without faiss it equals "nndescent" exactly."""
    import skgradnorm._cluster._neighbors as neighbors_module

    X = clustered_unit_rows(10, 600)
    monkeypatch.setattr(neighbors_module, "EXACT_MAX_SAMPLES", 500)
    monkeypatch.setattr(neighbors_module, "faiss_available", lambda: faiss_ok)
    starts = []
    real = neighbors_module._nndescent

    def spy(*args, start, **kwargs):
        starts.append(start)
        return real(*args, start="nndescent", **kwargs)  # same graph search, no faiss needed

    monkeypatch.setattr(neighbors_module, "_nndescent", spy)
    kw = {"backend": "torch", "device": "cpu", "random_state": 0}
    got = nearest_neighbors(X, 6, algorithm="auto", **kw)
    assert starts == ["hnsw" if faiss_ok else "nndescent"]
    np.testing.assert_array_equal(got, nearest_neighbors(X, 6, algorithm="nndescent", **kw))
    assert recall(got, nearest_neighbors(X, 6, algorithm="exact", **kw)) > 0.9


def test_unknown_algorithm():
    with pytest.raises(ValueError, match="algorithm='annoy' is not one of"):
        nearest_neighbors(random_unit_rows(0, 5, 3), 2, algorithm="annoy")


@pytest.mark.slow
def test_estimator_with_the_ivf_search():
    """The heads train on IVF neighbours; exact fits keep their random draws."""
    from skgradnorm.metrics import clustering_accuracy_score

    world, make = small_heads_world()

    def fit(algorithm):
        return make(neighbor_algorithm=algorithm).fit(world.data)

    ivf, exact, auto = fit("ivf"), fit("exact"), fit("auto")
    assert clustering_accuracy_score(world.target, ivf.labels_) >= 0.9
    np.testing.assert_array_equal(auto.labels_, exact.labels_)  # 300 rows: auto is exact
    with pytest.raises(ValueError, match="neighbor_algorithm"):
        make(neighbor_algorithm="annoy").fit(world.data)
