"""Tests of the torch spherical k-means (function, Lloyd step and estimator)."""

import pickle

import numpy as np
import pytest
import torch
from conftest import unit
from scipy.stats import chisquare
from sklearn.cluster import KMeans
from sklearn.cluster import kmeans_plusplus as sklearn_kmeans_plusplus
from sklearn.exceptions import NotFittedError
from sklearn.metrics import adjusted_rand_score

import skgradnorm._cluster._search as search_module
from skgradnorm import SphericalKMeans, spherical_kmeans
from skgradnorm._cluster._kmeans import (
    _lloyd_iter,
    _spherical_kmeans_single,
    default_init_size,
)
from skgradnorm._cluster._search import assign
from skgradnorm._cluster._seeding import kmeans_plusplus, pooled_kmeans_plusplus
from skgradnorm._cluster._workers import Workers
from skgradnorm._utils._torch import iter_chunks


def _separated(n=500, d=16, k=5, noise=0.05, seed=0):
    rng = np.random.RandomState(seed)
    directions = unit(rng.randn(k, d))
    y = rng.randint(k, size=n)
    return unit(directions[y] + noise * rng.randn(n, d)), y


def _overlapping(n=2000, d=32, seed=0):
    return unit(np.random.RandomState(seed).randn(n, d))


def _objective_of_centers(X, centers):
    """Sum of cosines of samples to their argmax centre (centres renormalised)."""
    C = unit(centers)
    return float((X @ C.T).max(axis=1).sum())


# --------------------------------------------------------------------------- function


def test_invariants_unit_centres_argmax_labels_objective():
    X = _overlapping(n=600, d=16, seed=1)
    centers, labels, objective, n_iter = spherical_kmeans(
        X, 7, n_init=2, random_state=0, device="cpu"
    )
    assert centers.shape == (7, 16)
    assert labels.shape == (600,) and labels.dtype == np.int64
    assert isinstance(objective, float) and isinstance(n_iter, int)
    assert 1 <= n_iter <= 300
    np.testing.assert_allclose(np.linalg.norm(centers, axis=1), 1.0, atol=1e-12)
    sim = X @ centers.T
    np.testing.assert_array_equal(labels, sim.argmax(axis=1))
    assert objective == pytest.approx(sim.max(axis=1).sum(), rel=1e-12)


def test_matches_sklearn_kmeans_on_separated_data():
    X, y = _separated()
    centers, labels, objective, _ = spherical_kmeans(X, 5, n_init=10, random_state=0, device="cpu")
    km = KMeans(n_clusters=5, n_init=10, random_state=0).fit(X)
    assert adjusted_rand_score(km.labels_, labels) == 1.0
    assert adjusted_rand_score(y, labels) == 1.0
    ref = _objective_of_centers(X, km.cluster_centers_)
    assert objective == pytest.approx(ref, rel=1e-6)


# k-means (Euclidean, spherical, faiss) only finds local optima, and the three
# implementations use different random seeds, so on overlapping data each lands on a slightly
# different optimum. Within 1% of the references means "as good a local optimum"; a broken
# update rule or a bad seeding would miss it by far more.
QUALITY = 0.99


def test_quality_against_sklearn_on_overlapping_data():
    X = _overlapping()
    _, _, objective, _ = spherical_kmeans(
        X, 20, n_init=3, max_iter=100, random_state=0, device="cpu"
    )
    km = KMeans(n_clusters=20, n_init=3, max_iter=100, random_state=0).fit(X)
    assert objective >= QUALITY * _objective_of_centers(X, km.cluster_centers_)


def test_quality_against_faiss_on_overlapping_data():
    faiss = pytest.importorskip("faiss")
    X = _overlapping()
    _, _, objective, _ = spherical_kmeans(
        X, 20, n_init=3, max_iter=100, random_state=0, device="cpu"
    )
    Xf = np.ascontiguousarray(X, dtype=np.float32)
    fk = faiss.Kmeans(
        32,
        20,
        spherical=True,
        niter=100,
        nredo=3,
        seed=0,
        max_points_per_centroid=10**6,
        verbose=False,
    )
    fk.train(Xf)
    assert objective >= QUALITY * _objective_of_centers(X, fk.centroids.astype(np.float64))


def _numpy_lloyd_step(X, C):
    labels = (X @ C.T).argmax(axis=1)
    new = np.stack([X[labels == j].sum(axis=0) for j in range(C.shape[0])])
    return unit(new), labels


