"""The stability criterion's refit: other seeds and at most REFIT_N_INIT final k-means
restarts, the same in label_free_score (GridSearchCV's scorer) and in tune's candidates,
each checked against a plain refit written out here, on random worlds."""

import numpy as np
import pytest
from sklearn.base import clone
from sklearn.metrics import adjusted_rand_score
from sklearn.model_selection import ParameterGrid
from sklearn.utils import Bunch

from skgradnorm import GradNormNounSelector, LanguageAssistedClusterer, SphericalKMeans
from skgradnorm._cluster._label_free import REFIT_N_INIT, refit_params
from skgradnorm._tune_search import fit_candidates, refit_seed, score_candidates
from skgradnorm.metrics import label_free_score

N_INIT = 4 * REFIT_N_INIT  # the clusterer's default, 20: the refit has fewer restarts


def _plain_refit(fitted, X, seed, n_init=REFIT_N_INIT):
    """A clone with every random_state (nested too) set to ``seed`` and ``n_init``."""
    est = clone(fitted)
    names = [k for k in est.get_params() if k.split("__")[-1] == "random_state"]
    est.set_params(**dict.fromkeys(names, seed), n_init=n_init)
    return est.fit(X).labels_


@pytest.fixture(scope="module", params=[0, 1])
def world(request):
    """Rows without clusters (where restarts matter) and a random noun bank."""
    rng = np.random.RandomState(request.param)
    return Bunch(
        data=rng.normal(size=(200, 16)).astype(np.float32),
        noun_embeddings=rng.normal(size=(100, 16)).astype(np.float32),
    )


def test_refit_params_lowers_only_the_final_restarts():
    model = LanguageAssistedClusterer(
        3, selector=GradNormNounSelector(np.eye(4), n_init=9), n_init=N_INIT
    )
    updates = refit_params(model, 7)
    assert updates["n_init"] == REFIT_N_INIT
    assert updates["random_state"] == updates["selector__random_state"] == 7
    assert "selector__n_init" not in updates  # the selector's own restarts are kept
    assert "n_init" not in refit_params(SphericalKMeans(3, n_init=REFIT_N_INIT), 7)


def test_label_free_score_is_the_ari_with_a_plain_refit(world):
    X = world.data
    differs = []
    for model in (
        SphericalKMeans(4, n_init=N_INIT, random_state=1),
        LanguageAssistedClusterer(
            4,
            selector=GradNormNounSelector(world.noun_embeddings, n_centers=12, random_state=1),
            n_init=N_INIT,
            random_state=1,
        ),
    ):
        fitted = clone(model).fit(X)
        expected = adjusted_rand_score(fitted.labels_, _plain_refit(fitted, X, refit_seed(0)))
        assert label_free_score(fitted, X) == pytest.approx(expected)
        full = adjusted_rand_score(fitted.labels_, _plain_refit(fitted, X, refit_seed(0), N_INIT))
        differs.append(full != pytest.approx(expected))
    assert any(differs)  # the cap changed a score here, so the check above has teeth


def test_tune_candidates_score_as_label_free_score(world):
    """Shared selector fits and fewer refit restarts together: every candidate's stability
    is label_free_score of a plain fit of its setting."""
    X = world.data
    model = LanguageAssistedClusterer(
        4,
        selector=GradNormNounSelector(world.noun_embeddings, n_centers=12, random_state=0),
        n_init=N_INIT,
        random_state=0,
    )
    grid = {"selector__temperature": [0.05], "selector__retrieval_temperature": [0.005, 0.03]}
    settings = [*ParameterGrid(grid), {"selector": "passthrough"}]
    cands = fit_candidates(model, X, settings, refit_random_state=0)
    scores = score_candidates(cands, X, "stability")
    for params, score in zip(settings, scores, strict=True):
        plain = clone(model).set_params(**params).fit(X)
        expected = adjusted_rand_score(plain.labels_, _plain_refit(plain, X, refit_seed(0)))
        assert score == pytest.approx(expected)


def test_candidates_share_one_private_copy_of_the_bank(world, monkeypatch):
    """Large array parameters are copied once for all the candidates, never shared with the
    caller's estimator, and the candidates are those of plain clones."""
    from skgradnorm import _tune_search

    monkeypatch.setattr(_tune_search, "SHARED_ARRAY_BYTES", 0)  # the small bank counts too
    X, bank = world.data, world.noun_embeddings
    model = LanguageAssistedClusterer(
        4,
        selector=GradNormNounSelector(bank, n_centers=12, random_state=0),
        n_init=3,
        random_state=0,
    )
    settings = [{"selector__temperature": t} for t in (0.02, 0.05)] + [{"selector": "passthrough"}]
    cands = fit_candidates(model, X, settings, refit_random_state=0)
    banks = [c.estimator.selector.noun_embeddings for c in cands[:2]]
    assert banks[0] is banks[1] and not np.shares_memory(banks[0], bank)
    np.testing.assert_array_equal(banks[0], bank)
    for cand, params in zip(cands, settings, strict=True):
        plain = clone(model).set_params(**params).fit(X)
        assert repr(cand.estimator) == repr(plain)
        np.testing.assert_array_equal(cand.estimator.labels_, plain.labels_)
        refit = _plain_refit(plain, X, refit_seed(0), min(3, REFIT_N_INIT))
        np.testing.assert_array_equal(cand.other_labels, refit)
