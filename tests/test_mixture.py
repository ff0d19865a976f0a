"""The K criterion "bic"'s mixture, written out over NumPy, against scikit-learn's own
k-means++ and GaussianMixture on random inputs."""

import numpy as np
import pytest
from sklearn.cluster import kmeans_plusplus
from sklearn.mixture import GaussianMixture
from sklearn.utils.extmath import row_norms

from skgradnorm._cluster._auto_k import scan_k, search_fits
from skgradnorm._cluster._mixture import (
    diag_mixture_bic,
    diag_mixture_bics,
    kmeans_plusplus_rows,
    kmeans_plusplus_rows_batch,
)


def _gaussian_mixture_bic(P, k, *, reg_covar=1e-6, tol=1e-3, random_state=0, x_squared_norms=None):
    """The reference: scikit-learn's diagonal GaussianMixture, k-means++ start; (BIC, n_iter)."""
    gm = GaussianMixture(
        k,
        covariance_type="diag",
        reg_covar=reg_covar,
        tol=tol,
        init_params="k-means++",
        random_state=random_state,
    ).fit(P)
    return gm.bic(P), gm.n_iter_


def _gaussian_mixture_bics(P, sizes, seeds, *, reg_covar, tol, x_squared_norms=None):
    """:func:`_gaussian_mixture_bic` of each mixture, as ``diag_mixture_bics`` returns them."""
    out = [
        _gaussian_mixture_bic(P, int(k), reg_covar=reg_covar, tol=tol, random_state=s)
        for k, s in zip(sizes, seeds, strict=True)
    ]
    return np.asarray([b for b, _ in out]), np.asarray([i for _, i in out])


def _data(n, d, n_blobs, seed):
    rng = np.random.RandomState(seed)
    centers = rng.normal(scale=3.0, size=(n_blobs, d))
    X = centers[rng.randint(n_blobs, size=n)] + rng.normal(scale=rng.uniform(0.3, 1.5), size=(n, d))
    return X.astype(np.float64)


@pytest.mark.parametrize(("n", "d", "k", "seed"), [(50, 2, 1, 0), (300, 5, 7, 1), (800, 20, 40, 2)])
def test_kmeans_plusplus_rows_are_scikit_learns(n, d, k, seed):
    X = _data(n, d, 5, seed)
    for rs in range(3):
        _, expected = kmeans_plusplus(X, k, random_state=rs)
        got = kmeans_plusplus_rows(X, k, row_norms(X, squared=True), np.random.RandomState(rs))
        np.testing.assert_array_equal(got, expected)