@pytest.mark.parametrize("dtype, atol", [(np.float64, 1e-12), (np.float32, 1e-6)])
def test_lloyd_step_matches_numpy_reference(dtype, atol):
    X = _overlapping(n=203, d=8, seed=2).astype(dtype)
    C0 = X[[0, 50, 100, 150]].copy()
    new, labels = _lloyd_iter(torch.as_tensor(X), torch.as_tensor(C0), chunk_size=7)
    ref_new, ref_labels = _numpy_lloyd_step(X.astype(np.float64), C0.astype(np.float64))
    assert new.dtype == torch.from_numpy(X).dtype
    np.testing.assert_array_equal(labels.numpy(), ref_labels)
    np.testing.assert_allclose(new.numpy(), ref_new, atol=atol)


def test_empty_cluster_is_relocated():
    rng = np.random.RandomState(0)
    # All data in the half-space x_0 > 0; the second initial centre points the other way.
    X = unit(np.abs(rng.randn(50, 4)) + np.array([2.0, 0, 0, 0]))
    C0 = np.array([[1.0, 0, 0, 0], [-1.0, 0, 0, 0], [0, 1.0, 0, 0]])
    assert set((X @ C0.T).argmax(axis=1)) != {0, 1, 2}  # centre 1 really attracts nothing
    new, labels = _lloyd_iter(torch.as_tensor(X), torch.as_tensor(C0), chunk_size=7)
    new, labels = new.numpy(), labels.numpy()
    assert np.isfinite(new).all()
    np.testing.assert_allclose(np.linalg.norm(new, axis=1), 1.0)
    assert np.bincount(labels, minlength=3).min() >= 1
    # the worst-served sample went to the empty cluster: its centre is that sample
    worst = (X @ C0.T).max(axis=1).argmin()
    assert labels[worst] == 1
    np.testing.assert_allclose(new[1], X[worst])


def test_duplicate_points_more_clusters_than_distinct_points():
    # 3 distinct directions, 5 clusters: k-means++ must pick duplicates, clusters empty out.
    X = np.repeat(np.eye(3), 4, axis=0)
    centers, labels, objective, _ = spherical_kmeans(X, 5, n_init=2, random_state=0, device="cpu")
    assert np.isfinite(centers).all()
    assert objective == pytest.approx(12.0)
    np.testing.assert_array_equal(labels, (X @ centers.T).argmax(axis=1))


def test_same_random_state_same_labels():
    X = _overlapping(n=500, d=16, seed=3)
    a = spherical_kmeans(X, 10, n_init=2, random_state=42, device="cpu")
    b = spherical_kmeans(X, 10, n_init=2, random_state=42, device="cpu")
    np.testing.assert_array_equal(a[1], b[1])
    np.testing.assert_array_equal(a[0], b[0])
    assert a[2] == b[2] and a[3] == b[3]
    # a different seed runs too (it may or may not give other labels)
    c = spherical_kmeans(X, 10, n_init=2, random_state=7, device="cpu")
    assert c[1].shape == a[1].shape


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_dtype_is_preserved(dtype):
    X = _overlapping(n=100, d=8).astype(dtype)
    centers, _, _, _ = spherical_kmeans(X, 3, n_init=1, random_state=0, device="cpu")
    assert centers.dtype == dtype
    km = SphericalKMeans(n_clusters=3, n_init=1, random_state=0, device="cpu").fit(X)
    assert km.cluster_centers_.dtype == dtype
    assert km.transform(X).dtype == dtype


def test_too_many_clusters_function():
    with pytest.raises(ValueError, match=r"n_clusters=5 .*n_samples=3"):
        spherical_kmeans(_overlapping(n=3, d=4), 5, device="cpu")


def test_verbose_prints_each_restart(capsys):
    X = _overlapping(n=50, d=4)
    spherical_kmeans(X, 2, n_init=3, random_state=0, device="cpu", verbose=True)
    out = capsys.readouterr().out
    assert out.count("objective=") == 3
    km = SphericalKMeans(2, n_init=2, random_state=0, device="cpu", verbose=1).fit(X)
    out = capsys.readouterr().out
    assert out.count("objective=") == 2 and f"{km.objective_:.6f}" in out
    SphericalKMeans(2, n_init=2, random_state=0, device="cpu").fit(X)
    assert capsys.readouterr().out == ""


# --------------------------------------------------------------------------- k-means++


