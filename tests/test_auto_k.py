"""The K search: every criterion against a plain restatement, the rules, the coarse-to-fine
scan, the confidence, and n_clusters="auto" on the estimators."""

import itertools

import numpy as np
import pytest
from scipy.sparse.csgraph import laplacian
from scipy.stats import norm
from sklearn.decomposition import PCA
from sklearn.metrics import adjusted_rand_score
from sklearn.mixture import GaussianMixture

from skgradnorm import SphericalKMeans, spherical_kmeans
from skgradnorm._cluster._auto_k import (
    K_CRITERIA,
    check_n_clusters_range,
    coarse_grid,
    k_confidence,
    scan_k,
    search_fits,
)
from skgradnorm._cluster._k_criteria import BIC_TOL, KFits, choose_k, criterion_scores
from skgradnorm.tuning import search_n_clusters


def _blobs(k, n_per, d=8, seed=0, scale=0.3):
    rng = np.random.RandomState(seed)
    centers = np.eye(d)[:k] * 4
    X = np.vstack([c + rng.normal(scale=scale, size=(n_per, d)) for c in centers])
    return X, np.repeat(np.arange(k), n_per)


def _unit(X):
    return (X / np.linalg.norm(X, axis=1, keepdims=True)).astype(np.float64)


def test_prediction_strength_counts_pairs_as_stated():
    """The contingency-table formula against a loop over every pair of rows."""
    rng = np.random.RandomState(0)
    Z = _unit(rng.normal(size=(40, 5)))
    fits = KFits(Z, n_init=1, random_state=0)
    for k in (2, 3, 4):
        expected = []
        for test, train in ((0, 1), (1, 0)):
            rows = Z[fits.halves[test]]
            test_labels = fits.fit(k, f"half{test}")[1]
            pred = np.argmax(rows @ fits.fit(k, f"half{train}")[0].T, axis=1)
            worst = 1.0
            for c in np.unique(test_labels):
                members = np.flatnonzero(test_labels == c)
                if members.size < 2:
                    continue
                pairs = list(itertools.permutations(members, 2))
                worst = min(worst, np.mean([pred[i] == pred[j] for i, j in pairs]))
            expected.append(worst)
        (score,), _ = criterion_scores(fits, [k], "prediction_strength")
        assert score == pytest.approx(np.mean(expected))


def test_stability_silhouette_gap_and_bic_restated():
    rng = np.random.RandomState(1)
    Z = _unit(rng.normal(size=(60, 6)))
    fits = KFits(Z, n_init=1, random_state=3)
    k = 3
    a, b = fits.fit(k, "a"), fits.fit(k, "b")
    (stab,), _ = criterion_scores(fits, [k], "stability")
    assert stab == pytest.approx(adjusted_rand_score(a[1], b[1]))
    # a's own fit is spherical k-means with its seed, as documented
    same = spherical_kmeans(Z, k, n_init=1, random_state=fits.seeds["a"])
    np.testing.assert_array_equal(same[1], a[1])
    (gap,), (err,) = criterion_scores(fits, [k], "gap")
    refs = [np.log(60 - fits.fit(k, f"ref{i}")[2]) for i in range(2)]
    assert gap == pytest.approx(np.mean(refs) - np.log(60 - a[2]))
    assert err == pytest.approx(np.std(refs) * np.sqrt(1.5))
    (bic,), (spread,) = criterion_scores(fits, [k], "bic")
    P = PCA(n_components=6, random_state=0).fit_transform(Z)
    bics = [
        GaussianMixture(
            k,
            covariance_type="diag",
            reg_covar=1e-4,
            tol=BIC_TOL,
            init_params="k-means++",
            random_state=fits.seeds[f"mixture{i}"],
        )
        .fit(P)
        .bic(P)
        for i in (0, 1)
    ]
    assert bic == pytest.approx(-np.mean(bics), rel=1e-6)
    assert spread == pytest.approx(abs(bics[0] - bics[1]), rel=1e-6, abs=1e-6)


def test_eigengap_matches_a_dense_laplacian():
    rng = np.random.RandomState(2)
    Z = _unit(rng.normal(size=(50, 4)))
    fits = KFits(Z, n_init=1, random_state=0)
    sims = Z @ Z.T
    np.fill_diagonal(sims, -np.inf)
    nearest = np.argsort(-sims, axis=1)[:, :10]
    A = np.zeros((50, 50))
    A[np.repeat(np.arange(50), 10), nearest.ravel()] = 1
    A = ((A + A.T) > 0).astype(float)
    dense = np.sort(np.linalg.eigvalsh(laplacian(A, normed=True)))
    np.testing.assert_allclose(fits.eigenvalues(6)[:8], dense[:8], atol=1e-8)
    scores, _ = criterion_scores(fits, [2, 3, 4], "eigengap")
    np.testing.assert_allclose(scores, dense[2:5] - dense[1:4], atol=1e-8)


