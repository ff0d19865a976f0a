"""The BIC of a Gaussian mixture with diagonal covariances, fitted by EM, for the K
criterion ``"bic"`` (:mod:`._k_criteria`).

The same computation as scikit-learn's ``GaussianMixture(covariance_type="diag",
init_params="k-means++", n_init=1).fit(P).bic(P)``, step for step: the same k-means++
draw (the same operations as scikit-learn's :func:`~sklearn.cluster.kmeans_plusplus`,
on the same random state, so the same rows), the same initial parameters from it, the
same E and M steps, the same stopping rule on the change of the mean log-likelihood, and
the BIC of the final parameters. ``tests/test_mixture.py`` checks that both give the
same k-means++ rows, the same BIC and the same iteration count on random inputs.

Why not scikit-learn's own functions: the search fits two mixtures at every K it scores,
on at most 3,000 rows of 20 principal components, and at that size their per-call
overhead (input validation, array-API dispatch: one distance call per k-means++ centre,
a copying log-sum-exp per EM iteration) cost more than the arithmetic; written out over
NumPy arrays, one fit takes well under half the time (measured in
``benchmarks/RESULTS.md``, "The BIC criterion's mixtures ...").
"""

from __future__ import annotations

import math

import numpy as np
from sklearn.utils import check_random_state
from sklearn.utils.extmath import row_norms

__all__ = ["diag_mixture_bic", "kmeans_plusplus_rows"]

_LOG_2PI = math.log(2.0 * math.pi)


def _squared_distances(C, X, x_squared_norms):
    """Squared Euclidean distances of the rows of ``C`` to those of ``X``, computed as
    scikit-learn's ``_euclidean_distances`` does for float64 (the same rounding)."""
    distances = -2 * (C @ X.T)
    distances += row_norms(C, squared=True)[:, None]
    distances += x_squared_norms[None, :]
    np.maximum(distances, 0, out=distances)
    return distances


def kmeans_plusplus_rows(X, n_clusters, x_squared_norms, random_state):
    """The rows greedy k-means++ picks as centres of the float64 rows ``X``, as
    ``sklearn.cluster.kmeans_plusplus(X, n_clusters, x_squared_norms=x_squared_norms,
    random_state=random_state)[1]`` (unit sample weights, ``2 + log(k)`` local trials),
    drawing the same numbers from the :class:`~numpy.random.RandomState`
    ``random_state``."""
    n = X.shape[0]
    weights = np.ones(n)
    n_local_trials = 2 + int(np.log(n_clusters))
    center = random_state.choice(n, p=weights / weights.sum())
    indices = np.full(n_clusters, -1, dtype=int)
    indices[0] = center
    closest = _squared_distances(X[center, None], X, x_squared_norms)
    potential = closest @ weights
    for c in range(1, n_clusters):
        draws = random_state.uniform(size=n_local_trials) * potential
        candidates = np.searchsorted(np.cumsum(weights * closest), draws)
        np.clip(candidates, None, closest.size - 1, out=candidates)
        distances = _squared_distances(X[candidates], X, x_squared_norms)
        np.minimum(closest, distances, out=distances)
        potentials = distances @ weights.reshape(-1, 1)
        best = np.argmin(potentials)
        potential = potentials[best]
        closest = distances[best]
        indices[c] = candidates[best]
    return indices


def _m_step(XX2, resp, reg_covar):
    """Weights (unnormalised), means and Cholesky factors of the diagonal precisions from
    the responsibilities ``resp``, as scikit-learn's M step; ``XX2`` is ``[X, X * X]``."""
    d = XX2.shape[1] // 2
    nk = resp.sum(axis=0) + 10 * np.finfo(resp.dtype).eps
    sums = (resp.T @ XX2) / nk[:, None]  # the means, then the means of the squares
    means = sums[:, :d]
    covariances = sums[:, d:] - means**2 + reg_covar
    if np.any(covariances <= 0.0):
        raise ValueError("a mixture component collapsed (variance <= 0); raise reg_covar.")
    return nk, means, 1.0 / np.sqrt(covariances)


def _e_step(XX2, log_weights, means, precisions_chol):
    """``(log_norm, resp)``: the log-likelihood of every row and its responsibilities.

    ``log N(x | m, 1/p) + log w = x . (m p) - x^2 . p / 2 + c`` with ``c`` per component:
    one product with ``[X, X * X]`` (scikit-learn computes the same sum as three products
    and several passes; the results agree to rounding, ``tests/test_mixture.py``)."""
    d = means.shape[1]
    precisions = precisions_chol**2
    coefs = np.concatenate([means * precisions, -0.5 * precisions], axis=1)
    const = (
        -0.5 * (d * _LOG_2PI + np.sum(means**2 * precisions, axis=1))
        + np.sum(np.log(precisions_chol), axis=1)
        + log_weights
    )
    a = XX2 @ coefs.T
    a += const
    top = a.max(axis=1, keepdims=True)
    a -= top
    with np.errstate(under="ignore"):
        np.exp(a, out=a)
    total = a.sum(axis=1, keepdims=True)
    a /= total
    return (np.log(total) + top)[:, 0], a


def diag_mixture_bic(
    X,
    n_components,
    *,
    reg_covar=1e-6,
    tol=1e-3,
    max_iter=100,
    random_state=None,
    x_squared_norms=None,
):
    """BIC of a diagonal Gaussian mixture fitted on the rows ``X`` by EM (in float64).

    As ``GaussianMixture(n_components, covariance_type="diag", reg_covar=reg_covar,
    tol=tol, max_iter=max_iter, init_params="k-means++", random_state=random_state)
    .fit(X).bic(X)`` (see the module docstring). ``x_squared_norms``: the squared row
    norms of ``X``, for k-means++, when already computed. Returns ``(bic, n_iter)``.
    """
    X = np.ascontiguousarray(X, dtype=np.float64)
    n, d = X.shape
    if x_squared_norms is None:
        x_squared_norms = row_norms(X, squared=True)
    rng = check_random_state(random_state)
    indices = kmeans_plusplus_rows(X, n_components, x_squared_norms, rng)
    XX2 = np.concatenate([X, X * X], axis=1)
    resp = np.zeros((n, n_components))
    resp[indices, np.arange(n_components)] = 1.0
    nk, means, prec_chol = _m_step(XX2, resp, reg_covar)
    log_weights = np.log(nk / n)  # scikit-learn's initial weights: not renormalised
    lower_bound = -np.inf
    n_iter = 0
    for n_iter in range(1, max_iter + 1):  # noqa: B007 (n_iter is returned)
        previous = lower_bound
        log_norm, resp = _e_step(XX2, log_weights, means, prec_chol)
        nk, means, prec_chol = _m_step(XX2, resp, reg_covar)
        log_weights = np.log(nk / nk.sum())
        lower_bound = float(log_norm.mean())
        if abs(lower_bound - previous) < tol:
            break
    score = float(_e_step(XX2, log_weights, means, prec_chol)[0].mean())
    n_parameters = 2 * n_components * d + n_components - 1
    return -2.0 * score * n + n_parameters * math.log(n), n_iter
