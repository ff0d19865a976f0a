"""Choose a clusterer's settings without labels, and draw what was chosen.

- :func:`tune`: a grid search over the selector's temperature T, retrieval temperature
  tau and number of centres C, ranked by a label-free criterion
  (:func:`skgradnorm.metrics.label_free_score`), every setting fitted and scored on all the
  images (:class:`~skgradnorm.model_selection.TransductiveSplit`);
- :func:`default_grid`: the grid :func:`tune` uses by default;
- :func:`search_n_clusters`: the K search behind ``n_clusters="auto"``.
"""

from __future__ import annotations

import warnings
from numbers import Integral, Real

import numpy as np
import torch
from sklearn.base import clone
from sklearn.model_selection import ParameterGrid
from sklearn.utils import Bunch
from sklearn.utils._param_validation import HasMethods, Interval, StrOptions, validate_params
from sklearn.utils.validation import check_array

from ._cluster._auto_k import (
    DEFAULT_K_CRITERION,
    K_CRITERIA,
    check_n_clusters_range,
    search_k,
)
from ._cluster._label_free import CRITERIA, DEFAULT_CRITERION, criterion_value
from ._clusterer import IMAGE_ONLY, LanguageAssistedClusterer
from ._tune_search import fit_candidates, score_candidates
from ._utils._validation import l2_normalize_rows
from .exceptions import LanguageDoesNotHelpWarning

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


def _settings(estimator, X, grid, image_only):
    """The settings to try (list of parameter dicts) and which of them is image-only."""
    if grid is None:
        grid = default_grid(estimator, X)
    settings = list(ParameterGrid(grid))
    if not settings:
        raise ValueError("grid is empty; pass at least one value per parameter.")
    if (
        image_only
        and isinstance(estimator, LanguageAssistedClusterer)
        and not any("selector" in p for p in settings)
        and not isinstance(estimator.selector, str)
    ):
        settings.append({"selector": IMAGE_ONLY})
    return settings


def _is_image_only(params) -> bool:
    return isinstance(params.get("selector"), str) and params["selector"] == IMAGE_ONLY


def _label(params) -> str:
    if _is_image_only(params):
        return "image only"
    return ", ".join(f"{_short(k)}={v}" for k, v in sorted(params.items()))


#: The relative silhouette gain the best language setting must reach over the images alone
#: to be used (``tune``'s ``min_language_gain``). Chosen on the three benchmark families
#: (``benchmarks/bench_label_free.py --parts language``; ``benchmarks/RESULTS.md``): any
#: value from 0.2 to 0.35 makes the same choices there.
MIN_LANGUAGE_GAIN = 0.25


def relative_gain(value, baseline) -> float:
    """``(value - baseline) / |baseline|`` (the denominator floored at 1e-6)."""
    return float((value - baseline) / max(abs(baseline), 1e-6))


def _best_language_row(table):
    """The row of the best language setting by the criterion (None without one)."""
    language = [i for i, row in enumerate(table) if not row["image_only"]]
    if not language:
        return None
    return max(language, key=lambda i: table[i]["criterion"])


def _image_row(table):
    image = [i for i, row in enumerate(table) if row["image_only"]]
    return image[0] if image else None


def _choose(table, gain=None, min_gain=MIN_LANGUAGE_GAIN):
    """The chosen row: the best language setting by the criterion, unless the images alone
    are a candidate and language's ``gain`` is below ``min_gain``."""
    best_language, image = _best_language_row(table), _image_row(table)
    if best_language is None:
        return image
    if image is None or gain is None:
        return best_language
    return best_language if gain >= min_gain else image


def _language_gain(candidates, table, X):
    """The relative silhouette gain of the best language setting over the images alone,
    with both silhouettes (cosine, each on the representation it clusters: ``[u ; t]``
    and ``u``); None without both candidates."""
    best_language, image = _best_language_row(table), _image_row(table)
    if best_language is None or image is None:
        return None, None
    s_language, s_image = (
        criterion_value("silhouette", candidates[i].estimator, X, random_state=0)
        for i in (best_language, image)
    )
    return relative_gain(s_language, s_image), (s_language, s_image)