def _numpy_kmeans_plusplus(X, k, rs, n_local_trials):
    """Plain float64 greedy k-means++ (Arthur & Vassilvitskii, local trials), for unit rows.

    Takes its random draws from ``rs`` in the order scikit-learn's ``kmeans_plusplus`` does:
    one ``choice`` for the first centre, then ``n_local_trials`` uniforms per centre.
    """
    n = X.shape[0]
    first = rs.choice(n, p=np.full(n, 1.0 / n))
    chosen = [first]
    closest = np.maximum(2.0 - 2.0 * X @ X[first], 0.0)  # squared distance, unit rows
    for _ in range(1, k):
        draws = rs.uniform(size=n_local_trials) * closest.sum()
        cand = np.minimum(np.searchsorted(np.cumsum(closest), draws), n - 1)
        dist = np.minimum(closest, np.maximum(2.0 - 2.0 * X @ X[cand].T, 0.0).T)  # (trials, n)
        best = int(np.argmin(dist.sum(axis=1)))
        closest = dist[best]
        chosen.append(cand[best])
    return np.array(chosen)


@pytest.mark.parametrize("n_local_trials", [1, 3, None])
@pytest.mark.parametrize("chunk_size", [7, 8192])
def test_kmeans_plusplus_replays_the_reference_draws(n_local_trials, chunk_size):
    X = _overlapping(n=700, d=12, seed=6)
    k = 25
    trials = 2 + int(np.log(k)) if n_local_trials is None else n_local_trials
    ref = _numpy_kmeans_plusplus(X, k, np.random.RandomState(3), trials)
    centers, idx = kmeans_plusplus(
        torch.as_tensor(X),
        k,
        np.random.RandomState(3),
        n_local_trials=n_local_trials,
        chunk_size=chunk_size,
    )
    np.testing.assert_array_equal(idx, ref)
    np.testing.assert_array_equal(centers.numpy(), X[ref])
    # and scikit-learn's own k-means++ makes the same choices from the same generator
    _, sk_idx = sklearn_kmeans_plusplus(
        X,
        k,
        x_squared_norms=np.ones(len(X)),
        random_state=np.random.RandomState(3),
        n_local_trials=n_local_trials,
    )
    np.testing.assert_array_equal(idx, sk_idx)


def test_kmeans_plusplus_float32_and_generator_state():
    X = _overlapping(n=400, d=8, seed=7).astype(np.float32)
    rs_a, rs_b = np.random.RandomState(11), np.random.RandomState(11)
    centers, idx = kmeans_plusplus(torch.as_tensor(X), 12, rs_a)
    assert centers.dtype == torch.float32 and len(set(idx.tolist())) == 12
    _, sk_idx = sklearn_kmeans_plusplus(
        X, 12, x_squared_norms=np.ones(400, np.float32), random_state=rs_b
    )
    np.testing.assert_array_equal(idx, sk_idx)
    # both consumed the same number of draws: the generators are left in the same state
    assert rs_a.randint(10**9) == rs_b.randint(10**9)


def test_kmeans_plusplus_spreads_seeds_over_separated_clusters():
    X, y = _separated(n=400, d=16, k=8, noise=0.02, seed=8)
    _, idx = kmeans_plusplus(torch.as_tensor(X), 8, np.random.RandomState(0))
    assert sorted(y[idx].tolist()) == list(range(8))  # one seed per true cluster


def _numpy_pooled_kmeans_plusplus(X, k, rs, n_local_trials, pool_size):
    """Plain float64 version of the pooled greedy k-means++, one pool entry at a time.

    Same draws from ``rs`` in the same order as ``pooled_kmeans_plusplus``: one ``randint``
    for the first centre; for every pool, its size's uniforms for the positions then as many
    for the acceptance tests. A pool is drawn when the last one is used up or the potential
    has fallen below half of what it was when that pool was drawn; its sizes start at
    ``min(pool_size, 4 * n_local_trials)`` and double up to ``pool_size``. The candidates of
    a centre all come from one pool.
    """
    n = X.shape[0]
    chosen = [rs.randint(n)]
    closest = np.maximum(2.0 - 2.0 * X @ X[chosen[0]], 0.0)  # squared distance, unit rows
    size = pos = 0
    pool_potential = 0.0
    next_size = min(pool_size, 4 * n_local_trials)
    for _ in range(1, k):
        candidates = []
        while len(candidates) < n_local_trials:
            if size == 0 or pos == size or closest.sum() < 0.5 * pool_potential:
                candidates = []  # a new pool: this centre's candidates all come from it
                size, next_size = next_size, min(pool_size, 2 * next_size)
                cumulative = np.cumsum(closest)
                pool_potential = cumulative[-1]
                draws = rs.uniform(size=size) * pool_potential
                rows = np.minimum(np.searchsorted(cumulative, draws), n - 1)
                uniforms = rs.uniform(size=size)
                weights = closest[rows]  # the distances when the pool was drawn
                pos = 0
            # rejection sampling: accepted with probability (distance now) / (distance then)
            if uniforms[pos] * weights[pos] <= closest[rows[pos]]:
                candidates.append(rows[pos])
            pos += 1
        dist = np.minimum(closest, np.maximum(2.0 - 2.0 * X[candidates] @ X.T, 0.0))
        best = int(np.argmin(dist.sum(axis=1)))
        closest = dist[best]
        chosen.append(candidates[best])
    return np.array(chosen)


