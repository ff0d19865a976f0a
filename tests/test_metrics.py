"""clustering_accuracy_score against a brute-force search over cluster-to-class maps."""

import itertools

import numpy as np
import pytest
from sklearn.base import BaseEstimator
from sklearn.metrics import make_scorer

from skgradnorm.metrics import clustering_accuracy_score


def _brute_force_acc(y_true, y_pred):
    classes, clusters = np.unique(y_true), np.unique(y_pred)
    best = 0
    # every injective map from clusters to classes (extra clusters map to nothing)
    for perm in itertools.permutations(
        list(classes) + [None] * max(0, len(clusters) - len(classes)), len(clusters)
    ):
        mapping = dict(zip(clusters, perm, strict=False))
        best = max(best, sum(mapping[p] == t for t, p in zip(y_true, y_pred, strict=False)))
    return best / len(y_true)


@pytest.mark.parametrize("seed", range(8))
def test_equals_brute_force_on_random_labelings(seed):
    rng = np.random.default_rng(seed)
    n_classes, n_clusters = rng.integers(1, 5), rng.integers(1, 5)
    y_true = rng.integers(0, n_classes, 40)
    y_pred = rng.integers(0, n_clusters, 40)
    assert clustering_accuracy_score(y_true, y_pred) == pytest.approx(
        _brute_force_acc(y_true, y_pred)
    )


def test_invariant_to_renaming_and_accepts_strings():
    y = np.array(["cat", "cat", "dog", "dog", "bird"])
    assert clustering_accuracy_score(y, [7, 7, 3, 3, 1]) == 1.0
    assert clustering_accuracy_score(y, [0, 0, 0, 0, 0]) == 0.4


def test_works_as_a_scorer():
    class Fixed(BaseEstimator):
        def predict(self, X):
            return np.asarray(X)[:, 0]

    scorer = make_scorer(clustering_accuracy_score)
    assert scorer(Fixed(), np.array([[1], [1], [0]]), np.array([5, 5, 6])) == 1.0


def test_errors():
    with pytest.raises(ValueError, match="inconsistent numbers of samples"):
        clustering_accuracy_score([0, 1], [0])
    with pytest.raises(ValueError, match="at least one sample"):
        clustering_accuracy_score([], [])
