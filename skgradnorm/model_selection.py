"""Cross-validation helpers for clusterers, which are transductive.

A clusterer labels the images it is fitted on; there is no held-out set to predict. To
rank its settings with a label-free criterion (:func:`skgradnorm.metrics.label_free_score`)
in :class:`~sklearn.model_selection.GridSearchCV`, fit and score each setting on all the
rows: :class:`TransductiveSplit` is that single "split". scikit-learn has no such splitter
(``PredefinedSplit`` never puts a row in both the training and the test set).
"""

from __future__ import annotations

import numpy as np
from sklearn.model_selection import BaseCrossValidator
from sklearn.utils.validation import _num_samples

__all__ = ["TransductiveSplit"]


class TransductiveSplit(BaseCrossValidator):
    """One split whose training and test sets are both every row.

    Pass it as ``cv`` to :class:`~sklearn.model_selection.GridSearchCV` with
    ``scoring=label_free_scorer`` to tune a clusterer without labels: each setting is fitted
    on all the images and scored on the same images, which is what a clusterer is for.
    The criterion must not reward fitting the training rows for its own sake; the
    label-free criteria of :mod:`skgradnorm.metrics` cross-validate internally
    (``"generalization"``) or compare refits (``"stability"``).

    See Also
    --------
    skgradnorm.metrics.label_free_score : the criterion.
    skgradnorm.tuning.tune : a grid search over T, tau and C built on both.

    Examples
    --------
    >>> import numpy as np
    >>> from skgradnorm.model_selection import TransductiveSplit
    >>> cv = TransductiveSplit()
    >>> [(train.tolist(), test.tolist()) for train, test in cv.split(np.zeros((3, 2)))]
    [([0, 1, 2], [0, 1, 2])]
    >>> cv.get_n_splits()
    1
    """

    def split(self, X, y=None, groups=None):
        """Yield ``(all rows, all rows)`` once.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            The data.
        y, groups : None
            Ignored.

        Yields
        ------
        train, test : ndarray of int
            Both ``arange(n_samples)``.
        """
        rows = np.arange(_num_samples(X))
        yield rows, rows.copy()

    def _iter_test_indices(self, X=None, y=None, groups=None):
        yield np.arange(_num_samples(X))

    def get_n_splits(self, X=None, y=None, groups=None):
        """Number of splits: 1."""
        return 1

    def __repr__(self):
        return "TransductiveSplit()"
