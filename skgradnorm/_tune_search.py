"""The candidates of :func:`skgradnorm.tuning.tune`: every setting fitted, refitted with
another seed when the criterion needs it, and scored without labels.

GradNorm's selector uses the retrieval temperature tau only in ``transform`` (the text
counterparts), never in ``fit`` (the centres, the gradient scores, the kept nouns). So the
settings of a grid that differ only in tau share one selector fit: the first is fitted as
usual, the others reuse its fitted selector (a shallow copy given their tau, wrapped in
scikit-learn's :class:`~sklearn.frozen.FrozenEstimator` for the clusterer's ``fit``) and
fit only the final k-means. The estimators that come out are those a plain fit with the
same parameters gives, label for label (``tests/test_label_free.py`` checks it); with the
default grid, 3 values of tau, this saves two of every three selector fits.
"""

from __future__ import annotations

import copy
import time
from dataclasses import dataclass, field

import numpy as np
from joblib import Parallel, delayed
from sklearn.base import clone
from sklearn.frozen import FrozenEstimator
from sklearn.metrics import adjusted_rand_score
from sklearn.utils import check_random_state

from ._cluster._label_free import criterion_value, refit_params
from ._clusterer import LanguageAssistedClusterer
from ._selector_auto import auto_retrieval_temperature
from ._utils._clone import SHARED_ARRAY_BYTES

__all__ = [
    "Candidate",
    "PrefittedSelector",
    "fit_candidates",
    "refit_seed",
    "score_candidates",
]

#: The one selector parameter that its ``fit`` does not read.
TRANSFORM_ONLY = "selector__retrieval_temperature"


@dataclass
class Candidate:
    """A fitted setting: its parameters, the fitted estimator, the labels of its refit
    with another seed (None when not refitted) and the seconds both fits took."""

    params: dict
    estimator: object
    other_labels: np.ndarray | None = None
    seconds: float = 0.0
    scores: dict = field(default_factory=dict)


def refit_seed(random_state=0) -> int:
    """The seed of the refit of :func:`skgradnorm.metrics.label_free_score`'s stability
    (its first refit seed for the same ``random_state``)."""
    rng = check_random_state(random_state)
    return int(rng.randint(np.iinfo(np.int32).max, size=1)[0])


def _with_seed(estimator, seed):
    """``estimator`` set as :func:`skgradnorm.metrics.label_free_score`'s refits are: every
    ``random_state`` parameter, nested ones too, set to ``seed``, and fewer restarts of its
    final k-means (:func:`~skgradnorm._cluster._label_free.refit_params`)."""
    return estimator.set_params(**refit_params(estimator, seed))


def _share_key(params):
    """Settings with the same key share a selector fit (None: never shared)."""
    if TRANSFORM_ONLY not in params or "selector" in params:
        return None
    return tuple(sorted((k, repr(v)) for k, v in params.items() if k != TRANSFORM_ONLY))


def _can_share(estimator) -> bool:
    """A :class:`LanguageAssistedClusterer` that passes no parameter to its selector (a
    frozen selector refuses them)."""
    params = estimator.get_params(deep=True)
    return (
        isinstance(estimator, LanguageAssistedClusterer)
        and TRANSFORM_ONLY in params
        and params.get("encoder") is None
        and params.get("vocabulary") is None
    )


class PrefittedSelector(FrozenEstimator):
    """scikit-learn's ``FrozenEstimator`` (``fit`` does nothing, ``clone`` returns it,
    everything else goes to the fitted selector) with the signatures the clusterer's
    selector set-up calls: ``fit(X)`` without ``y``, and ``set_params`` returning the
    estimator (scikit-learn 1.9's returns None)."""

    def fit(self, X, y=None, *args, **kwargs):
        """Do nothing: the selector is already fitted."""
        return self

    def set_params(self, **params):
        """Only ``estimator`` can be set, as for ``FrozenEstimator``."""
        super().set_params(**params)
        return self


