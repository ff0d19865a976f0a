"""Clustering accuracy under the best one-to-one matching of clusters to classes.

NMI and ARI come from scikit-learn (``sklearn.metrics.normalized_mutual_info_score``,
``sklearn.metrics.adjusted_rand_score``); this module adds the ACC of the clustering
literature, which scikit-learn does not ship.
"""

from __future__ import annotations

from scipy.optimize import linear_sum_assignment
from sklearn.metrics.cluster import contingency_matrix
from sklearn.utils import check_consistent_length, column_or_1d

__all__ = ["clustering_accuracy_score"]


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
