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
from numbers import Integral, Real

import numpy as np
import torch
from sklearn.base import clone
from sklearn.model_selection import GridSearchCV, ParameterGrid
from sklearn.utils import Bunch
from sklearn.utils._param_validation import HasMethods, Interval, StrOptions, validate_params
from sklearn.utils.validation import check_array

from ._cluster._auto_k import K_CRITERIA, TIE_TOLERANCE, check_n_clusters_range, search_k
from ._cluster._label_free import CRITERIA, DEFAULT_CRITERION
from ._utils._validation import l2_normalize_rows
from .metrics import label_free_score
from .model_selection import TransductiveSplit

__all__ = ["default_grid", "search_n_clusters", "tune"]

#: The default (T, tau) values of :func:`default_grid`: around the paper's ranges
#: (T 0.018 to 0.08, tau 0.006 to 0.01), a little wider on both sides.
TEMPERATURES = (0.02, 0.05, 0.1)
RETRIEVAL_TEMPERATURES = (0.005, 0.01, 0.03)
#: Centres per cluster of :func:`default_grid` (C much larger than K, as in the paper).
CENTERS_PER_CLUSTER = (2, 4)


@validate_params(
    {"estimator": [HasMethods(["fit", "get_params"])], "X": ["array-like", None]},
    prefer_skip_nested_validation=True,
)
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


@validate_params(
    {
        "estimator": [HasMethods(["fit", "get_params"])],
        "X": ["array-like"],
        "grid": [dict, list, None],
        "criterion": [StrOptions(set(CRITERIA))],
        "n_jobs": [Integral, None],
        "verbose": ["verbose"],
    },
    prefer_skip_nested_validation=False,
)
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


@validate_params(
    {
        "X": ["array-like"],
        "n_clusters_range": ["array-like", None],
        "criterion": [StrOptions(set(K_CRITERIA))],
        "n_init": [Interval(Integral, 1, None, closed="left")],
        "max_iter": [Interval(Integral, 1, None, closed="left")],
        "tol": [Interval(Real, 0, None, closed="left")],
        "random_state": ["random_state"],
        "device": [None, str, torch.device],
    },
    prefer_skip_nested_validation=True,
)
def search_n_clusters(
    X,
    n_clusters_range=None,
    *,
    criterion="stability",
    n_init=10,
    max_iter=300,
    tol=1e-4,
    random_state=None,
    device=None,
):
    """Choose the number of clusters K of spherical k-means without labels.

    Spherical k-means is fitted for every K of ``n_clusters_range`` on the L2-normalised
    rows of ``X``, each partition is scored by a label-free ``criterion``, and the best K
    is kept with its fit. This is what ``n_clusters="auto"`` runs in
    :class:`~skgradnorm.SphericalKMeans` (on ``X``) and
    :class:`~skgradnorm.LanguageAssistedClusterer` (on ``[u ; t]``).

    Parameters
    ----------
    X : array-like of shape (n_samples, n_features)
        Samples with non-zero rows (only directions matter).
    n_clusters_range : sequence of int or None, default=None
        The K values to try, each >= 2 and < n_samples; None is
        ``range(2, min(50, n_samples // 10) + 1)``.
    criterion : {"stability", "silhouette"}, default="stability"
        ``"stability"``: adjusted Rand index between the fit and a second fit with another
        seed (the largest K among exact ties wins); ``"silhouette"``: the mean cosine
        silhouette of the fit.
    n_init, max_iter, tol, random_state, device
        As for :func:`~skgradnorm.spherical_kmeans`; every K gets the same seeds.

    Returns
    -------
    result : :class:`~sklearn.utils.Bunch`
        - ``n_clusters_``: the chosen K;
        - ``n_clusters_range_``: the K values tried (sorted, unique);
        - ``scores_``: the criterion for each of them (higher is better);
        - ``labels_``, ``cluster_centers_``, ``objective_``, ``n_iter_``: the k-means fit
          at the chosen K;
        - ``criterion``: the criterion's name.

    See Also
    --------
    skgradnorm.SphericalKMeans : ``n_clusters="auto"`` stores the same in its attributes.

    Examples
    --------
    >>> import numpy as np
    >>> from skgradnorm.tuning import search_n_clusters
    >>> rng = np.random.RandomState(0)
    >>> X = np.vstack([rng.normal(size=(30, 3)) * 0.1 + c for c in np.eye(3) * 5])
    >>> result = search_n_clusters(X, range(2, 6), n_init=2, random_state=0)
    >>> result.n_clusters_, result.scores_.shape
    (3, (4,))
    """
    X = check_array(X, dtype=[np.float64, np.float32], ensure_min_samples=2)
    ks = check_n_clusters_range(n_clusters_range, X.shape[0])
    Z = l2_normalize_rows(X, name="X")
    best_k, scores, fit = search_k(
        Z,
        ks,
        criterion=criterion,
        n_init=n_init,
        max_iter=max_iter,
        tol=tol,
        random_state=random_state,
        device=device,
    )
    centers, labels, objective, n_iter = fit
    return Bunch(
        n_clusters_=best_k,
        n_clusters_range_=ks,
        scores_=scores,
        labels_=labels,
        cluster_centers_=centers,
        objective_=objective,
        n_iter_=n_iter,
        criterion=criterion,
    )