def _fit_reusing(est, params, X, fitted_selector):
    """``est.fit(X)`` (``est`` set with ``params``), reusing ``fitted_selector`` (fitted with
    the same parameters but tau) instead of fitting the selector again."""
    selector_param = est.selector
    selector = copy.copy(fitted_selector)  # shares the fitted arrays, which nothing mutates
    selector.set_params(retrieval_temperature=params[TRANSFORM_ONLY])
    if hasattr(selector, "retrieval_temperature_"):  # the fitted value transform uses
        selector.retrieval_temperature_ = auto_retrieval_temperature(
            selector.strategy, selector.retrieval_temperature
        )
    est.set_params(selector=PrefittedSelector(selector)).fit(X)
    est.set_params(selector=selector_param)
    est.selector_ = selector
    return est


# Array parameters of SHARED_ARRAY_BYTES or more (the noun bank) are shared by the
# candidates' clones instead of deep-copied for each, for any nested estimator (the
# package's selector does it in its own clone too): a copy of a 26,685 x 384 bank took
# 24 ms, a sixth of ``tune`` on a real world of 244 images. No fit writes to its
# parameters, so every estimator is still the one a plain clone gives.


def _lean_template(estimator):
    """``(template, arrays)``: a clone of ``estimator`` with its large array parameters
    (nested ones too) set to None, and those arrays; ``_new(template, arrays, params)``
    makes the candidates from them."""
    template = clone(estimator)
    arrays = {
        k: v
        for k, v in template.get_params(deep=True).items()
        if isinstance(v, np.ndarray) and v.nbytes >= SHARED_ARRAY_BYTES
    }
    return template.set_params(**dict.fromkeys(arrays)), arrays


def _new(template, arrays, params):
    """A clone of the template holding the shared ``arrays``, set with ``params``."""
    return clone(template).set_params(**arrays).set_params(**params)


def _fit_group(template, arrays, group, X, seed):
    """Fit the settings of one group (and their refits with ``seed`` unless None): the
    first of each plainly, the others reusing its fitted selector. The estimators are
    made by :func:`_new` from ``template`` and ``arrays`` (:func:`_lean_template`)."""
    out = []
    first = other_first = None
    for params in group:
        t0 = time.perf_counter()
        shared = first is not None and _share_key(params) is not None
        est = _new(template, arrays, params)
        est = _fit_reusing(est, params, X, first.selector_) if shared else est.fit(X)
        if first is None:
            first = est
        other = None
        if seed is not None:
            plain = _with_seed(_new(template, arrays, params), seed)
            if shared:
                other_est = _fit_reusing(plain, params, X, other_first.selector_)
            else:
                other_est = plain.fit(X)
            if other_first is None:
                other_first = other_est
            other = np.asarray(other_est.labels_)
        out.append(Candidate(dict(params), est, other, time.perf_counter() - t0))
    return out


def fit_candidates(estimator, X, settings, *, refit_random_state=None, n_jobs=None):
    """Fit every setting of ``settings`` (a list of parameter dicts) on ``X``.

    ``refit_random_state``: when not None, every setting is also refitted with the seed
    :func:`refit_seed` draws from it (for the stability criterion). Settings that differ
    only in the retrieval temperature share their selector fits (see the module
    docstring); the groups run in parallel with ``n_jobs`` (joblib). Returns the
    :class:`Candidate` list in the order of ``settings``.
    """
    seed = None if refit_random_state is None else refit_seed(refit_random_state)
    share = _can_share(estimator)
    groups: dict = {}
    for i, params in enumerate(settings):
        key = _share_key(params) if share else None
        groups.setdefault(("alone", i) if key is None else key, []).append(i)
    order = list(groups.values())
    template, arrays = _lean_template(estimator)
    fitted = Parallel(n_jobs=n_jobs)(
        delayed(_fit_group)(template, arrays, [settings[i] for i in idx], X, seed) for idx in order
    )
    out = [None] * len(settings)
    for idx, cands in zip(order, fitted, strict=True):
        for i, cand in zip(idx, cands, strict=True):
            out[i] = cand
    return out


def score_candidates(candidates, X, criterion, *, random_state=0):
    """The label-free ``criterion`` of every candidate (stored in ``candidate.scores``);
    stability from the refits already made, the others as
    :func:`skgradnorm.metrics.label_free_score` computes them."""
    for cand in candidates:
        if criterion == "stability" and cand.other_labels is not None:
            value = float(adjusted_rand_score(cand.estimator.labels_, cand.other_labels))
        else:
            value = criterion_value(criterion, cand.estimator, X, random_state=random_state)
        cand.scores[criterion] = value
    return [c.scores[criterion] for c in candidates]
