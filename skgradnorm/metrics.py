"""Clustering metrics: accuracy under the best cluster-to-class matching, and the usual three.

NMI and ARI come from scikit-learn (``sklearn.metrics.normalized_mutual_info_score``,
``sklearn.metrics.adjusted_rand_score``); this module adds the ACC of the clustering
literature, which scikit-learn does not ship, and :func:`clustering_metrics`, the one place
the command line, the report and the benchmarks compute ACC, NMI and ARI together.
"""

from __future__ import annotations

import numpy as np
from scipy.optimize import linear_sum_assignment
from sklearn.metrics import adjusted_rand_score, normalized_mutual_info_score
from sklearn.metrics.cluster import contingency_matrix
from sklearn.utils import check_consistent_length, column_or_1d
from sklearn.utils._param_validation import validate_params

__all__ = ["clustering_accuracy_score", "clustering_metrics"]


@validate_params(
    {"y_true": ["array-like"], "y_pred": ["array-like"]}, prefer_skip_nested_validation=True
)
def clustering_accuracy_score(y_true, y_pred):
    """Clustering accuracy (ACC): accuracy after the best one-to-one cluster-to-class map.

    The clusters are matched to the classes by the Hungarian algorithm on the contingency
    table (``scipy.optimize.linear_sum_assignment``), maximising the number of samples
    whose cluster maps to their class; ACC is that number over the number of samples.
    Labels may be any hashable values; the number of clusters may differ from the number
    of classes (unmatched clusters count as errors). Like ``accuracy_score`` it is a
    score (higher is better), so ``make_scorer(clustering_accuracy_score)`` works with
    ``GridSearchCV``.

    Parameters
    ----------
    y_true : array-like of shape (n_samples,)
        Ground-truth classes.
    y_pred : array-like of shape (n_samples,)
        Cluster labels.

    Returns
    -------
    float
        ACC in [0, 1].

    Examples
    --------
    >>> from skgradnorm.metrics import clustering_accuracy_score
    >>> clustering_accuracy_score([0, 0, 1, 1, 2], [1, 1, 0, 0, 0])
    0.8
    """
    y_true = column_or_1d(y_true)
    y_pred = column_or_1d(y_pred)
    check_consistent_length(y_true, y_pred)
    if y_true.size == 0:
        raise ValueError("clustering_accuracy_score needs at least one sample; got empty inputs.")
    table = contingency_matrix(y_true, y_pred)  # (n_classes, n_clusters) counts
    rows, cols = linear_sum_assignment(table, maximize=True)
    return float(table[rows, cols].sum() / y_true.size)


@validate_params(
    {"y_true": ["array-like"], "y_pred": ["array-like"]}, prefer_skip_nested_validation=True
)
def clustering_metrics(y_true, y_pred):
    """ACC, NMI and ARI of cluster labels ``y_pred`` against classes ``y_true``.

    Parameters
    ----------
    y_true : array-like of shape (n_samples,)
        Ground-truth classes (any hashable labels).
    y_pred : array-like of shape (n_samples,)
        Cluster labels.

    Returns
    -------
    metrics : dict
        ``{"ACC": float, "NMI": float, "ARI": float, "n_samples": int, "n_classes": int}``:
        :func:`clustering_accuracy_score`, scikit-learn's
        ``normalized_mutual_info_score`` and ``adjusted_rand_score``, the number of samples
        and of distinct classes.

    See Also
    --------
    clustering_accuracy_score : ACC alone, usable with ``make_scorer``.

    Examples
    --------
    >>> from skgradnorm.metrics import clustering_metrics
    >>> m = clustering_metrics(["a", "a", "b", "b"], [1, 1, 0, 0])
    >>> m["ACC"], m["NMI"], m["ARI"], m["n_classes"]
    (1.0, 1.0, 1.0, 2)
    """
    y_true = column_or_1d(y_true)
    y_pred = column_or_1d(y_pred)
    return {
        "ACC": clustering_accuracy_score(y_true, y_pred),
        "NMI": float(normalized_mutual_info_score(y_true, y_pred)),
        "ARI": float(adjusted_rand_score(y_true, y_pred)),
        "n_samples": int(y_true.size),
        "n_classes": int(np.unique(y_true).size),
    }