@pytest.mark.parametrize(
    "n_local_trials, pool_size, chunk_size", [(1, 4, 50), (3, 16, 64), (None, 256, 8192)]
)
def test_pooled_kmeans_plusplus_matches_the_plain_reference(n_local_trials, pool_size, chunk_size):
    X = _overlapping(n=700, d=12, seed=6)
    k = 40
    trials = 2 + int(np.log(k)) if n_local_trials is None else n_local_trials
    rs_ref, rs = np.random.RandomState(3), np.random.RandomState(3)
    ref = _numpy_pooled_kmeans_plusplus(X, k, rs_ref, trials, pool_size)
    centers, idx = pooled_kmeans_plusplus(
        torch.as_tensor(X),
        k,
        rs,
        n_local_trials=n_local_trials,
        pool_size=pool_size,
        chunk_size=chunk_size,
    )
    np.testing.assert_array_equal(idx, ref)
    np.testing.assert_array_equal(centers.numpy(), X[ref])
    # both took the same number of draws: the generators are left in the same state
    assert rs.randint(10**9) == rs_ref.randint(10**9)


def test_pooled_kmeans_plusplus_draws_from_d2_through_the_pools():
    # With one trial per centre it is plain k-means++: given the first two centres a and b,
    # the third is row c with probability proportional to min(D(c, a), D(c, b)), D the
    # squared distance. With pools of 4 drawn from the distances to a, the third centre
    # comes by rejection from the pool that gave the second, unless the potential halved
    # (36% of the runs here). Rows in 4 groups; what is counted is whether the third centre
    # falls in the group of the first, of the second, or in another one, against the exact
    # probabilities (8.9%, 8.1%, 83.0%). A sampler that skipped the rejection would give
    # 7.1%, 28.1%, 64.8%: over these 1,000 runs the test would reject it at p ~ 1e-117.
    X, y = _separated(n=12, d=4, k=4, noise=0.2, seed=0)
    D = np.maximum(2.0 - 2.0 * X @ X.T, 0.0)
    n, runs = len(X), 1000

    def category(a, b):  # of every row as a third centre: 0 a's group, 1 b's, 2 another
        return np.where(y == y[a], 0, np.where(y == y[b], 1, 2))

    expected = np.zeros(3)
    for a in range(n):
        for b in range(n):
            nearest = np.minimum(D[a], D[b])
            p_ab = D[a, b] / D[a].sum() / n
            expected += p_ab * np.bincount(category(a, b), nearest / nearest.sum(), 3)
    counts = np.zeros(3)
    Xt = torch.as_tensor(X)
    for seed in range(runs):
        _, (a, b, c) = pooled_kmeans_plusplus(
            Xt, 3, np.random.RandomState(seed), n_local_trials=1, pool_size=4
        )
        counts[category(a, b)[c]] += 1
    assert chisquare(counts, expected * runs).pvalue > 1e-3


def test_pooled_kmeans_plusplus_float32_and_workers():
    X = _overlapping(n=1500, d=16, seed=7).astype(np.float32)
    Xt = torch.as_tensor(X)
    ref_centers, ref = pooled_kmeans_plusplus(Xt, 30, np.random.RandomState(11), chunk_size=250)
    assert ref_centers.dtype == torch.float32 and len(set(ref.tolist())) == 30
    # the pool's matrix products spread over 1 or 2 workers, in blocks of 250 rows: the same
    # picks (the blocks and the order of every sum are fixed by the rows alone)
    for threads in (1, 2):
        workers = Workers({"torch": threads})
        try:
            _, idx = pooled_kmeans_plusplus(
                Xt, 30, np.random.RandomState(11), workers=workers, chunk_size=250
            )
        finally:
            workers.close()
        np.testing.assert_array_equal(idx, ref)


def test_pooled_kmeans_plusplus_spreads_seeds_over_separated_clusters():
    X, y = _separated(n=400, d=16, k=8, noise=0.02, seed=8)
    for seed in range(5):
        _, idx = pooled_kmeans_plusplus(torch.as_tensor(X), 8, np.random.RandomState(seed))
        assert sorted(y[idx].tolist()) == list(range(8))  # one seed per true cluster