@pytest.mark.parametrize(
    ("n", "d", "k", "reg", "tol"),
    [(40, 3, 2, 1e-6, 1e-3), (400, 8, 6, 1e-4, 1e-2), (1000, 20, 30, 1e-4, 1e-2)],
)
def test_bic_and_iterations_are_gaussian_mixtures(n, d, k, reg, tol):
    for seed in range(3):
        X = _data(n, d, max(2, k // 2), seed)
        reference_bic, reference_iter = _gaussian_mixture_bic(
            X, k, reg_covar=reg, tol=tol, random_state=seed
        )
        bic, n_iter = diag_mixture_bic(X, k, reg_covar=reg, tol=tol, random_state=seed)
        assert n_iter == reference_iter
        assert bic == pytest.approx(reference_bic, rel=1e-9)


def test_float32_rows_and_given_norms_change_nothing():
    X = _data(200, 6, 3, 5)
    X32 = X.astype(np.float32)
    assert diag_mixture_bic(X32, 4, random_state=0) == diag_mixture_bic(
        X32.astype(np.float64), 4, random_state=0
    )
    plain = diag_mixture_bic(X, 4, random_state=0)
    norms = row_norms(X, squared=True)
    assert diag_mixture_bic(X, 4, random_state=0, x_squared_norms=norms) == plain


def test_the_search_picks_the_k_gaussian_mixture_picks(monkeypatch):
    """The whole "bic" scan, with the mixture swapped for scikit-learn's estimator: the same
    scores (to rounding), hence the same K, on random unit rows."""
    from skgradnorm._cluster import _k_criteria

    for seed in range(2):
        Z = _data(300, 24, 6, seed)
        Z /= np.linalg.norm(Z, axis=1, keepdims=True)
        ks = np.arange(2, 13)
        fast = scan_k(search_fits(Z, random_state=seed, n_init=1), ks, "bic")
        with monkeypatch.context() as m:
            m.setattr(_k_criteria, "diag_mixture_bics", _gaussian_mixture_bics)
            plain = scan_k(search_fits(Z, random_state=seed, n_init=1), ks, "bic")
        assert fast[0] == plain[0]
        np.testing.assert_array_equal(fast[1], plain[1])
        np.testing.assert_allclose(fast[2], plain[2], rtol=1e-9)
        np.testing.assert_allclose(fast[3], plain[3], rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize(("n", "d", "seed"), [(60, 3, 0), (500, 20, 1), (1200, 8, 2)])
def test_kmeans_plusplus_batch_draws_each_as_alone(n, d, seed):
    X = _data(n, d, 6, seed)
    norms = row_norms(X, squared=True)
    sizes = [1, 2, 7, 3, 7, 30, 12][: 3 + seed * 2]
    seeds = [seed * 10 + i for i in range(len(sizes))]
    batch = kmeans_plusplus_rows_batch(X, sizes, norms, [np.random.RandomState(s) for s in seeds])
    for k, s, rows in zip(sizes, seeds, batch, strict=True):
        alone = kmeans_plusplus_rows(X, k, norms, np.random.RandomState(s))
        np.testing.assert_array_equal(rows, alone)


@pytest.mark.parametrize(("n", "d", "reg", "tol"), [(80, 4, 1e-6, 1e-3), (900, 20, 1e-4, 1e-2)])
def test_mixtures_side_by_side_are_each_alone(n, d, reg, tol):
    """The batched EM: every mixture's BIC (to rounding) and iteration count as alone, though
    the mixtures stop after different numbers of iterations."""
    for seed in range(2):
        X = _data(n, d, 5, seed)
        sizes = [2, 2, 3, 5, 5, 9, 16, 1][: 4 + 4 * seed]
        seeds = [seed + 7 * i for i in range(len(sizes))]
        bics, iters = diag_mixture_bics(X, sizes, seeds, reg_covar=reg, tol=tol)
        alone = [
            diag_mixture_bic(X, k, reg_covar=reg, tol=tol, random_state=s)
            for k, s in zip(sizes, seeds, strict=True)
        ]
        np.testing.assert_allclose(bics, [b for b, _ in alone], rtol=1e-10)
        np.testing.assert_array_equal(iters, [i for _, i in alone])
        assert len(set(iters.tolist())) > 1  # the mixtures did stop at different iterations


def test_mixtures_in_turns_under_the_memory_bound(monkeypatch):
    """Past BATCH_ELEMENTS components x rows the mixtures are fitted in groups: the same
    results as all at once."""
    from skgradnorm._cluster import _mixture

    X = _data(300, 6, 4, 3)
    sizes, seeds = [2, 9, 4, 30, 3, 3], [1, 2, 3, 4, 5, 6]
    together = diag_mixture_bics(X, sizes, seeds, reg_covar=1e-4, tol=1e-2)
    monkeypatch.setattr(_mixture, "BATCH_ELEMENTS", 300 * 10)  # groups of <= 10 components
    groups = []
    together_fn = _mixture._mixture_bics_together

    def recorded(X, n_components, *args, **kwargs):
        groups.append(list(n_components))
        return together_fn(X, n_components, *args, **kwargs)

    monkeypatch.setattr(_mixture, "_mixture_bics_together", recorded)
    in_turns = diag_mixture_bics(X, sizes, seeds, reg_covar=1e-4, tol=1e-2)
    assert groups == [[2], [9], [4], [30], [3, 3]]  # in order; a mixture over the bound alone
    np.testing.assert_allclose(in_turns[0], together[0], rtol=1e-12)
    np.testing.assert_array_equal(in_turns[1], together[1])
    with pytest.raises(ValueError, match="random states"):
        diag_mixture_bics(X, sizes, seeds[:2])
