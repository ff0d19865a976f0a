"""LanguageAssistedClusterer: accuracy on planted worlds, sklearn composition, errors."""

import pickle

import numpy as np
import pytest
from sklearn.base import clone
from sklearn.exceptions import NotFittedError
from sklearn.metrics import adjusted_rand_score, make_scorer
from sklearn.model_selection import GridSearchCV, KFold
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import FunctionTransformer, Normalizer

from skgradnorm import GradNormNounSelector, LanguageAssistedClusterer, SphericalKMeans
from skgradnorm.datasets import make_planted_world
from skgradnorm.metrics import clustering_accuracy_score


def _laic(world, n_init=5, **selector_kwargs):
    params = dict(n_centers=15, random_state=0)
    params.update(selector_kwargs)
    return LanguageAssistedClusterer(
        n_clusters=len(world.target_names),
        selector=GradNormNounSelector(world.noun_embeddings, **params),
        n_init=n_init,
        random_state=0,
    )


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_language_assistance_beats_image_only_kmeans(seed):
    """Images of a planted world group by sub-class and style more than by class (class
    signal 0.3 against 1.0 and 0.5), so spherical k-means on the images alone reaches
    0.43-0.65 ACC at these seeds (chance is 0.2). The nouns GradNorm keeps are organised by
    class, so [u ; t] reaches 0.95-1.0 (measured). The thresholds ask for at least 0.9 and
    a margin of 0.25, far above seed noise, while the image-only ACC must stay below 0.75
    so that the world stays hard (a change that made it easy would be caught)."""
    world = make_planted_world(random_state=seed)
    image_only = SphericalKMeans(5, n_init=5, random_state=0).fit_predict(world.data)
    laic = _laic(world).fit(world.data)
    acc_img = clustering_accuracy_score(world.target, image_only)
    acc_laic = clustering_accuracy_score(world.target, laic.labels_)
    assert acc_img < 0.75
    assert acc_laic >= 0.9
    assert acc_laic >= acc_img + 0.25


def test_keeping_every_noun_does_not_help(planted_world):
    """With strategy='none' every image retrieves the generic nouns nearest to all images,
    so t carries no class information: the paper's case for filtering."""
    w = planted_world
    acc = lambda est: clustering_accuracy_score(w.target, est.fit(w.data).labels_)  # noqa: E731
    assert acc(_laic(w)) >= acc(_laic(w, strategy="none")) + 0.25


def test_fitted_attributes_and_predict(planted_world):
    w = planted_world
    laic = _laic(w).fit(w.data)
    d = w.data.shape[1]
    assert laic.cluster_centers_.shape == (5, 2 * d)
    np.testing.assert_allclose(np.linalg.norm(laic.cluster_centers_, axis=1), 1.0, rtol=1e-5)
    assert laic.labels_.shape == (600,) and set(laic.labels_) == set(range(5))
    assert isinstance(laic.selector_, GradNormNounSelector) and laic.selector is not laic.selector_
    assert not hasattr(laic.selector, "selected_indices_")  # the given selector is not fitted
    np.testing.assert_array_equal(laic.predict(w.data), laic.labels_)
    np.testing.assert_array_equal(laic.fit_predict(w.data), laic.labels_)
    # predict = nearest centre of [u ; t] in cosine
    Z = laic.selector_.set_params(concatenate=True).transform(w.data[:20])
    np.testing.assert_array_equal(
        laic.predict(w.data[:20]), (Z @ laic.cluster_centers_.T).argmax(1)
    )


def test_predict_on_new_images_from_the_same_world():
    w = make_planted_world(n_samples=900, random_state=3)
    laic = _laic(w).fit(w.data[:600])
    assert clustering_accuracy_score(w.target[600:], laic.predict(w.data[600:])) >= 0.9


def test_same_random_state_same_labels_pickle_and_clone(planted_world):
    w = planted_world
    a = _laic(w).fit(w.data)
    b = _laic(w).fit(w.data)
    np.testing.assert_array_equal(a.labels_, b.labels_)
    restored = pickle.loads(pickle.dumps(a))
    np.testing.assert_array_equal(restored.predict(w.data), a.labels_)
    c = clone(a)
    assert not hasattr(c, "labels_")
    np.testing.assert_array_equal(c.fit(w.data).labels_, a.labels_)


def test_pipeline_fit_predict(planted_world):
    w = planted_world
    pipe = Pipeline(
        [
            ("scale", FunctionTransformer(lambda X: 3.0 * X)),  # any upstream step
            ("normalize", Normalizer()),
            ("laic", _laic(w)),
        ]
    )
    labels = pipe.fit_predict(w.data)
    assert clustering_accuracy_score(w.target, labels) >= 0.9
    np.testing.assert_array_equal(pipe.predict(w.data), labels)


@pytest.mark.slow
def test_grid_search_tunes_selector_against_labels(planted_world):
    """top_k=3000 keeps the whole bank (2,364 nouns), so the generic nouns reach every image
    and ACC falls to the image-only level; a grid search scored by ACC must avoid it."""
    w = planted_world
    search = GridSearchCV(
        _laic(w, n_init=3),
        {"selector__temperature": [0.02, 0.05], "selector__top_k": [5, 3000]},
        scoring=make_scorer(clustering_accuracy_score),
        cv=KFold(3, shuffle=True, random_state=0),
    )
    search.fit(w.data, w.target)
    assert search.best_params_["selector__top_k"] == 5
    assert search.best_score_ >= 0.9
    scores = dict(
        zip(
            map(str, search.cv_results_["params"]),
            search.cv_results_["mean_test_score"],
            strict=True,
        )
    )
    bad = [s for p, s in scores.items() if "3000" in p]
    assert max(bad) < search.best_score_ - 0.2
    assert adjusted_rand_score(w.target, search.best_estimator_.predict(w.data)) >= 0.8


