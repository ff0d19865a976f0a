"""Label-free criteria of a clustering: scores that need no ground-truth classes.

Each criterion takes a representation and cluster labels (or an estimator to refit) and
returns a number where higher is better, so that it can rank the settings of a clusterer
(temperature, retrieval temperature, number of centres, number of clusters) without labels:

- ``"generalization"``: how well a linear classifier trained on the image embeddings
  predicts the found labels on held-out images (cross-validated accuracy), the criterion of
  TURTLE [1]_: a partition that a linear model learns from part of the images and
  predicts on the rest is a partition the embedding space supports;
- ``"silhouette"``: the mean cosine silhouette [2]_ of the clustered representation
  (``[u ; t]`` for a :class:`LanguageAssistedClusterer`);
- ``"silhouette_image"``: the same on the image embeddings ``u`` alone;
- ``"stability"``: the mean adjusted Rand index between the labels and those of refits of
  the same estimator with other seeds [3]_ (and at most :data:`REFIT_N_INIT` k-means
  restarts).

The package's default, ``"stability"``, was chosen by measurement over many planted
worlds (``benchmarks/bench_label_free.py``; figures in ``benchmarks/RESULTS.md``). Math
only; the scorer for ``GridSearchCV`` is in :mod:`skgradnorm.metrics`.

References
----------
.. [1] A. Gadetsky, Y. Jiang, M. Brbic, "Let Go of Your Labels with Unsupervised Transfer",
   ICML 2024, arXiv:2406.07236.
.. [2] P. J. Rousseeuw, "Silhouettes: a graphical aid to the interpretation and validation
   of cluster analysis", J. Comput. Appl. Math. 20, 1987.
.. [3] T. Lange, V. Roth, M. L. Braun, J. M. Buhmann, "Stability-based validation of
   clustering solutions", Neural Computation 16, 2004.
"""

from __future__ import annotations

import numbers

import numpy as np
from sklearn.base import clone, is_clusterer
from sklearn.exceptions import NotFittedError
from sklearn.linear_model import RidgeClassifier
from sklearn.metrics import adjusted_rand_score, silhouette_score
from sklearn.model_selection import KFold, cross_val_score
from sklearn.utils import check_random_state
from sklearn.utils.validation import check_is_fitted

from .._utils._validation import l2_normalize_rows

#: The criteria, in the order the benchmark reports them.
CRITERIA = ("generalization", "silhouette", "silhouette_image", "stability")

#: The default criterion (see ``label_free_score`` for the measurement behind it).
DEFAULT_CRITERION = "stability"

#: Images the silhouette is computed on at most (it is quadratic in their number).
SILHOUETTE_SAMPLE_SIZE = 4000

#: Restarts of the final k-means of a stability refit, at most (the estimator's own fit
#: keeps its ``n_init``, 20 for the clusterer). Measured on the calibrated worlds
#: (``benchmarks/bench_search_shortcuts.py --part refit``; ``benchmarks/RESULTS.md``,
#: "Faster K search and label-free grid"): with 5 the stabilities of ``tune``'s grid moved
#: by about a tenth of what another refit seed moves them, the ACC of ``tune``'s pick did
#: not change beyond that noise, and a grid costs about 1.3 instead of 2 fits per setting.
REFIT_N_INIT = 5


def _n_labels(labels) -> int:
    return int(np.unique(labels).size)


def generalization_score(U, labels, *, n_splits=3, random_state=0) -> float:
    """Cross-validated accuracy of a linear classifier predicting ``labels`` from ``U``.

    The classifier is scikit-learn's ``RidgeClassifier`` (least squares on one-hot
    targets, one closed-form solve per fold: fast and deterministic, where a logistic
    regression would need an iterative solver per fold and setting). ``n_splits`` shuffled
    folds drawn with ``random_state``; a partition with a single cluster scores 0 (it
    carries no information).

    Examples
    --------
    >>> import numpy as np
    >>> rng = np.random.RandomState(0)
    >>> U = np.r_[rng.normal(3, 1, (30, 2)), rng.normal(-3, 1, (30, 2))]
    >>> generalization_score(U, np.r_[np.zeros(30), np.ones(30)])
    1.0
    """
    labels = np.asarray(labels)
    if _n_labels(labels) < 2:
        return 0.0
    folds = KFold(n_splits=n_splits, shuffle=True, random_state=random_state)
    scores = cross_val_score(RidgeClassifier(alpha=1.0), U, labels, cv=folds)
    return float(np.mean(scores))