def test_pooled_kmeans_plusplus_on_duplicates():
    # every row coincides with a chosen centre early on: the potential is 0 and the draws
    # must still end (they pick rows already chosen, as scikit-learn's k-means++ does)
    X = np.repeat(np.eye(3), 4, axis=0)
    centers, idx = pooled_kmeans_plusplus(torch.as_tensor(X), 8, np.random.RandomState(0))
    assert len(idx) == 8 and set(np.argmax(X[idx], axis=1)) == {0, 1, 2}
    np.testing.assert_array_equal(centers.numpy(), X[idx])


# --------------------------------------------------------------------------- subsamples


def test_default_init_size():
    assert default_init_size(500, 5) == 500  # small data: seed on every sample
    assert default_init_size(50_000, 100) == 16_384
    assert default_init_size(1_280_000, 2_000) == 32_000


def test_init_size_seeds_on_a_subsample_then_iterates_on_all_rows():
    X = _overlapping(n=900, d=10, seed=9)
    k, m = 12, 200
    centers, labels, objective, n_iter = spherical_kmeans(
        X, k, n_init=1, max_iter=5, tol=0.0, init_size=m, random_state=4, device="cpu"
    )
    # the same steps by hand: restart seed, subsample, k-means++ on it, Lloyd on all rows
    seed = np.random.RandomState(4).randint(np.iinfo(np.int32).max, size=1)[0]
    run_rng = np.random.RandomState(seed)
    rows = np.sort(run_rng.choice(900, size=m, replace=False))
    ref_idx = _numpy_pooled_kmeans_plusplus(X[rows], k, run_rng, 2 + int(np.log(k)), 256)
    ref = _spherical_kmeans_single(
        torch.as_tensor(X), torch.as_tensor(X[rows][ref_idx]), max_iter=5, tol=0.0, chunk_size=64
    )
    np.testing.assert_allclose(centers, ref[0].numpy(), atol=1e-12)
    np.testing.assert_array_equal(labels, ref[1].numpy())
    assert objective == pytest.approx(ref[2], rel=1e-12) and n_iter == ref[3]
    # init_size >= n_samples is seeding on all rows, which is also the default at this size
    a = spherical_kmeans(X, k, n_init=2, init_size=900, random_state=4, device="cpu")
    b = spherical_kmeans(X, k, n_init=2, init_size=10**6, random_state=4, device="cpu")
    c = spherical_kmeans(X, k, n_init=2, random_state=4, device="cpu")
    np.testing.assert_array_equal(a[0], b[0])
    np.testing.assert_array_equal(a[0], c[0])


def test_max_samples_fits_on_a_subsample_and_labels_every_row():
    X = _overlapping(n=1500, d=12, seed=10)
    k, m = 15, 400
    centers, labels, objective, _ = spherical_kmeans(
        X, k, n_init=2, max_samples=m, random_state=5, device="cpu"
    )
    # every row is labelled by its most similar centre, and the objective covers every row
    assert labels.shape == (1500,)
    sim = X @ centers.T
    np.testing.assert_array_equal(labels, sim.argmax(axis=1))
    assert objective == pytest.approx(sim.max(axis=1).sum(), rel=1e-12)
    # the centres are those of a fit on the subsample drawn after the restart seeds
    rng = np.random.RandomState(5)
    rng.randint(np.iinfo(np.int32).max, size=2)  # the two restart seeds
    rows = np.sort(rng.choice(1500, size=m, replace=False))
    sub_centers, _, _, _ = spherical_kmeans(
        X[rows], k, n_init=2, random_state=np.random.RandomState(5), device="cpu"
    )
    np.testing.assert_allclose(centers, sub_centers, atol=1e-12)
    # max_samples >= n_samples is the plain fit
    a = spherical_kmeans(X, k, n_init=2, max_samples=1500, random_state=5, device="cpu")
    b = spherical_kmeans(X, k, n_init=2, random_state=5, device="cpu")
    np.testing.assert_array_equal(a[1], b[1])
    assert a[2] == b[2]


def test_subsampled_fits_recover_separated_clusters():
    X, y = _separated(n=3000, d=16, k=6, noise=0.05, seed=11)
    for kwargs in ({"max_samples": 300}, {"init_size": 60}, {"max_samples": 500, "init_size": 100}):
        _, labels, _, _ = spherical_kmeans(X, 6, n_init=3, random_state=0, device="cpu", **kwargs)
        assert adjusted_rand_score(y, labels) == 1.0, kwargs


def test_subsample_on_hard_data_is_close_to_the_full_fit():
    # Uniform directions (no cluster structure) are the hard case for subsampling: the
    # centres fitted on half the rows lose ~1.7% of the objective over all rows, on a
    # quarter ~3%; random centres lose ~8%. Seeding on a subsample costs nothing here.
    X = _overlapping(n=4000, d=16, seed=12)
    full = spherical_kmeans(X, 20, n_init=2, max_iter=50, random_state=0, device="cpu")[2]
    sub = spherical_kmeans(
        X, 20, n_init=2, max_iter=50, max_samples=2000, random_state=0, device="cpu"
    )[2]
    seeded = spherical_kmeans(
        X, 20, n_init=2, max_iter=50, init_size=160, random_state=0, device="cpu"
    )[2]
    assert 0.975 * full <= sub <= full
    assert seeded >= QUALITY * full


