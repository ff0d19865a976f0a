"""Choose a clusterer's settings without labels, and draw what was chosen.

- :func:`tune`: a grid search over the selector's temperature T, retrieval temperature
  tau and number of centres C, ranked by a label-free criterion
  (:func:`skgradnorm.metrics.label_free_score`), every setting fitted and scored on all the
  images (:class:`~skgradnorm.model_selection.TransductiveSplit`);
- :func:`default_grid`: the grid :func:`tune` uses by default;
- :func:`search_n_clusters`: the K search behind ``n_clusters="auto"``.
"""

from __future__ import annotations

import functools

import numpy as np
from sklearn.base import clone
from sklearn.model_selection import GridSearchCV, ParameterGrid
from sklearn.utils import Bunch

from ._cluster._auto_k import TIE_TOLERANCE, search_n_clusters
from ._cluster._label_free import DEFAULT_CRITERION
from .metrics import label_free_score
from .model_selection import TransductiveSplit

__all__ = ["default_grid", "search_n_clusters", "tune"]

#: The default (T, tau) values of :func:`default_grid`: around the paper's ranges
#: (T 0.018 to 0.08, tau 0.006 to 0.01), a little wider on both sides.
TEMPERATURES = (0.02, 0.05, 0.1)
RETRIEVAL_TEMPERATURES = (0.005, 0.01, 0.03)
#: Centres per cluster of :func:`default_grid` (C much larger than K, as in the paper).
CENTERS_PER_CLUSTER = (2, 4)


def default_grid(estimator, X=None):
    """The default grid of :func:`tune` for a :class:`~skgradnorm.LanguageAssistedClusterer`.

    T in (0.02, 0.05, 0.1), tau in (0.005, 0.01, 0.03), and C in (2K, 4K) for an int
    ``n_clusters`` K (``"auto"`` otherwise, capped at the number of images): 18 settings,
    the grid measured in ``benchmarks/bench_label_free.py``.
    """
    params = estimator.get_params(deep=True)
    if "selector__temperature" not in params:
        raise ValueError(
            f"tune's default grid is for a LanguageAssistedClusterer whose selector is a "
            f"GradNormNounSelector; {type(estimator).__name__} has none: pass grid= "
            "(a dict of parameter name -> values, as for GridSearchCV)."
        )
    k = params.get("n_clusters")
    if isinstance(k, (int, np.integer)):
        n = np.inf if X is None else len(X)
        centers = sorted({int(min(m * k, n)) for m in CENTERS_PER_CLUSTER})
    else:
        centers = ["auto"]
    return {
        "selector__temperature": list(TEMPERATURES),
        "selector__retrieval_temperature": list(RETRIEVAL_TEMPERATURES),
        "selector__n_centers": centers,
    }


def _short(name: str) -> str:
    return {
        "selector__temperature": "T",
        "selector__retrieval_temperature": "tau",
        "selector__n_centers": "C",
        "n_clusters": "K",
    }.get(name, name.split("__")[-1])


def tune(estimator, X, grid=None, *, criterion=DEFAULT_CRITERION, n_jobs=None, verbose=0):
    """Pick a clusterer's settings by a label-free criterion; report every setting's value.

    Parameters
    ----------
    estimator : clusterer
        Typically ``LanguageAssistedClusterer(n_clusters=K, selector=GradNormNounSelector(
        bank, ...))``; cloned, never modified.
    X : array-like of shape (n_samples, n_features)
        Image embeddings.
    grid : dict or list of dict, default=None
        Parameter name -> values, as for :class:`~sklearn.model_selection.GridSearchCV`;
        None uses :func:`default_grid`.
    criterion : str, default="stability"
        See :func:`skgradnorm.metrics.label_free_score`.
    n_jobs : int or None, default=None
        Settings fitted in parallel (joblib), as in ``GridSearchCV``.
    verbose : int, default=0
        Passed to ``GridSearchCV``.

    Returns
    -------
    result : :class:`~sklearn.utils.Bunch`
        - ``best_params_``: the chosen setting;
        - ``best_estimator_``: the estimator refitted with it;
        - ``best_index_``: its row in ``table_``;
        - ``table_``: list of dicts, one per setting, ``{"params": ..., "label": ...,
          "criterion": float}``, in grid order;
        - ``n_clusters_``: the K used; with ``n_clusters="auto"`` it is chosen first,
          with the estimator's own settings, and kept for every setting (the criterion
          compares settings at one K);
        - ``auto_k_estimator_``: that first fit (None for an int ``n_clusters``);
        - ``criterion``: the criterion's name;
        - ``reason``: one sentence saying what was chosen and why.

    See Also
    --------
    skgradnorm.metrics.label_free_score : the criterion.

    Examples
    --------
    >>> from skgradnorm import GradNormNounSelector, LanguageAssistedClusterer
    >>> from skgradnorm.datasets import make_planted_world
    >>> from skgradnorm.tuning import tune
    >>> w = make_planted_world(n_samples=150, n_classes=3, n_random_nouns=50, random_state=0)
    >>> model = LanguageAssistedClusterer(3, selector=GradNormNounSelector(
    ...     w.noun_embeddings, random_state=0), n_init=2, random_state=0)
    >>> result = tune(model, w.data, grid={"selector__temperature": [0.02, 0.05]})
    >>> len(result.table_), sorted(result.best_params_)
    (2, ['selector__temperature'])
    """
    estimator = clone(estimator)
    auto_k = None
    if estimator.get_params().get("n_clusters") == "auto":
        # Settings are compared at one K: choose it first, with the given settings.
        auto_k = clone(estimator).fit(X)
        estimator.set_params(n_clusters=int(auto_k.n_clusters_))
    if grid is None:
        grid = default_grid(estimator, X)
    settings = list(ParameterGrid(grid))
    if not settings:
        raise ValueError("grid is empty; pass at least one value per parameter.")
    scoring = functools.partial(label_free_score, criterion=criterion)
    search = GridSearchCV(
        estimator,
        grid,
        scoring=scoring,
        cv=TransductiveSplit(),
        n_jobs=n_jobs,
        verbose=verbose,
        error_score="raise",
    ).fit(X)
    res = search.cv_results_
    table = [
        {
            "params": dict(p),
            "label": ", ".join(f"{_short(k)}={v}" for k, v in sorted(p.items())),
            "criterion": float(s),
        }
        for p, s in zip(res["params"], res["mean_test_score"], strict=True)
    ]
    best = int(search.best_index_)
    reason = (
        f"Chose {table[best]['label']}: the highest {criterion} criterion "
        f"({table[best]['criterion']:.3f}) of {len(table)} settings, each fitted and scored "
        "on all the images without labels."
    )
    if auto_k is not None:
        reason += (
            f" K={auto_k.n_clusters_} was chosen first (n_clusters='auto': the largest K "
            f"whose stability is within {TIE_TOLERANCE} of the best, "
            f"{np.max(auto_k.n_clusters_scores_):.3f})."
        )
    return Bunch(
        best_params_=search.best_params_,
        best_estimator_=search.best_estimator_,
        best_index_=best,
        table_=table,
        n_clusters_=int(search.best_estimator_.n_clusters_),
        auto_k_estimator_=auto_k,
        criterion=criterion,
        reason=reason,
    )
