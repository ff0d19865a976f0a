"""``n_clusters="auto"``: choose the number of clusters K without labels.

A label-free criterion (:mod:`._k_criteria`) scores spherical k-means partitions of the
representation for the K values of a range; the K its rule picks is then fitted as a fit
with K given would be. Math only; :class:`~skgradnorm.SphericalKMeans` and
:class:`~skgradnorm.LanguageAssistedClusterer` call :func:`search_k`, and
:func:`skgradnorm.tuning.search_n_clusters` is its public face.

The search is cheap next to the final fit: the criterion is computed from fits with few
restarts (:data:`SEARCH_N_INIT`) on at most :data:`MAX_SEARCH_SAMPLES` rows, first on a
geometric subset of the K range (about 14 of the default 49 values), then on every K
around the best of those. The default criterion and these settings were chosen by
measurement (``benchmarks/bench_label_free.py``; figures in ``benchmarks/RESULTS.md``).
"""

from __future__ import annotations

import numbers
from dataclasses import dataclass

import numpy as np
from scipy.special import ndtr
from sklearn.utils import check_random_state
from threadpoolctl import threadpool_limits

from .._utils._validation import check_n_clusters
from ._k_criteria import K_CRITERIA, KFits, choose_k, criterion_scores
from ._kmeans import draw_rows, spherical_kmeans

__all__ = [
    "DEFAULT_K_CRITERION",
    "K_CRITERIA",
    "KSearch",
    "check_n_clusters_range",
    "coarse_grid",
    "default_n_clusters_range",
    "describe_k_search",
    "resolve_k_values",
    "search_k",
    "store_k_search",
]

#: The criterion of ``n_clusters="auto"`` (see the module docstring).
DEFAULT_K_CRITERION = "bic"

#: Restarts of every k-means fit of the search (the final fit has the estimator's).
SEARCH_N_INIT = 2
#: Rows the criterion is computed on, at most.
MAX_SEARCH_SAMPLES = 3000
#: Ratio between consecutive K values of the coarse pass.
COARSE_RATIO = 1.25

#: The largest K of the default range.
DEFAULT_MAX_K = 50