@pytest.mark.parametrize("name", ["init_size", "max_samples"])
def test_subsample_sizes_are_checked(name):
    X = _overlapping(n=50, d=4)
    with pytest.raises(ValueError, match=rf"{name}=3 is smaller than n_clusters=5"):
        spherical_kmeans(X, 5, device="cpu", **{name: 3})
    with pytest.raises(TypeError, match=name):
        spherical_kmeans(X, 5, device="cpu", **{name: 10.5})
    with pytest.raises(ValueError, match=rf"{name}=3 is smaller than n_clusters=5"):
        SphericalKMeans(n_clusters=5, device="cpu", **{name: 3}).fit(X)


def test_estimator_passes_subsample_parameters():
    X = _overlapping(n=800, d=8, seed=13)
    km = SphericalKMeans(
        n_clusters=6, n_init=2, max_samples=300, init_size=100, random_state=0, device="cpu"
    ).fit(X)
    ref = spherical_kmeans(
        X, 6, n_init=2, max_samples=300, init_size=100, random_state=0, device="cpu"
    )
    np.testing.assert_allclose(km.cluster_centers_, ref[0], atol=1e-12)  # fit renormalises X
    np.testing.assert_array_equal(km.labels_, ref[1])
    assert km.objective_ == pytest.approx(ref[2], rel=1e-12)
    assert km.get_params()["max_samples"] == 300 and km.get_params()["init_size"] == 100


# --------------------------------------------------------------------------- backends


def test_faiss_search_matches_the_torch_assignment():
    faiss = pytest.importorskip("faiss")  # noqa: F841
    X = _overlapping(n=1000, d=24, seed=14).astype(np.float32)
    C = _overlapping(n=40, d=24, seed=15).astype(np.float32)
    labels, best = search_module.faiss_search(torch.as_tensor(X), torch.as_tensor(C))
    ref_labels, ref_best = assign(torch.as_tensor(X), torch.as_tensor(C), chunk_size=64)
    assert labels.dtype == torch.int64 and best.dtype == torch.float32
    np.testing.assert_array_equal(labels.numpy(), ref_labels.numpy())
    np.testing.assert_allclose(best.numpy(), ref_best.numpy(), atol=1e-6)
    np.testing.assert_array_equal(labels.numpy(), (X @ C.T).argmax(axis=1))


def test_lloyd_step_with_faiss_search_matches_numpy_reference():
    pytest.importorskip("faiss")
    X = _overlapping(n=203, d=8, seed=2).astype(np.float32)
    C0 = X[[0, 50, 100, 150]].copy()
    new, labels = _lloyd_iter(
        torch.as_tensor(X), torch.as_tensor(C0), chunk_size=7, search=search_module.faiss_searcher
    )
    ref_new, ref_labels = _numpy_lloyd_step(X.astype(np.float64), C0.astype(np.float64))
    np.testing.assert_array_equal(labels.numpy(), ref_labels)
    np.testing.assert_allclose(new.numpy(), ref_new, atol=1e-6)


def test_faiss_backend_matches_torch_backend_on_separated_data():
    pytest.importorskip("faiss")
    X, y = _separated(n=600, d=16, k=6, seed=16)
    X = X.astype(np.float32)
    ref = spherical_kmeans(X, 6, n_init=3, random_state=0, device="cpu", backend="torch")
    got = spherical_kmeans(X, 6, n_init=3, random_state=0, device="cpu", backend="faiss")
    assert adjusted_rand_score(ref[1], got[1]) == 1.0
    assert adjusted_rand_score(y, got[1]) == 1.0
    np.testing.assert_allclose(got[0], ref[0], atol=1e-6)
    assert got[0].dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(got[0], axis=1), 1.0, atol=1e-6)


def test_faiss_backend_matches_torch_backend_on_hard_data():
    pytest.importorskip("faiss")
    X = _overlapping(n=2000, d=32, seed=17).astype(np.float32)
    kwargs = dict(n_init=2, max_iter=100, random_state=0, device="cpu", max_samples=1500)
    ref = spherical_kmeans(X, 20, backend="torch", **kwargs)
    got = spherical_kmeans(X, 20, backend="faiss", **kwargs)
    # same seeds, same algorithm: equal up to float32 rounding of near-ties
    assert got[2] == pytest.approx(ref[2], rel=0.01)
    centers, labels, objective, _ = got
    sim = X.astype(np.float64) @ centers.astype(np.float64).T
    np.testing.assert_array_equal(labels, sim.argmax(axis=1))
    assert objective == pytest.approx(sim.max(axis=1).sum(), rel=1e-6)


