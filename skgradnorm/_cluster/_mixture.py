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
``benchmarks/RESULTS.md``, "Faster K search and label-free grid"). :func:`diag_mixture_bics`
fits the mixtures of all the K values of a search side by side (one k-means++ draw and
one EM step for all of them at a time), each still with its own start and stopping rule:
the same BICs to rounding and the same iteration counts as :func:`diag_mixture_bic` one
by one, in 0.6-0.7x its time on one thread (``benchmarks/RESULTS.md``, "A faster K search").
"""

from __future__ import annotations

import math

import numpy as np
from sklearn.utils import check_random_state
from sklearn.utils.extmath import row_norms

__all__ = [
    "diag_mixture_bic",
    "diag_mixture_bics",
    "kmeans_plusplus_rows",
    "kmeans_plusplus_rows_batch",
]

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


def kmeans_plusplus_rows_batch(X, sizes, x_squared_norms, random_states):
    """:func:`kmeans_plusplus_rows` of several draws at once: draw ``m`` picks
    ``sizes[m]`` rows with the :class:`~numpy.random.RandomState` ``random_states[m]``.

    Each draw takes the same numbers from its own random state as it would alone, and the
    candidates' distances of all the draws still picking are computed together; returns
    one array of rows per draw (equal to the draws made one by one,
    ``tests/test_mixture.py``)."""
    n = X.shape[0]
    sizes = np.asarray(sizes, dtype=np.intp)
    weights = np.ones(n)
    trials = 2 + np.log(sizes).astype(np.intp)
    first = [rs.choice(n, p=weights / weights.sum()) for rs in random_states]
    indices = [np.full(k, -1, dtype=int) for k in sizes]
    for m, c in enumerate(first):
        indices[m][0] = c
    closest = _squared_distances(X[first], X, x_squared_norms)
    potential = closest @ weights
    for c in range(1, int(sizes.max(initial=1))):
        active = np.flatnonzero(sizes > c)
        current = closest[active]
        cums = np.cumsum(current, axis=1)
        width = int(trials[active].max())
        candidates = np.zeros((active.size, width), dtype=np.intp)
        for j, m in enumerate(active):
            draws = random_states[m].uniform(size=trials[m]) * potential[m]
            candidates[j, : trials[m]] = np.searchsorted(cums[j], draws)
        pad = np.arange(width)[None, :] >= trials[active][:, None]
        candidates[pad] = np.broadcast_to(candidates[:, :1], candidates.shape)[pad]
        np.clip(candidates, None, n - 1, out=candidates)
        distances = _squared_distances(X[candidates.ravel()], X, x_squared_norms)
        distances = distances.reshape(active.size, width, n)
        np.minimum(current[:, None, :], distances, out=distances)
        potentials = (distances @ weights).reshape(active.size, width)
        potentials[pad] = np.inf
        best = np.argmin(potentials, axis=1)
        pick = np.arange(active.size)
        potential[active] = potentials[pick, best]
        closest[active] = distances[pick, best]
        for j, m in enumerate(active):
            indices[m][c] = candidates[j, best[j]]
    return indices


def _m_step(XX2, resp, reg_covar):
    """Weights (unnormalised), means and Cholesky factors of the diagonal precisions from
    the responsibilities ``resp`` (rows x components), as scikit-learn's M step; ``XX2`` is
    ``[X, X * X]``. The same computation as :func:`_m_steps`, on the transposed view."""
    return _m_steps(XX2, resp.T, reg_covar)


def _log_density_terms(log_weights, means, precisions_chol):
    """``(coefs, const)``: each component's ``log N(x | m, 1/p) + log w`` is
    ``[x, x * x] . coefs + const``, with ``coefs = [m p, -p / 2]`` and ``const`` the rest."""
    d = means.shape[1]
    precisions = precisions_chol**2
    coefs = np.concatenate([means * precisions, -0.5 * precisions], axis=1)
    const = (
        -0.5 * (d * _LOG_2PI + np.sum(means**2 * precisions, axis=1))
        + np.sum(np.log(precisions_chol), axis=1)
        + log_weights
    )
    return coefs, const


def _e_step(XX2, log_weights, means, precisions_chol):
    """``(log_norm, resp)``: the log-likelihood of every row and its responsibilities.

    ``log N(x | m, 1/p) + log w = x . (m p) - x^2 . p / 2 + c`` with ``c`` per component:
    one product with ``[X, X * X]`` (scikit-learn computes the same sum as three products
    and several passes; the results agree to rounding, ``tests/test_mixture.py``)."""
    coefs, const = _log_density_terms(log_weights, means, precisions_chol)
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


class _Ragged:
    """Mixtures of several sizes side by side: the components of mixture ``m`` are the
    rows ``starts[m]:starts[m] + sizes[m]`` of every ``(n_components_total, ...)`` array."""

    def __init__(self, sizes):
        self.sizes = np.asarray(sizes, dtype=np.intp)
        self.starts = np.concatenate([[0], np.cumsum(self.sizes)[:-1]]).astype(np.intp)
        ends = self.starts + self.sizes
        self.bounds = list(zip(self.starts.tolist(), ends.tolist(), strict=True))

    def subset(self, mixtures):
        """The ragged layout of ``mixtures`` (indices) and the rows they hold here."""
        rows = np.concatenate(
            [np.arange(self.starts[m], self.starts[m] + self.sizes[m]) for m in mixtures]
        )
        return _Ragged(self.sizes[mixtures]), rows

    def spread(self, per_mixture):
        """``(n_mixtures, ...)`` values repeated to one row per component."""
        return np.repeat(per_mixture, self.sizes, axis=0)

    def reduce(self, ufunc, a):
        """``ufunc.reduce`` over each mixture's rows of ``a``: ``(n_mixtures, ...)``. (One
        call per mixture: NumPy's ``reduceat`` over the first axis took 2-4x longer.)"""
        out = np.empty((len(self.bounds),) + a.shape[1:], dtype=a.dtype)
        for m, (start, end) in enumerate(self.bounds):
            ufunc.reduce(a[start:end], axis=0, out=out[m])
        return out

    def subtract(self, a, per_mixture):
        """``a -= spread(per_mixture)`` in place, one view per mixture (no copy)."""
        for m, (start, end) in enumerate(self.bounds):
            a[start:end] -= per_mixture[m]

    def divide(self, a, per_mixture):
        """``a /= spread(per_mixture)`` in place, one view per mixture (no copy)."""
        for m, (start, end) in enumerate(self.bounds):
            a[start:end] /= per_mixture[m]


