"""``n_clusters="auto"``: choose the number of clusters K without labels.

For every K of a range, spherical k-means is fitted on the representation and a
label-free criterion scores the partition; the K with the best score is kept, with its fit.
Math only; :class:`~skgradnorm.SphericalKMeans` and
:class:`~skgradnorm.LanguageAssistedClusterer` call :func:`search_k`, and
:func:`skgradnorm.tuning.search_n_clusters` is its public face.

The criterion is the stability of the partition [1]_: the adjusted Rand index between two
k-means fits with different seeds (a K the data supports is found again from another
start; a K that splits or merges true groups arbitrarily is not). It was chosen over the
cosine silhouette [2]_ by measurement (``benchmarks/bench_label_free.py``; figures in
``benchmarks/RESULTS.md``): on planted worlds whose classes have several visual modes the
silhouette counts the modes, not the classes.

References
----------
.. [1] T. Lange, V. Roth, M. L. Braun, J. M. Buhmann, "Stability-based validation of
   clustering solutions", Neural Computation 16, 2004.
.. [2] P. J. Rousseeuw, "Silhouettes: a graphical aid to the interpretation and validation
   of cluster analysis", J. Comput. Appl. Math. 20, 1987.
"""

from __future__ import annotations

import numbers

import numpy as np
from sklearn.metrics import adjusted_rand_score
from sklearn.utils import check_random_state

from .._utils._validation import check_n_clusters
from ._kmeans import spherical_kmeans
from ._label_free import cosine_silhouette

#: Criteria of the K search (the first is the default).
K_CRITERIA = ("stability", "silhouette")

#: Scores within this much of the best count as ties; the largest tied K wins. Stability
#: is exactly 1 for every K that splits the data along clear gaps (K=2 as much as the true
#: K), and the finer of those partitions is the informative one. A tolerance of 0 (exact
#: ties only) gave the smallest mean |error| in ``benchmarks/bench_label_free.py`` (4.7
#: against 6.0 for 0.01 and 11.2 for 0.05, over 20 worlds of 5 to 50 classes).
TIE_TOLERANCE = 0.0

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


def search_k(
    Z,
    ks,
    *,
    criterion="stability",
    n_init=10,
    max_iter=300,
    tol=1e-4,
    random_state=None,
    device=None,
    tie_tolerance=TIE_TOLERANCE,
    **kmeans_params,
):
    """Fit spherical k-means for every K of ``ks`` on unit rows ``Z``; keep the best K.

    Parameters
    ----------
    Z : ndarray of shape (n_samples, n_features)
        Unit rows.
    ks : ndarray of int
        Candidate K values (from :func:`check_n_clusters_range`).
    criterion : {"stability", "silhouette"}
        ``"stability"``: adjusted Rand index between the fit and a second fit with another
        seed; ``"silhouette"``: mean cosine silhouette of the fit.
    n_init, max_iter, tol, random_state, device, **kmeans_params
        As for :func:`~skgradnorm.spherical_kmeans` (every K gets the same seed).
    tie_tolerance : float
        The largest K whose score is within this much of the best score is chosen.

    Returns
    -------
    best_k : int
    scores : ndarray of shape (len(ks),)
        The criterion for every K (higher is better).
    fit : tuple
        ``(centers, labels, objective, n_iter)`` of the fit at ``best_k``.
    """
    if criterion not in K_CRITERIA:
        raise ValueError(f"criterion must be one of {K_CRITERIA}; got {criterion!r}.")

    rng = check_random_state(random_state)
    seed, other_seed = (int(s) for s in rng.randint(np.iinfo(np.int32).max, size=2))
    params = dict(n_init=n_init, max_iter=max_iter, tol=tol, device=device, **kmeans_params)
    scores, kept = [], {}  # kept: the fits that may still be chosen (bounded memory)
    for i, k in enumerate(ks):
        fit = spherical_kmeans(Z, int(k), random_state=seed, **params)
        if criterion == "silhouette":
            score = cosine_silhouette(Z, fit[1], random_state=0)
        else:
            _, other, _, _ = spherical_kmeans(Z, int(k), random_state=other_seed, **params)
            score = float(adjusted_rand_score(fit[1], other))
        scores.append(score)
        kept[i] = fit
        floor = max(scores) - tie_tolerance
        kept = {j: f for j, f in kept.items() if scores[j] >= floor}
    scores = np.asarray(scores)
    best = max(kept)  # the largest K within tie_tolerance of the best score
    return int(ks[best]), scores, kept[best]