def _best_language(candidates, table):
    """The fitted estimator of the best language setting (None without one)."""
    i = _best_language_row(table)
    return None if i is None else candidates[i].estimator


def _reason(table, best, criterion, gain, min_gain=MIN_LANGUAGE_GAIN, silhouettes=None):
    row = table[best]
    top_row = _best_language_row(table)
    top = row if top_row is None else table[top_row]
    n_language = sum(not r["image_only"] for r in table)
    text = (
        f"Chose {row['label']}. "
        f"Best language setting: {top['label']}, the highest {criterion} criterion "
        f"({top['criterion']:.3f}) of {n_language}, each fitted and scored on all the "
        "images without labels."
    )
    if gain is None:
        return text
    sil = ""
    if silhouettes is not None:
        s_language, s_image = silhouettes
        sil = f" (cosine silhouette {s_language:.3f} on [u ; t] against {s_image:.3f} on u)"
    separated = f"Its clusters' silhouette is {gain:+.0%} relative to the images alone's{sil}"
    if gain < min_gain:
        return text + (
            f" {separated}, less than the {min_gain:.0%} asked (min_language_gain): the "
            "nouns add too little to these images (their image and text spaces may barely "
            "agree), so no language is used."
        )
    return text + f" {separated}, at least the {min_gain:.0%} asked, so language is used."