def default_n_clusters_range(n_samples: int) -> range:
    """The default K range: 2 to ``min(50, n_samples // 10)`` (at least 2 to 3).

    At least ten images per cluster on average, and at most 50 clusters (the issue's
    worlds have 5 to 50 classes); pass ``n_clusters_range`` for more.
    """
    high = max(3, min(DEFAULT_MAX_K, n_samples // 10))
    return range(2, min(high, n_samples - 1) + 1)


def check_n_clusters_range(n_clusters_range, n_samples: int) -> np.ndarray:
    """Validate a K range (None: the default) against ``n_samples``; sorted unique ints."""
    if n_clusters_range is None:
        ks = np.asarray(default_n_clusters_range(n_samples))
    else:
        r = n_clusters_range
        if isinstance(r, range) and len(r) and max(r[0], r[-1]) >= n_samples:
            # Said before listing: range(2, 10**8) takes minutes to list and sort.
            raise _too_large(max(r[0], r[-1]), n_samples)
        try:
            ks = np.asarray(list(n_clusters_range))
        except TypeError:
            raise ValueError(
                f"n_clusters_range must be a sequence of ints, e.g. range(2, 21); got "
                f"{n_clusters_range!r}."
            ) from None
        if ks.size and not all(
            isinstance(k, numbers.Integral) and not isinstance(k, bool) for k in ks.tolist()
        ):
            raise ValueError(
                f"n_clusters_range must hold ints, e.g. range(2, 21); got {n_clusters_range!r}."
            )
    ks = np.unique(ks.astype(np.int64))
    if ks.size < 2:
        raise ValueError(
            f"n_clusters_range must offer at least two values of K to choose from; got "
            f"{ks.tolist()}. Pass e.g. range(2, 21), or an int n_clusters."
        )
    if ks[0] < 2:
        raise ValueError(
            f"n_clusters_range starts at {ks[0]}; a label-free criterion needs K >= 2: pass a "
            "range starting at 2 or more."
        )
    if ks[-1] >= n_samples:
        raise _too_large(ks[-1], n_samples)
    return ks


def _too_large(k, n_samples) -> ValueError:
    return ValueError(
        f"n_clusters_range reaches K={k} but there are only {n_samples} samples; use "
        f"values below {n_samples}, e.g. range(2, {max(3, min(n_samples, 51))})."
    )


def resolve_k_values(n_clusters, n_clusters_range, n_samples: int):
    """The K values to try for ``n_clusters="auto"`` (checked, sorted); None for an int
    ``n_clusters``, which is checked against ``n_samples``. The one
    ``_check_params_vs_input`` of the estimators that take ``n_clusters="auto"``."""
    if isinstance(n_clusters, str) and n_clusters == "auto":
        return check_n_clusters_range(n_clusters_range, n_samples)
    check_n_clusters(n_clusters, n_samples)
    return None


@dataclass
class KSearch:
    """What :func:`search_k` found: the chosen K, the K values scored with their criterion
    (higher is better), the confidence of the choice, and the final fit at that K."""

    n_clusters: int
    ks: np.ndarray
    scores: np.ndarray
    confidence: float
    fit: tuple
    criterion: str


def k_confidence(ks, scores, best_k, criterion, errors=None) -> float:
    """How sure the choice of ``best_k`` is, in [0, 1].

    For ``"bic"``: ``2 Phi(z) - 1``, with ``z`` the margin of ``best_k`` over the runner-up
    (in BIC units, the mean of two EM fits) divided by the noise of one fit's BIC, whose
    variance is half the mean squared difference between the two fits over the scored K:
    the probability, under that noise, that ``best_k`` really scores above the runner-up,
    rescaled from [0.5, 1] to [0, 1]. 0: the best two K are tied within the noise of EM;
    1: far apart. For the other criteria: the margin of ``best_k`` over the best K more
    than one away, over the range of the scores.
    """
    ks, scores = np.asarray(ks), np.asarray(scores, dtype=float)
    best = scores[ks == best_k][0]
    others = scores[ks != best_k]
    if others.size == 0:
        return 1.0
    if criterion == "bic" and errors is not None:
        noise = np.sqrt(np.mean(np.square(errors)) / 2.0)
        margin = best - others.max()
        if noise <= 0:
            return 1.0 if margin > 0 else 0.0
        return float(np.clip(2.0 * ndtr(margin / noise) - 1.0, 0.0, 1.0))
    span = np.ptp(scores)
    if not np.isfinite(span) or span <= 0:
        return 0.0
    far = np.abs(ks - best_k) > 1
    if not np.any(far):
        return 1.0
    return float(np.clip((best - scores[far].max()) / span, 0.0, 1.0))


def store_k_search(estimator, found) -> None:
    """Set an estimator's K-search attributes from a :class:`KSearch`."""
    estimator.n_clusters_ = found.n_clusters
    estimator.n_clusters_range_ = found.ks
    estimator.n_clusters_scores_ = found.scores
    estimator.n_clusters_confidence_ = found.confidence
    estimator.n_clusters_criterion_ = found.criterion


#: What each criterion is, in words (for the report).
CRITERION_WORDS = {
    "stability": "the stability of k-means between two seeds (adjusted Rand index)",
    "silhouette": "the mean cosine silhouette",
    "prediction_strength": "the prediction strength",
    "gap": "the gap statistic",
    "eigengap": "the eigengap of the k-nearest-neighbour graph",
    "bic": "the BIC of a Gaussian mixture",
}
#: Below this confidence the report says that another K scored almost as well.
LOW_CONFIDENCE = 0.5


def describe_k_search(estimator) -> str:
    """One sentence for the report: the K an estimator fitted with ``n_clusters="auto"``
    chose, by which criterion, over which K values, and how sure the choice is."""
    ks = [int(k) for k in estimator.n_clusters_range_]
    criterion = getattr(estimator, "n_clusters_criterion_", DEFAULT_K_CRITERION)
    confidence = float(estimator.n_clusters_confidence_)
    text = (
        f"K = {estimator.n_clusters_} chosen without labels: the best "
        f"{CRITERION_WORDS.get(criterion, criterion)} over the {len(ks)} values of K scored "
        f"between {ks[0]} and {ks[-1]}; confidence {confidence:.2f}"
    )
    if estimator.n_clusters_ == ks[-1] and len(ks) > 2:
        return text + (
            " (none: the largest K scored won, and the criterion may rise further; widen "
            "n_clusters_range or give n_clusters)."
        )
    if confidence < LOW_CONFIDENCE:
        return text + (
            " (low: another K scored almost as well; give n_clusters if you know the number "
            "of groups)."
        )
    return text + "."


def coarse_grid(ks, ratio=COARSE_RATIO) -> np.ndarray:
    """Indices of a geometric subset of the sorted ``ks``: each next K at least ``ratio``
    times the last kept one, the smallest and the largest K always kept."""
    kept = [0]
    for i in range(1, len(ks)):
        if ks[i] >= ks[kept[-1]] * ratio:
            kept.append(i)
    if kept[-1] != len(ks) - 1:
        kept.append(len(ks) - 1)
    return np.asarray(kept)


def _scored(fits, ks, idx, criterion, cache):
    """Score the K values ``ks[idx]`` not scored yet (``cache``: index -> (score, error))."""
    todo = [i for i in idx if i not in cache]
    if todo:
        scores, errors = criterion_scores(fits, ks[todo], criterion)
        for j, i in enumerate(todo):
            cache[i] = (scores[j], None if errors is None else errors[j])


def _pick(ks, cache, criterion):
    """The index in ``ks`` of the chosen K among the scored ones, and the sorted scored
    indices with their scores."""
    idx = np.asarray(sorted(cache))
    scores = np.asarray([cache[i][0] for i in idx])
    errors = None if cache[idx[0]][1] is None else np.asarray([cache[i][1] for i in idx])
    return int(idx[choose_k(ks[idx], scores, criterion, errors)]), idx, scores, errors


def scan_k(fits, ks, criterion, *, coarse_to_fine=True):
    """Score K values of ``ks`` with ``criterion`` on the shared ``fits`` and pick one.

    With ``coarse_to_fine``, a geometric subset of ``ks`` (:func:`coarse_grid`) first, then
    every K between the neighbours of its choice. Returns ``(best_k, scored_ks, scores,
    errors)``: the scored K values sorted, their criterion, and its errors (see
    :func:`criterion_scores`; None for most criteria).
    """
    cache: dict = {}
    first = coarse_grid(ks) if coarse_to_fine else np.arange(len(ks))
    # The criteria's arrays are small (the search's rows; "bic"'s mixtures on 20 principal
    # components): threaded BLAS costs more than it saves there, and on a busy machine it
    # stalls (the PCA's QR took up to 0.2 s on 2 threads, 2 ms on one). scikit-learn's
    # KMeans limits BLAS to one thread around its iterations the same way.
    with threadpool_limits(limits=1, user_api="blas"):
        _scored(fits, ks, first, criterion, cache)
        best = _pick(ks, cache, criterion)[0]
        if coarse_to_fine:
            pos = int(np.searchsorted(first, best))
            low, high = first[max(pos - 1, 0)], first[min(pos + 1, len(first) - 1)]
            _scored(fits, ks, np.arange(low, high + 1), criterion, cache)
    best, idx, scores, errors = _pick(ks, cache, criterion)
    return int(ks[best]), ks[idx], scores, errors


def search_fits(Z, *, random_state=None, max_search_samples=MAX_SEARCH_SAMPLES, **params):
    """The :class:`KFits` of a search on at most ``max_search_samples`` rows of ``Z``
    (drawn with ``random_state``), with ``params`` for :class:`KFits`."""
    rng = check_random_state(random_state)
    search_seed = int(rng.randint(np.iinfo(np.int32).max))
    rows = draw_rows(Z.shape[0], max_search_samples, np.random.RandomState(search_seed))
    params.pop("max_samples", None)  # the search draws its own rows
    return KFits(Z if rows is None else Z[rows], random_state=search_seed, **params)


def search_k(
    Z,
    ks,
    *,
    criterion=DEFAULT_K_CRITERION,
    n_init=10,
    random_state=None,
    search_n_init=SEARCH_N_INIT,
    max_search_samples=MAX_SEARCH_SAMPLES,
    coarse_to_fine=True,
    fit_rows=None,
    **kmeans_params,
):
    """Choose K for spherical k-means on unit rows ``Z`` by a label-free criterion.

    The criterion is computed from fits with ``search_n_init`` restarts on at most
    ``max_search_samples`` rows (drawn with ``random_state``), on the K values
    :func:`scan_k` visits. The chosen K is then fitted on all the rows with ``n_init``
    restarts, as a fit with K given would be.

    Parameters
    ----------
    Z : ndarray of shape (n_samples, n_features)
        Unit rows.
    ks : ndarray of int
        Candidate K values (from :func:`check_n_clusters_range`).
    criterion : str
        One of :data:`K_CRITERIA` (see :mod:`._k_criteria`).
    n_init, random_state, **kmeans_params
        As for :func:`~skgradnorm.spherical_kmeans`; ``n_init`` is the final fit's.
    search_n_init : int
        Restarts of every fit of the search.
    max_search_samples : int or None
        Rows the criterion is computed on, at most (None: all).
    coarse_to_fine : bool
        Score a geometric subset of ``ks`` first, then refine around its choice.
    fit_rows : ndarray of shape (n_samples, n_other_features) or None
        The unit rows the final fit clusters (None: ``Z``), e.g. the clusterer's
        ``[u ; t]`` when K is chosen on the images ``u``.

    Returns
    -------
    KSearch
    """
    if criterion not in K_CRITERIA:
        raise ValueError(f"criterion must be one of {K_CRITERIA}; got {criterion!r}.")
    rng = check_random_state(random_state)
    search_seed, final_seed = (int(s) for s in rng.randint(np.iinfo(np.int32).max, size=2))
    fits = search_fits(
        Z,
        random_state=search_seed,
        max_search_samples=max_search_samples,
        n_init=search_n_init,
        **kmeans_params,
    )
    best_k, scored, scores, errors = scan_k(fits, ks, criterion, coarse_to_fine=coarse_to_fine)
    rows = Z if fit_rows is None else fit_rows
    fit = spherical_kmeans(rows, best_k, n_init=n_init, random_state=final_seed, **kmeans_params)
    confidence = k_confidence(scored, scores, best_k, criterion, errors)
    if best_k == ks[-1] and len(ks) > 2:
        # the criterion may still rise beyond the range (the BIC hit K = 50 on the
        # benchmark's island worlds): no confidence
        confidence = 0.0
    return KSearch(best_k, scored, scores, confidence, fit, criterion)
