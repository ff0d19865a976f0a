"""Clones share the noun bank (a large array parameter) instead of deep-copying it."""

import copy

import numpy as np
from sklearn.base import clone
from sklearn.model_selection import GridSearchCV

from skgradnorm import GradNormNounSelector, LanguageAssistedClusterer
from skgradnorm._utils._clone import SHARED_ARRAY_BYTES
from skgradnorm.datasets import make_planted_world
from skgradnorm.metrics import label_free_scorer
from skgradnorm.model_selection import TransductiveSplit


def _world_with_a_large_bank():
    w = make_planted_world(n_samples=120, n_classes=3, n_features=16, random_state=0)
    rng = np.random.RandomState(0)
    extra = rng.normal(size=(SHARED_ARRAY_BYTES // (16 * 8) + 1, 16))
    bank = np.vstack([w.noun_embeddings, extra])  # float64, just over the threshold
    assert bank.nbytes >= SHARED_ARRAY_BYTES
    return w, bank


def test_clones_share_a_large_bank_and_fit_as_copies_do():
    w, bank = _world_with_a_large_bank()
    saved = bank.copy()
    selector = GradNormNounSelector(bank, n_centers=6, random_state=0)
    model = LanguageAssistedClusterer(3, selector=selector, n_init=2, random_state=0)
    shared = clone(model)
    assert shared.selector.noun_embeddings is bank and shared.selector is not selector
    assert clone(selector).get_params() == {**selector.get_params(), "noun_embeddings": bank}
    # the reference: every parameter deep-copied, as scikit-learn's clone did
    copied = copy.deepcopy(model)
    assert copied.selector.noun_embeddings is not bank
    np.testing.assert_array_equal(shared.fit(w.data).labels_, copied.fit(w.data).labels_)
    np.testing.assert_array_equal(bank, saved)  # fitting never writes into the bank
    # the clone is independent otherwise: setting its parameters leaves the original alone
    shared.selector.set_params(temperature=0.5)
    assert selector.temperature != 0.5


def test_small_arrays_are_still_copied_and_grid_search_works():
    w = make_planted_world(n_samples=120, n_classes=3, n_features=16, random_state=0)
    selector = GradNormNounSelector(w.noun_embeddings, n_centers=6, random_state=0)
    assert clone(selector).noun_embeddings is not w.noun_embeddings
    _, bank = _world_with_a_large_bank()
    model = LanguageAssistedClusterer(
        3,
        selector=GradNormNounSelector(bank, n_centers=6, random_state=0),
        n_init=2,
        random_state=0,
    )
    search = GridSearchCV(
        model,
        {"selector__temperature": [0.02, 0.05]},
        scoring=label_free_scorer,
        cv=TransductiveSplit(),
    ).fit(w.data)
    assert search.best_estimator_.selector.noun_embeddings is bank