def _e_steps(layout, XX2t, log_weights, means, precisions_chol):
    """:func:`_e_step` of every mixture of ``layout`` at once, components along the first
    axis: ``(log_norm (n_mixtures, n), resp (n_components_total, n))``."""
    coefs, const = _log_density_terms(log_weights, means, precisions_chol)
    a = coefs @ XX2t
    a += const[:, None]
    top = layout.reduce(np.maximum, a)
    layout.subtract(a, top)
    with np.errstate(under="ignore"):
        np.exp(a, out=a)
    total = layout.reduce(np.add, a)
    layout.divide(a, total)
    return np.log(total) + top, a


def _m_steps(XX2, resp, reg_covar):
    """:func:`_m_step` with the components along the first axis of ``resp``."""
    d = XX2.shape[1] // 2
    nk = resp.sum(axis=1) + 10 * np.finfo(resp.dtype).eps
    sums = (resp @ XX2) / nk[:, None]  # the means, then the means of the squares
    means = sums[:, :d]
    covariances = sums[:, d:] - means**2 + reg_covar
    if np.any(covariances <= 0.0):
        raise ValueError("a mixture component collapsed (variance <= 0); raise reg_covar.")
    return nk, means, 1.0 / np.sqrt(covariances)


def _normalised_log_weights(layout, nk):
    """``log(nk / sum of nk over the mixture)`` of every component."""
    return np.log(nk / layout.spread(np.add.reduceat(nk, layout.starts)))


#: Components x rows that the mixtures fitted side by side hold at most (each of the EM's
#: work arrays is that many float64 values: 32 MiB); more mixtures are fitted in turns.
BATCH_ELEMENTS = 1 << 22