def cosine_silhouette(Z, labels, *, sample_size=SILHOUETTE_SAMPLE_SIZE, random_state=0) -> float:
    """Mean cosine silhouette of ``labels`` on ``Z`` (-1 for a single cluster).

    Over at most ``sample_size`` rows drawn with ``random_state`` (scikit-learn's
    ``silhouette_score``; its cost is quadratic in the number of rows).
    """
    labels = np.asarray(labels)
    if not 2 <= _n_labels(labels) <= labels.size - 1:
        return -1.0
    size = None if labels.size <= sample_size else sample_size
    return float(
        silhouette_score(Z, labels, metric="cosine", sample_size=size, random_state=random_state)
    )


def refit_params(estimator, seed) -> dict:
    """The parameters a stability refit of ``estimator`` changes: every ``random_state``
    (nested ones too) set to ``seed``, and the estimator's own ``n_init`` (the restarts of
    its final k-means, not a nested one) lowered to :data:`REFIT_N_INIT` when above."""
    params = estimator.get_params()
    updates = {k: seed for k in params if k == "random_state" or k.endswith("__random_state")}
    n_init = params.get("n_init")
    if isinstance(n_init, numbers.Integral) and not isinstance(n_init, bool):
        if n_init > REFIT_N_INIT:
            updates["n_init"] = REFIT_N_INIT
    return updates


def refit_labels(estimator, X, seeds) -> list:
    """Labels of clones of ``estimator`` refitted on ``X`` with each ``random_state`` (and
    at most :data:`REFIT_N_INIT` restarts, see :func:`refit_params`)."""
    out = []
    for seed in seeds:
        est = clone(estimator)
        est.set_params(**refit_params(est, seed))
        out.append(np.asarray(est.fit(X).labels_))
    return out


def stability_score(labels, other_labels) -> float:
    """Mean adjusted Rand index between ``labels`` and each array of ``other_labels``."""
    return float(np.mean([adjusted_rand_score(labels, o) for o in other_labels]))


def check_fitted_clusterer(estimator) -> None:
    """One-line errors for what the label-free scorer cannot score."""
    if not is_clusterer(estimator) and not hasattr(estimator, "labels_"):
        raise TypeError(
            f"label_free_score needs a clustering estimator (one with fit(X) and labels_, "
            f"e.g. LanguageAssistedClusterer or SphericalKMeans); got "
            f"{type(estimator).__name__}. Score classifiers with a labelled scorer instead."
        )
    try:
        check_is_fitted(estimator, "labels_")
    except NotFittedError:
        raise NotFittedError(
            f"This {type(estimator).__name__} is not fitted; call fit(X) before "
            "label_free_score(estimator, X), or pass the scorer to GridSearchCV, which fits."
        ) from None


def representations(estimator, X):
    """``(u, z)``: the L2-normalised images and the representation ``estimator`` clusters.

    ``z`` is the selector's ``[u ; t]`` for a :class:`LanguageAssistedClusterer` and ``u``
    for any other clusterer (and for ``selector="passthrough"``, the images alone).
    """
    X = np.asarray(X)
    if X.ndim != 2 or X.dtype.kind != "f":
        raise ValueError(
            "label_free_score needs the image embeddings as a 2-D float array; embed images "
            "first (CLIPEncoder.transform) and pass the embeddings."
        )
    u = l2_normalize_rows(X, name="X")
    selector = getattr(estimator, "selector_", None)
    if selector is None or isinstance(selector, str):
        return u, u
    z = np.asarray(selector.transform(X))
    return u, l2_normalize_rows(z, name="the selector's transform output")


def cluster_labels(estimator, X):
    """The labels ``estimator`` gives ``X``: ``predict(X)``, else ``labels_`` (same rows)."""
    if hasattr(estimator, "predict"):
        return np.asarray(estimator.predict(X))
    labels = np.asarray(estimator.labels_)
    if labels.shape[0] != X.shape[0]:
        raise ValueError(
            f"X has {X.shape[0]} rows but the estimator was fitted on {labels.shape[0]} "
            "and cannot predict; score it on the rows it was fitted on "
            "(cv=TransductiveSplit())."
        )
    return labels


def criterion_value(criterion, estimator, X, *, n_refits=1, random_state=0) -> float:
    """The value of one label-free ``criterion`` for a fitted clustering ``estimator``."""
    check_fitted_clusterer(estimator)
    X = np.asarray(X)
    labels = cluster_labels(estimator, X)
    if criterion == "stability":
        rng = check_random_state(random_state)
        seeds = [int(s) for s in rng.randint(np.iinfo(np.int32).max, size=n_refits)]
        return stability_score(labels, refit_labels(estimator, X, seeds))
    u, z = representations(estimator, X)
    if criterion == "generalization":
        return generalization_score(u, labels, random_state=random_state)
    if criterion == "silhouette":
        return cosine_silhouette(z, labels, random_state=random_state)
    if criterion == "silhouette_image":
        return cosine_silhouette(u, labels, random_state=random_state)
    raise ValueError(f"criterion must be one of {CRITERIA}; got {criterion!r}.")