def test_auto_backend_uses_faiss_only_for_float32_on_cpu(monkeypatch):
    pytest.importorskip("faiss")
    calls = []
    real = search_module.faiss_searcher

    def spy(centers):
        calls.append(centers.dtype)
        return real(centers)

    monkeypatch.setattr(search_module, "faiss_searcher", spy)
    X = _overlapping(n=300, d=8, seed=18)
    spherical_kmeans(X, 4, n_init=1, random_state=0, device="cpu")  # float64: torch
    assert calls == []
    spherical_kmeans(X.astype(np.float32), 4, n_init=1, random_state=0, device="cpu")
    assert calls and set(calls) == {torch.float32}
    calls.clear()
    spherical_kmeans(
        X.astype(np.float32), 4, n_init=1, random_state=0, device="cpu", backend="torch"
    )
    assert calls == []


def test_backend_errors(monkeypatch):
    X = _overlapping(n=50, d=4, seed=19)
    with pytest.raises(ValueError, match="'backend' parameter of spherical_kmeans must be"):
        spherical_kmeans(X, 2, device="cpu", backend="numpy")
    with pytest.raises(ValueError, match="backend"):
        SphericalKMeans(n_clusters=2, device="cpu", backend="numpy").fit(X)
    if search_module.faiss_available():
        with pytest.raises(ValueError, match="float32 only; got device='cpu' and dtype=float64"):
            spherical_kmeans(X, 2, device="cpu", backend="faiss")
    monkeypatch.setattr(search_module, "faiss_available", lambda: False)
    with pytest.raises(ImportError, match="pip install faiss-cpu"):
        spherical_kmeans(X.astype(np.float32), 2, device="cpu", backend="faiss")
    # auto falls back to torch when faiss is missing
    centers, _, _, _ = spherical_kmeans(X.astype(np.float32), 2, device="cpu", random_state=0)
    assert np.isfinite(centers).all()


# --------------------------------------------------------------------------- estimator


def test_estimator_methods_are_consistent():
    X, _ = _separated(n=300, d=16, k=4, seed=5)
    X_raw = X * np.random.RandomState(0).uniform(0.5, 3.0, size=(300, 1))  # norms do not matter
    km = SphericalKMeans(n_clusters=4, n_init=3, random_state=0, device="cpu").fit(X_raw)
    assert km.n_features_in_ == 16
    np.testing.assert_array_equal(km.predict(X_raw), km.labels_)
    np.testing.assert_array_equal(km.fit_predict(X_raw), km.labels_)
    T = km.transform(X_raw)
    assert T.shape == (300, 4)
    np.testing.assert_allclose(T, X @ km.cluster_centers_.T, atol=1e-12)
    np.testing.assert_array_equal(T.argmax(axis=1), km.labels_)
    assert km.score(X_raw) == pytest.approx(km.objective_, rel=1e-12)
    assert km.score(X_raw) == pytest.approx(T.max(axis=1).sum(), rel=1e-12)
    assert km.get_feature_names_out().tolist() == [f"sphericalkmeans{i}" for i in range(4)]


def test_predict_before_fit_raises():
    with pytest.raises(NotFittedError):
        SphericalKMeans(n_clusters=2).predict(np.ones((3, 2)))


def test_estimator_too_many_clusters():
    with pytest.raises(ValueError, match=r"n_clusters=10 .*n_samples=4.*n_clusters <= 4"):
        SphericalKMeans(n_clusters=10, device="cpu").fit(_overlapping(n=4, d=3))


def test_nan_raises():
    X = _overlapping(n=10, d=3)
    X[2, 1] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        SphericalKMeans(n_clusters=2, device="cpu").fit(X)


def test_zero_row_raises():
    X = _overlapping(n=10, d=3)
    X[4] = 0.0
    with pytest.raises(ValueError, match="zero norm"):
        SphericalKMeans(n_clusters=2, device="cpu").fit(X)
    km = SphericalKMeans(n_clusters=2, device="cpu").fit(_overlapping(n=10, d=3))
    with pytest.raises(ValueError, match="zero norm"):
        km.predict(X)


def test_pickle_round_trip():
    X = _overlapping(n=200, d=8, seed=4)
    km = SphericalKMeans(n_clusters=5, n_init=2, random_state=0, device="cpu").fit(X)
    km2 = pickle.loads(pickle.dumps(km))
    np.testing.assert_array_equal(km2.predict(X), km.predict(X))
    np.testing.assert_array_equal(km2.cluster_centers_, km.cluster_centers_)