@validate_params(
    {
        "estimator": [HasMethods(["fit", "get_params"])],
        "X": ["array-like"],
        "grid": [dict, list, None],
        "criterion": [StrOptions(set(CRITERIA))],
        "image_only": ["boolean"],
        "min_language_gain": [Interval(Real, None, None, closed="neither")],
        "n_jobs": [Integral, None],
        "verbose": ["verbose"],
    },
    prefer_skip_nested_validation=False,
)
def tune(
    estimator,
    X,
    grid=None,
    *,
    criterion=DEFAULT_CRITERION,
    image_only=True,
    min_language_gain=MIN_LANGUAGE_GAIN,
    n_jobs=None,
    verbose=0,
):
    """Pick a clusterer's settings by a label-free criterion; report every setting's value.

    Every setting of the grid is fitted on all the images and scored without labels; for
    a :class:`~skgradnorm.LanguageAssistedClusterer`, clustering the images alone
    (``selector="passthrough"``) is a candidate too: the best language setting is used
    only when its clusters are clearly better separated than the images alone's (see
    ``min_language_gain`` and the Notes). Settings that differ only in the retrieval
    temperature share one selector fit (the selector uses it only in ``transform``): the
    estimators are those a plain fit gives, at a fraction of the cost.

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
    image_only : bool, default=True
        Add the image-only candidate (``selector="passthrough"``) to the settings of a
        :class:`~skgradnorm.LanguageAssistedClusterer` (unless the grid sets ``selector``).
    min_language_gain : float, default=0.25
        The relative silhouette gain (Notes) the best language setting must reach over the
        images alone to be used.
    n_jobs : int or None, default=None
        Settings fitted in parallel (joblib; the settings that share a selector fit run
        together).
    verbose : int, default=0
        A positive value prints each setting's criterion and time.

    Returns
    -------
    result : :class:`~sklearn.utils.Bunch`
        - ``best_params_``: the chosen setting (``{"selector": "passthrough"}`` when the
          images alone won);
        - ``best_estimator_``: the estimator fitted with it;
        - ``best_index_``: its row in ``table_``;
        - ``table_``: list of dicts, one per setting, ``{"params": ..., "label": ...,
          "criterion": float, "image_only": bool, "seconds": float}``, in grid order, the
          image-only row last;
        - ``language_gain_``: the relative silhouette gain of the best language setting
          over the images alone (Notes; below ``min_language_gain``: the images alone
          were chosen, with a :class:`~skgradnorm.exceptions.LanguageDoesNotHelpWarning`);
          None without an image-only candidate. ``best_estimator_.language_gain_`` holds
          the same number;
        - ``language_estimator_``: the best language setting's fitted estimator (the
          chosen one unless the images alone won; its selector still names the clusters);
        - ``n_clusters_``: the K used; with ``n_clusters="auto"`` it is chosen first,
          with the estimator's own settings, and kept for every setting (the criterion
          compares settings at one K);
        - ``n_clusters_confidence_``: with ``n_clusters="auto"``, the confidence of that
          choice (see :func:`search_n_clusters`); None otherwise;
        - ``auto_k_estimator_``: that first fit (None for an int ``n_clusters``);
        - ``criterion``: the criterion's name;
        - ``reason``: what was chosen and why, in words.

    See Also
    --------
    skgradnorm.metrics.label_free_score : the criterion.

    Notes
    -----
    **Language or the images alone.** With :math:`s_L` the mean cosine silhouette of the
    best language setting's clusters on the representation it clusters, :math:`[u ; t]`,
    and :math:`s_I` that of the images alone on :math:`u`, the language gain is

    .. math:: g = \\frac{s_L - s_I}{|s_I|},

    and language is used when :math:`g \\geq` ``min_language_gain``. The criterion that
    ranks the language settings (stability by default) does not decide this: on real
    photos whose text side knows nothing of the classes, language clusterings were as
    stable as the images' and less accurate, and the best of 18 noisy stability scores
    beats a single one by chance (the winner's curse). Adding text that agrees with the
    images separates their clusters much better (measured :math:`g` of 0.4 to 2.0 on the
    benchmark's synthetic worlds and 0.3 to 0.7 on two real category worlds); text that
    does not barely changes the silhouette (:math:`g \\leq 0.17` on three real worlds where
    language lost accuracy). Measured in ``benchmarks/bench_label_free.py --parts
    language`` on three world families (``benchmarks/RESULTS.md``).

    Examples
    --------
    >>> from skgradnorm import GradNormNounSelector, LanguageAssistedClusterer
    >>> from skgradnorm.datasets import make_planted_world
    >>> from skgradnorm.tuning import tune
    >>> w = make_planted_world(n_samples=150, n_classes=3, n_random_nouns=50, random_state=0)
    >>> model = LanguageAssistedClusterer(3, selector=GradNormNounSelector(
    ...     w.noun_embeddings, random_state=0), n_init=2, random_state=0)
    >>> result = tune(model, w.data, grid={"selector__temperature": [0.02, 0.05]})
    >>> [row["label"] for row in result.table_]
    ['T=0.02', 'T=0.05', 'image only']
    >>> result.language_gain_ is not None
    True
    """
    estimator = clone(estimator)
    auto_k = None
    if estimator.get_params().get("n_clusters") == "auto":
        # Settings are compared at one K: choose it first, with the given settings.
        auto_k = clone(estimator).fit(X)
        estimator.set_params(n_clusters=int(auto_k.n_clusters_))
    settings = _settings(estimator, X, grid, image_only)
    candidates = fit_candidates(
        estimator,
        X,
        settings,
        refit_random_state=0 if criterion == "stability" else None,
        n_jobs=n_jobs,
    )
    values = score_candidates(candidates, X, criterion)
    table = [
        {
            "params": dict(c.params),
            "label": _label(c.params),
            "criterion": float(v),
            "image_only": _is_image_only(c.params),
            "seconds": c.seconds,
        }
        for c, v in zip(candidates, values, strict=True)
    ]
    if verbose:
        for row in table:
            print(
                f"tune: {row['label']}: {criterion}={row['criterion']:.4f} ({row['seconds']:.1f} s)"
            )
    gain, silhouettes = _language_gain(candidates, table, X)
    best = _choose(table, gain, min_language_gain)
    reason = _reason(table, best, criterion, gain, min_language_gain, silhouettes)
    if gain is not None and gain < min_language_gain:
        # stacklevel 3: past validate_params's wrapper, to the caller's line
        warnings.warn(reason, LanguageDoesNotHelpWarning, stacklevel=3)
    if gain is not None:  # the fitted estimator says it too
        candidates[best].estimator.language_gain_ = gain
    confidence = None
    if auto_k is not None:
        confidence = float(auto_k.n_clusters_confidence_)
        reason += (
            f" K={auto_k.n_clusters_} was chosen first (n_clusters='auto', confidence "
            f"{confidence:.2f})."
        )
    return Bunch(
        best_params_=dict(candidates[best].params),
        best_estimator_=candidates[best].estimator,
        best_index_=best,
        table_=table,
        language_gain_=gain,
        language_estimator_=_best_language(candidates, table),
        n_clusters_=int(candidates[best].estimator.n_clusters_),
        n_clusters_confidence_=confidence,
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
    criterion=DEFAULT_K_CRITERION,
    n_init=10,
    max_iter=300,
    tol=1e-4,
    random_state=None,
    device=None,
):
    """Choose the number of clusters K of spherical k-means without labels.

    A label-free ``criterion`` scores spherical k-means partitions of the L2-normalised
    rows of ``X`` for K values of ``n_clusters_range``; the K its rule picks is fitted
    with ``n_init`` restarts on all the rows. This is what ``n_clusters="auto"`` runs in
    :class:`~skgradnorm.SphericalKMeans` (on ``X``) and
    :class:`~skgradnorm.LanguageAssistedClusterer` (on the images ``u``, then clustering
    ``[u ; t]`` at the chosen K). The search costs a few fits with K given: the criterion
    is computed on at most 3,000 rows (its k-means fits with 2 restarts), on a geometric
    subset of the range first (about 14 of the default 49 values), then on every K around
    the best of those.

    Parameters
    ----------
    X : array-like of shape (n_samples, n_features)
        Samples with non-zero rows (only directions matter).
    n_clusters_range : sequence of int or None, default=None
        The K values to try, each >= 2 and < n_samples; None is
        ``range(2, min(50, n_samples // 10) + 1)``.
    criterion : str, default="bic"
        The label-free criterion (the user guide's "Without labels" compares them; the
        default was the most often exact on the benchmark's worlds, see there for how
        often that is): ``"stability"``: adjusted Rand index between two fits with
        different seeds (the largest K among exact ties wins); ``"silhouette"``: mean
        cosine silhouette;
        ``"prediction_strength"``: Tibshirani and Walther's prediction strength (the
        largest K of at least 0.8); ``"gap"``: the gap statistic (the smallest K within a
        standard error of the next); ``"eigengap"``: the gap between consecutive
        eigenvalues of the k-NN graph's normalised Laplacian; ``"bic"``: the Bayesian
        information criterion of a Gaussian mixture on the leading principal components.
    n_init, max_iter, tol, random_state, device
        As for :func:`~skgradnorm.spherical_kmeans`; ``n_init`` is the final fit's.

    Returns
    -------
    result : :class:`~sklearn.utils.Bunch`
        - ``n_clusters_``: the chosen K;
        - ``n_clusters_confidence_``: how sure the choice is, in [0, 1] (see the user
          guide's "Without labels" for how often a confident choice is right);
        - ``n_clusters_range_``: the K values scored (sorted);
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
    found = search_k(
        Z,
        ks,
        criterion=criterion,
        n_init=n_init,
        max_iter=max_iter,
        tol=tol,
        random_state=random_state,
        device=device,
    )
    centers, labels, objective, n_iter = found.fit
    return Bunch(
        n_clusters_=found.n_clusters,
        n_clusters_confidence_=found.confidence,
        n_clusters_range_=found.ks,
        scores_=found.scores,
        labels_=labels,
        cluster_centers_=centers,
        objective_=objective,
        n_iter_=n_iter,
        criterion=criterion,
    )