def diag_mixture_bics(
    X,
    n_components,
    random_states,
    *,
    reg_covar=1e-6,
    tol=1e-3,
    max_iter=100,
    x_squared_norms=None,
):
    """:func:`diag_mixture_bic` of several mixtures of the rows ``X`` at once.

    Mixture ``m`` has ``n_components[m]`` components and draws its k-means++ start from
    ``random_states[m]``; each runs its own EM and stops by its own rule, exactly as
    :func:`diag_mixture_bic` would (the same start and updates: the results agree to
    rounding, ``tests/test_mixture.py``). The EM steps of all the mixtures still running
    are done together, components side by side, so that a search scoring many K values
    pays NumPy's per-call cost once per iteration instead of once per mixture and
    iteration; at most :data:`BATCH_ELEMENTS` components x rows at a time (consecutive
    mixtures in turns beyond that). Returns ``(bics, n_iters)``, arrays of one value per
    mixture.
    """
    X = np.ascontiguousarray(X, dtype=np.float64)
    if x_squared_norms is None:
        x_squared_norms = row_norms(X, squared=True)
    sizes = [int(k) for k in n_components]
    states = list(random_states)
    if len(states) != len(sizes):
        raise ValueError(f"{len(sizes)} mixtures but {len(states)} random states.")
    bics, n_iters = np.empty(len(sizes)), np.zeros(len(sizes), dtype=np.intp)
    per_group = max(1, BATCH_ELEMENTS // max(X.shape[0], 1))
    first = 0
    while first < len(sizes):
        last, total = first + 1, sizes[first]
        while last < len(sizes) and total + sizes[last] <= per_group:
            total += sizes[last]
            last += 1
        bics[first:last], n_iters[first:last] = _mixture_bics_together(
            X,
            sizes[first:last],
            states[first:last],
            reg_covar=reg_covar,
            tol=tol,
            max_iter=max_iter,
            x_squared_norms=x_squared_norms,
        )
        first = last
    return bics, n_iters


def _mixture_bics_together(
    X, n_components, random_states, *, reg_covar, tol, max_iter, x_squared_norms
):
    """The mixtures of :func:`diag_mixture_bics` all side by side (one group)."""
    n, d = X.shape
    sizes = np.asarray(n_components, dtype=np.intp)
    layout = _Ragged(sizes)
    XX2 = np.concatenate([X, X * X], axis=1)
    XX2t = np.ascontiguousarray(XX2.T)
    resp = np.zeros((int(sizes.sum()), n))
    states = [check_random_state(rs) for rs in random_states]
    starts = kmeans_plusplus_rows_batch(X, sizes, x_squared_norms, states)
    for m, rows in enumerate(starts):
        resp[layout.starts[m] + np.arange(sizes[m]), rows] = 1.0
    nk, means, prec_chol = _m_steps(XX2, resp, reg_covar)
    log_weights = np.log(nk / n)  # scikit-learn's initial weights: not renormalised
    lower_bound = np.full(sizes.size, -np.inf)
    n_iters = np.zeros(sizes.size, dtype=np.intp)
    active = np.arange(sizes.size)
    for n_iter in range(1, max_iter + 1):
        sub, rows = layout.subset(active)
        log_norm, sub_resp = _e_steps(sub, XX2t, log_weights[rows], means[rows], prec_chol[rows])
        nk_sub, means[rows], prec_chol[rows] = _m_steps(XX2, sub_resp, reg_covar)
        log_weights[rows] = _normalised_log_weights(sub, nk_sub)
        previous = lower_bound[active]
        lower_bound[active] = log_norm.mean(axis=1)
        n_iters[active] = n_iter
        active = active[np.abs(lower_bound[active] - previous) >= tol]
        if active.size == 0:
            break
    score = _e_steps(layout, XX2t, log_weights, means, prec_chol)[0].mean(axis=1)
    n_parameters = 2 * sizes * d + sizes - 1
    return -2.0 * score * n + n_parameters * math.log(n), n_iters