def test_torch_device_object_is_accepted():
    X = _overlapping(n=50, d=4)
    km = SphericalKMeans(n_clusters=2, n_init=1, random_state=0, device=torch.device("cpu")).fit(X)
    same = SphericalKMeans(n_clusters=2, n_init=1, random_state=0, device="cpu").fit(X)
    np.testing.assert_array_equal(km.labels_, same.labels_)
    np.testing.assert_array_equal(km.cluster_centers_, same.cluster_centers_)


@pytest.mark.parametrize("scale", [1e200, 1e-200, 1e300])
def test_extreme_scales_give_the_same_clustering(scale):
    # Only directions matter: rows whose squared norms overflow or underflow are
    # normalised without either (before the fix, X * 1e200 came back as one cluster).
    X = _overlapping(n=120, d=6, seed=8).astype(np.float64)
    ref = SphericalKMeans(n_clusters=4, n_init=2, random_state=0, device="cpu").fit(X)
    km = SphericalKMeans(n_clusters=4, n_init=2, random_state=0, device="cpu").fit(X * scale)
    np.testing.assert_array_equal(km.labels_, ref.labels_)
    np.testing.assert_allclose(km.cluster_centers_, ref.cluster_centers_, atol=1e-12)


@pytest.mark.parametrize("backend", ["torch", "faiss"])
def test_same_labels_with_one_or_two_threads(backend):
    # What the random_state promise covers on the CPU: the thread count of torch (and of
    # faiss) does not change the result. Blocks of 200 rows, so that the seeding's matrix
    # products and the assignment passes are spread over the two workers.
    if backend == "faiss" and not search_module.faiss_available():
        pytest.skip("faiss-cpu is not installed")
    X = np.random.RandomState(0).randn(5000, 32).astype(np.float32)
    previous = torch.get_num_threads()
    fits = []
    try:
        for threads in (1, 2):
            torch.set_num_threads(threads)
            if backend == "faiss":
                import faiss

                faiss.omp_set_num_threads(threads)
            fits.append(
                spherical_kmeans(
                    X, 8, n_init=2, random_state=0, backend=backend, device="cpu", chunk_size=200
                )
            )
            # the fit leaves torch's thread count as it found it
            assert torch.get_num_threads() == threads
    finally:
        torch.set_num_threads(previous)
    np.testing.assert_array_equal(fits[0][1], fits[1][1])
    np.testing.assert_array_equal(fits[0][0], fits[1][0])
    assert fits[0][2] == fits[1][2]


def test_workers_fold_the_blocks_in_order_whatever_the_thread_count():
    slices = list(iter_chunks(50, 7))
    for threads in (1, 2, 3):
        workers = Workers({"torch": threads})
        folded = []
        try:
            results = workers.run(
                lambda sl: (sl.start, torch.get_num_threads()),
                slices,
                then=lambda sl, result, folded=folded: folded.append((sl, result[0])),
            )
        finally:
            workers.close()
        assert [r[0] for r in results] == [sl.start for sl in slices]
        if threads > 1:  # on the workers, every block runs on one torch thread
            assert {r[1] for r in results} == {1}
        assert folded == [(sl, sl.start) for sl in slices]


def test_workers_raise_what_a_block_raised():
    def fn(sl):
        if sl.start == 14:
            raise ValueError("block 14")
        return sl.start

    workers = Workers({"torch": 2})
    try:
        with pytest.raises(ValueError, match="block 14"):
            workers.run(fn, iter_chunks(50, 7))
    finally:
        workers.close()


def test_fewer_distinct_clusters_than_asked_warns_as_sklearn_does():
    # two distinct rows, three clusters asked: one centre gets no row (scikit-learn's
    # KMeans warns with a ConvergenceWarning in the same case)
    from sklearn.exceptions import ConvergenceWarning

    X = np.repeat(np.eye(4)[:2], [30, 30], axis=0)
    with pytest.warns(ConvergenceWarning, match=r"distinct clusters \(2\).*n_clusters \(3\)"):
        km = SphericalKMeans(3, random_state=0).fit(X)
    assert np.unique(km.labels_).size == 2
    with pytest.warns(ConvergenceWarning, match="duplicate points"):
        KMeans(3, n_init=1, random_state=0).fit(X)
    # as many distinct rows as clusters: silent
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("error", ConvergenceWarning)
        SphericalKMeans(2, random_state=0).fit(X)
        SphericalKMeans(5, random_state=0).fit(_separated()[0])