def test_the_rules():
    ks = np.array([2, 3, 4, 5, 6])
    assert choose_k(ks, [0.9, 1.0, 1.0, 0.5, 1.0], "stability") == 4  # largest exact tie
    assert choose_k(ks, [0.9, 0.85, 0.7, 0.81, 0.2], "prediction_strength") == 3
    assert choose_k(ks, [0.5, 0.4, 0.3, 0.2, 0.1], "prediction_strength") == 0
    # gap: smallest K with gap(K) >= gap(K+1) - se(K+1)
    gap, se = np.array([0.1, 0.3, 0.35, 0.5, 0.6]), np.array([0.01, 0.01, 0.1, 0.01, 0.01])
    assert choose_k(ks, gap, "gap", se) == 1  # 0.3 >= 0.35 - 0.1
    assert choose_k(ks, [0.1, 0.2, 0.3, 0.4, 0.5], "gap", np.zeros(5)) == 4
    for c in ("silhouette", "eigengap", "bic"):
        assert choose_k(ks, [0.1, 0.5, 0.2, 0.5, 0.0], c) == 1  # first maximum


def test_coarse_grid():
    ks = np.arange(2, 51)
    idx = coarse_grid(ks)
    grid = ks[idx]
    assert grid[0] == 2 and grid[-1] == 50 and np.all(np.diff(grid) > 0)
    assert np.all(grid[1:-1] >= np.ceil(grid[:-2] * 1.25))  # geometric steps
    assert len(grid) <= 15
    np.testing.assert_array_equal(coarse_grid(np.array([2, 3])), [0, 1])


@pytest.mark.parametrize("criterion", K_CRITERIA)
def test_every_criterion_finds_separated_blobs(criterion):
    X, _ = _blobs(4, 40)
    result = search_n_clusters(X, range(2, 9), criterion=criterion, n_init=2, random_state=0)
    assert result.n_clusters_ == 4
    assert 0.0 <= result.n_clusters_confidence_ <= 1.0
    assert result.cluster_centers_.shape == (4, 8) and result.labels_.shape == (160,)
    assert set(result.n_clusters_range_.tolist()) <= set(range(2, 9))


def test_coarse_to_fine_agrees_with_the_full_scan():
    """The coarse-to-fine scan picks what scoring every K picks, on clear data."""
    for k in (3, 5, 8):
        X, _ = _blobs(k, 25, d=12, scale=0.15, seed=k)
        Z = _unit(X)
        ks = check_n_clusters_range(range(2, 21), len(Z))
        fits = search_fits(Z, random_state=0, n_init=2)
        full, scored_all, _, _ = scan_k(fits, ks, "bic", coarse_to_fine=False)
        fast, scored, _, _ = scan_k(fits, ks, "bic")
        assert fast == full == k
        assert len(scored) < len(scored_all) == len(ks)


def test_confidence():
    ks = np.array([2, 3, 4, 5, 6, 7])
    # margin over the runner-up against the noise of one EM fit
    noise = np.full(6, 0.2)
    clear = k_confidence(ks, [0.0, 0.1, 1.0, 0.1, 0.0, 0.0], 4, "bic", noise)
    vague = k_confidence(ks, [0.0, 0.9, 1.0, 0.1, 0.0, 0.95], 4, "bic", noise)
    assert 0.0 <= vague < clear <= 1.0
    # 2 Phi(margin / sqrt(mean(err^2) / 2)) - 1
    assert clear == pytest.approx(2 * norm.cdf(0.9 / np.sqrt(0.02)) - 1)
    assert k_confidence(ks, np.zeros(6), 4, "bic", noise) == 0.0
    # the other criteria: margin over the best K more than one away, over the range
    assert k_confidence(ks, [0.0, 0.9, 1.0, 0.1, 0.0, 0.5], 4, "silhouette") == pytest.approx(0.5)


def test_auto_k_on_spherical_kmeans_stores_the_search():
    X, _ = _blobs(5, 30)
    km = SphericalKMeans("auto", n_clusters_range=range(2, 9), n_init=3, random_state=0).fit(X)
    assert km.n_clusters_ == 5 and km.cluster_centers_.shape == (5, 8)
    assert km.n_clusters_scores_.shape == km.n_clusters_range_.shape
    assert 5 in km.n_clusters_range_.tolist() and 0 <= km.n_clusters_confidence_ <= 1
    same = SphericalKMeans("auto", n_clusters_range=range(2, 9), n_init=3, random_state=0)
    np.testing.assert_array_equal(same.fit(X).labels_, km.labels_)
    with pytest.raises(ValueError, match="criterion"):
        search_n_clusters(X, range(2, 4), criterion="elbow")


def test_the_report_sentence_says_the_criterion_and_the_confidence():
    from skgradnorm._cluster._auto_k import describe_k_search

    X, _ = _blobs(4, 30)
    km = SphericalKMeans("auto", n_clusters_range=range(2, 8), n_init=2, random_state=0).fit(X)
    text = describe_k_search(km)
    assert text.startswith(f"K = {km.n_clusters_} chosen without labels")
    assert f"confidence {km.n_clusters_confidence_:.2f}" in text
    assert km.n_clusters_criterion_ in K_CRITERIA
    km.n_clusters_confidence_ = 0.1
    assert "give n_clusters" in describe_k_search(km)


def test_a_choice_at_the_top_of_the_range_has_no_confidence():
    from skgradnorm._cluster._auto_k import describe_k_search

    X, _ = _blobs(6, 30, scale=0.1)
    km = SphericalKMeans("auto", n_clusters_range=range(2, 5), n_init=2, random_state=0).fit(X)
    assert km.n_clusters_ == 4 and km.n_clusters_confidence_ == 0.0
    assert "widen n_clusters_range" in describe_k_search(km)