def test_default_selector_gets_random_state_and_needs_a_bank(planted_world):
    laic = LanguageAssistedClusterer(3, random_state=7, device="cpu")
    default = laic._make_selector()
    assert isinstance(default, GradNormNounSelector)
    assert default.random_state == 7 and default.device == "cpu" and default.concatenate
    with pytest.raises(ValueError, match="needs a noun bank"):
        laic.fit(planted_world.data)


def test_bad_inputs_give_clear_errors(planted_world):
    w = planted_world
    laic = _laic(w)
    with pytest.raises(ValueError, match="n_clusters=601 is larger than n_samples=600"):
        clone(laic).set_params(n_clusters=601).fit(w.data)
    with pytest.raises(ValueError, match="n_clusters"):
        clone(laic).set_params(n_clusters=0).fit(w.data)
    with pytest.raises(ValueError, match="NaN"):
        laic.fit(np.full_like(w.data, np.nan))
    with pytest.raises(ValueError, match="2D array"):
        laic.fit(w.data[0])
    with pytest.raises(ValueError, match="0 sample"):
        laic.fit(w.data[:0])
    with pytest.raises(ValueError, match="X has 10 features but noun_embeddings has 128"):
        laic.fit(w.data[:, :10])
    with pytest.raises(ValueError, match="selector"):
        LanguageAssistedClusterer(3, selector="gradnorm").fit(w.data)
    with pytest.raises(NotFittedError):
        clone(laic).predict(w.data)


def test_any_transformer_is_a_selector(planted_world):
    """The public contract: the clusterer clusters the unit rows of selector.transform(X)."""
    w = planted_world
    identity = FunctionTransformer()  # no concatenate parameter: its output is used as is
    laic = LanguageAssistedClusterer(5, selector=identity, n_init=3, random_state=0).fit(w.data)
    km = SphericalKMeans(5, n_init=3, max_iter=300, tol=1e-4, random_state=0).fit(w.data)
    np.testing.assert_array_equal(laic.labels_, km.labels_)
    np.testing.assert_array_equal(laic.predict(w.data[:50]), km.predict(w.data[:50]))
    assert identity.get_params() == FunctionTransformer().get_params()  # the clone was fitted


@pytest.mark.parametrize("clusterer_cls", ["language", "heads"])
def test_a_parameter_given_twice_the_clusterers_wins_unless_none(clusterer_cls):
    """encoder, vocabulary (and strategy for the heads) set on the clusterer replace the
    selector's when not None; None leaves the selector's own value (skgradnorm._base)."""
    from skgradnorm import MutualDistillationClusterer

    world = make_planted_world(n_samples=120, n_classes=3, n_random_nouns=40, random_state=0)
    m = world.noun_embeddings.shape[0]
    mine, theirs = [f"sel{i}" for i in range(m)], [f"clu{i}" for i in range(m)]
    selector = GradNormNounSelector(
        world.noun_embeddings, vocabulary=mine, n_centers=6, strategy="tac", random_state=0
    )
    if clusterer_cls == "language":
        make = LanguageAssistedClusterer
        common = dict(n_init=1, random_state=0)
    else:
        make = MutualDistillationClusterer
        common = dict(n_epochs=1, n_neighbors=5, random_state=0, device="cpu")
    kept = make(3, selector=selector, **common).fit(world.data)
    assert kept.selector_.vocabulary == mine and kept.selector_.strategy == "tac"
    assert set(kept.selector_.selected_nouns_) <= set(mine)
    given = dict(vocabulary=theirs)
    if clusterer_cls == "heads":
        given["strategy"] = "gradnorm"
    replaced = make(3, selector=selector, **given, **common).fit(world.data)
    assert set(replaced.selector_.selected_nouns_) <= set(theirs)
    if clusterer_cls == "heads":
        assert replaced.selector_.strategy == "gradnorm"
    assert selector.vocabulary == mine  # the given selector itself is never changed


def test_passthrough_clusters_the_images_alone(planted_world):
    """selector="passthrough" is spherical k-means on the images, label for label."""
    w = planted_world
    model = LanguageAssistedClusterer(5, selector="passthrough", n_init=3, random_state=0)
    model.fit(w.data)
    km = SphericalKMeans(5, n_init=3, random_state=0).fit(w.data)
    np.testing.assert_array_equal(model.labels_, km.labels_)
    np.testing.assert_allclose(model.cluster_centers_, km.cluster_centers_, rtol=1e-6)
    assert model.selector_ == "passthrough" and model.cluster_centers_.shape == (5, 128)
    np.testing.assert_array_equal(model.predict(w.data[:20]), km.predict(w.data[:20]))
    again = pickle.loads(pickle.dumps(clone(model).fit(w.data)))
    np.testing.assert_array_equal(again.labels_, model.labels_)
    with pytest.raises(ValueError, match="selector"):
        LanguageAssistedClusterer(5, selector="images").fit(w.data)


def test_fewer_distinct_clusters_than_asked_warns():
    from sklearn.exceptions import ConvergenceWarning

    rng = np.random.default_rng(0)
    X = np.repeat(np.eye(6)[:2], [20, 20], axis=0)  # two distinct images
    laic = LanguageAssistedClusterer(
        3, selector=GradNormNounSelector(rng.standard_normal((40, 6)), n_centers=2), random_state=0
    )
    with pytest.warns(ConvergenceWarning, match=r"distinct clusters \(2\).*\[u ; t\]"):
        laic.fit(X)
    assert np.unique(laic.labels_).size == 2
