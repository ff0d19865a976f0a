"""Consensus selection, label-free scoring, n_clusters="auto" and the tuning helpers."""

import functools
import xml.etree.ElementTree as ET

import numpy as np
import pytest
from sklearn.base import clone
from sklearn.exceptions import NotFittedError
from sklearn.linear_model import LogisticRegression, RidgeClassifier
from sklearn.model_selection import GridSearchCV, KFold

from skgradnorm import (
    GradNormNounSelector,
    LanguageAssistedClusterer,
    SphericalKMeans,
    spherical_kmeans,
)
from skgradnorm._cluster._label_free import cosine_silhouette, generalization_score
from skgradnorm._consensus import consensus_order, count_votes, round_seeds
from skgradnorm._gradnorm import (
    gradnorm_scores,
    select_top_k_per_center,
    sic_scores,
    tac_scores,
)
from skgradnorm._reporting._charts import criterion_chart_svg
from skgradnorm.datasets import make_long_tail_world, make_planted_world
from skgradnorm.metrics import label_free_score, label_free_scorer
from skgradnorm.model_selection import TransductiveSplit
from skgradnorm.tuning import default_grid, tune


@pytest.fixture(scope="module")
def small_world():
    return make_planted_world(n_samples=240, n_classes=4, n_random_nouns=300, random_state=1)


def _plain_selection(world, seed, strategy, *, n_centers=12, top_k=3, temperature=0.05, n_init=3):
    """The pre-consensus algorithm restated: one k-means, one scoring, top-k per centre."""
    X = world.data / np.linalg.norm(world.data, axis=1, keepdims=True)
    E = world.noun_embeddings / np.linalg.norm(world.noun_embeddings, axis=1, keepdims=True)
    W, _, _, _ = spherical_kmeans(X, n_centers, n_init=n_init, max_iter=100, random_state=seed)
    if strategy in ("gradnorm", "none"):
        scores, assign = gradnorm_scores(E, W, temperature=temperature)
    elif strategy == "tac":
        scores, assign = tac_scores(E, W)
    else:
        scores, assign = sic_scores(E, W, uniqueness_threshold=0.2)
    if strategy == "none":
        return W, np.arange(E.shape[0])
    return W, select_top_k_per_center(scores, assign, top_k)


def _selector(world, **kw):
    params = dict(n_centers=12, top_k=3, random_state=0)
    params.update(kw)
    return GradNormNounSelector(world.noun_embeddings, **params)


@pytest.mark.parametrize("strategy", ["gradnorm", "tac", "sic", "none"])
def test_one_round_is_the_plain_selection(small_world, strategy):
    W, expected = _plain_selection(small_world, 0, strategy)
    sel = _selector(small_world, strategy=strategy, n_rounds=1).fit(small_world.data)
    np.testing.assert_array_equal(sel.selected_indices_, expected)
    np.testing.assert_allclose(sel.centers_, W, atol=1e-6)
    np.testing.assert_array_equal(sel.selection_votes_, np.ones(expected.size))


def test_consensus_keeps_the_nouns_with_enough_votes(small_world):
    seeds = round_seeds(3, 5)
    # five rounds share n_init=3 restarts: one restart each
    plain = [_plain_selection(small_world, s, "gradnorm", n_init=1)[1] for s in seeds]
    counts = {}
    for selected in plain:
        for i in selected:
            counts[int(i)] = counts.get(int(i), 0) + 1
    for min_votes in (None, 1, 5):
        sel = _selector(
            small_world,
            n_rounds=5,
            min_votes=min_votes,
            round_subsample=1.0,
            random_state=3,
        )
        sel.fit(small_world.data)
        need = 3 if min_votes is None else min_votes
        expected = {i for i, c in counts.items() if c >= need}
        assert set(sel.selected_indices_.tolist()) == expected
        assert sel.selection_votes_.tolist() == [counts[i] for i in sel.selected_indices_]
        assert len(sel.round_centers_) == 5
        np.testing.assert_array_equal(sel.centers_, sel.round_centers_[0])
        assert sel.selected_nouns_ == [f"noun_{i}" for i in sel.selected_indices_]
    union = set().union(*(set(p.tolist()) for p in plain))
    inter = set.intersection(*(set(p.tolist()) for p in plain))
    assert inter < union  # the rounds differ, so the vote threshold matters


def test_vote_counting_matches_a_plain_count():
    rng = np.random.RandomState(0)
    selections = [rng.choice(50, size=rng.randint(0, 20), replace=False) for _ in range(7)]
    votes = count_votes(selections, 50)
    expected = [sum(i in s for s in selections) for i in range(50)]
    np.testing.assert_array_equal(votes, expected)
    scores, assign = rng.rand(50), rng.randint(5, size=50)
    order = consensus_order(votes, 3, scores, assign)
    kept = [i for i in range(50) if expected[i] >= 3]
    assert order.tolist() == sorted(kept, key=lambda i: (assign[i], scores[i], i))


def test_consensus_is_reproducible_and_clones(small_world):
    a = _selector(small_world, n_rounds=3, random_state=5).fit(small_world.data)
    b = clone(a).fit(small_world.data)
    np.testing.assert_array_equal(a.selected_indices_, b.selected_indices_)


def test_consensus_bad_input(small_world):
    X = small_world.data
    with pytest.raises(ValueError, match="min_votes=4 is larger than n_rounds=3.*use min_votes"):
        _selector(small_world, n_rounds=3, min_votes=4).fit(X)
    with pytest.raises(ValueError, match="n_rounds"):
        _selector(small_world, n_rounds=0).fit(X)
    with pytest.raises(ValueError, match="min_votes"):
        _selector(small_world, min_votes=0).fit(X)


def test_generalization_score_is_the_cross_validated_linear_accuracy():
    rng = np.random.RandomState(0)
    U = rng.normal(size=(90, 5))
    labels = (U[:, 0] > 0).astype(int) + 2 * (U[:, 1] > 0)
    folds = KFold(3, shuffle=True, random_state=0)
    expected = np.mean(
        [
            RidgeClassifier().fit(U[tr], labels[tr]).score(U[te], labels[te])
            for tr, te in folds.split(U)
        ]
    )
    assert generalization_score(U, labels) == pytest.approx(expected)
    assert generalization_score(U, labels) > generalization_score(U, rng.permutation(labels))
    assert generalization_score(U, np.zeros(90)) == 0.0


@pytest.mark.parametrize("criterion", ["generalization", "silhouette", "silhouette_image"])
def test_label_free_score_prefers_the_true_partition(small_world, criterion):
    """Every criterion ranks the clustering of a good setting above a random labelling."""
    w = small_world
    model = LanguageAssistedClusterer(4, selector=_selector(w), n_init=2, random_state=0)
    model.fit(w.data)
    good = label_free_score(model, w.data, criterion=criterion)
    shuffled = clone(model).fit(w.data)
    shuffled.labels_ = np.random.RandomState(0).permutation(shuffled.labels_)
    shuffled.predict = lambda X: shuffled.labels_  # a clustering that is not the data's
    assert good > label_free_score(shuffled, w.data, criterion=criterion)


def test_stability_and_scorer_in_grid_search(small_world):
    w = small_world
    model = LanguageAssistedClusterer(4, selector=_selector(w), n_init=2, random_state=0)
    assert 0.5 < label_free_score(model.fit(w.data), w.data, criterion="stability") <= 1.0
    search = GridSearchCV(
        model,
        {"selector__temperature": [0.02, 0.05]},
        scoring=label_free_scorer,
        cv=TransductiveSplit(),
    ).fit(w.data)
    expected = [
        label_free_score(clone(model).set_params(selector__temperature=t).fit(w.data), w.data)
        for t in (0.02, 0.05)
    ]
    np.testing.assert_allclose(search.cv_results_["mean_test_score"], expected)
    assert search.best_estimator_.labels_.shape == (w.data.shape[0],)


def test_transductive_split():
    cv = TransductiveSplit()
    splits = list(cv.split(np.zeros((4, 2))))
    assert len(splits) == cv.get_n_splits() == 1
    np.testing.assert_array_equal(splits[0][0], np.arange(4))
    np.testing.assert_array_equal(splits[0][1], np.arange(4))


def test_scorer_bad_input(small_world):
    X = small_world.data
    with pytest.raises(NotFittedError, match="not fitted; call fit"):
        label_free_score(SphericalKMeans(2), X)
    clf = LogisticRegression().fit(X, small_world.target)
    with pytest.raises(TypeError, match="needs a clustering estimator"):
        label_free_score(clf, X)
    with pytest.raises(ValueError, match="criterion"):
        label_free_score(SphericalKMeans(2, n_init=1).fit(X), X, criterion="accuracy")


def _blobs(k, n_per, d=8, seed=0):
    rng = np.random.RandomState(seed)
    centers = np.eye(d)[:k] * 4
    X = np.vstack([c + rng.normal(scale=0.3, size=(n_per, d)) for c in centers])
    return X, np.repeat(np.arange(k), n_per)


@pytest.mark.parametrize("k", [3, 5])
def test_auto_k_finds_separated_groups(k):
    X, _ = _blobs(k, 30)
    km = SphericalKMeans("auto", n_clusters_range=range(2, 9), n_init=3, random_state=0).fit(X)
    assert km.n_clusters_ == k
    scored = km.n_clusters_range_.tolist()  # the K values the coarse-to-fine scan scored
    assert km.n_clusters_scores_.shape == (len(scored),) and k in scored
    assert set(scored) <= set(range(2, 9)) and scored == sorted(scored)
    assert km.cluster_centers_.shape == (k, X.shape[1])
    assert SphericalKMeans(4, n_init=1).fit(X).n_clusters_ == 4


def test_auto_k_on_the_clusterer_and_its_chart(small_world):
    w = small_world
    model = LanguageAssistedClusterer(
        "auto", n_clusters_range=range(2, 7), selector=_selector(w), n_init=2, random_state=0
    ).fit(w.data)
    assert model.n_clusters_ in range(2, 7)
    assert model.cluster_centers_.shape[0] == model.n_clusters_
    scores = model.n_clusters_scores_
    ties = np.flatnonzero(scores >= scores.max() - 0.01)
    assert model.n_clusters_ == 2 + ties[-1]  # the largest K tied with the best
    svg = criterion_chart_svg(estimator=model)
    root = ET.fromstring(svg)  # well-formed XML
    assert root.tag.endswith("svg") and "href" not in svg and "<script" not in svg
    assert svg.count('fill="#d1455b"') == 1  # the chosen K is highlighted


def test_auto_k_bad_ranges(small_world):
    X = small_world.data
    for bad, match in [
        ([], "at least two values"),
        ([5], "at least two values"),
        ([1, 2, 3], "starts at 1"),
        (range(2, 300), "only 240 samples"),
        ("abc", "n_clusters_range"),
        ([2.5, 3.0], "ints"),
    ]:
        with pytest.raises(ValueError, match=match):
            SphericalKMeans("auto", n_clusters_range=bad).fit(X)
    with pytest.raises(ValueError, match="only 240 samples"):
        LanguageAssistedClusterer(
            "auto", n_clusters_range=range(2, 241), selector=_selector(small_world)
        ).fit(X)


def test_tune_returns_a_table_and_a_chart(small_world):
    w = small_world
    model = LanguageAssistedClusterer(4, selector=_selector(w), n_init=2, random_state=0)
    grid = default_grid(model, w.data)
    assert grid["selector__n_centers"] == [8, 16] and len(grid["selector__temperature"]) == 3
    result = tune(model, w.data, grid={"selector__retrieval_temperature": [0.005, 0.03]})
    labels = [row["label"] for row in result.table_]
    assert labels == ["tau=0.005", "tau=0.03", "image only"]
    values = [row["criterion"] for row in result.table_]
    # the best language setting by stability, unless its clusters are separated less
    # than min_language_gain better than the images alone's (relative cosine silhouette)
    best_language = int(np.argmax(values[:2]))
    fitted = [clone(model).set_params(**row["params"]).fit(w.data) for row in result.table_]
    s_language = cosine_silhouette(
        fitted[best_language].selector_.transform(w.data), fitted[best_language].labels_
    )
    s_image = cosine_silhouette(w.data, fitted[2].labels_)
    assert result.language_gain_ == pytest.approx((s_language - s_image) / abs(s_image))
    assert result.best_index_ == (best_language if result.language_gain_ >= 0.25 else 2)
    assert result.best_estimator_.language_gain_ == result.language_gain_
    np.testing.assert_array_equal(result.language_estimator_.labels_, fitted[best_language].labels_)
    assert result.criterion == "stability" and labels[result.best_index_] in result.reason
    svg = criterion_chart_svg(result)
    assert ET.fromstring(svg).tag.endswith("svg") and svg.count("<title>") == 3
    with pytest.raises(ValueError, match="exactly one"):
        criterion_chart_svg()
    auto = clone(model).set_params(n_clusters="auto", n_clusters_range=range(2, 6))
    chained = tune(auto, w.data, grid={"selector__temperature": [0.05]})
    assert chained.n_clusters_ == chained.auto_k_estimator_.n_clusters_
    assert chained.best_estimator_.n_clusters == chained.n_clusters_ and "K=" in chained.reason
    with pytest.raises(ValueError, match="pass grid="):
        default_grid(SphericalKMeans(3))
    stab = tune(
        model, w.data, grid={"selector__temperature": [0.05]}, criterion="silhouette"
    ).table_
    assert stab[0]["criterion"] == pytest.approx(
        functools.partial(label_free_score, criterion="silhouette")(
            clone(model).fit(w.data), w.data
        )
    )


def test_long_tail_world_structure():
    w = make_long_tail_world(n_samples=300, n_classes=6, imbalance=5.0, random_state=0)
    sizes = np.bincount(w.target)
    assert sizes.sum() == 300 and sizes.min() >= 2 and sizes.max() >= 3 * sizes.min()
    np.testing.assert_allclose(np.linalg.norm(w.data, axis=1), 1.0, rtol=1e-5)
    assert np.all((w.noun_target >= 0) == (w.noun_kind == "positive"))
    assert len(set(w.vocabulary)) == len(w.vocabulary) == w.noun_embeddings.shape[0]
    b = make_long_tail_world(n_samples=300, n_classes=6, random_state=0)
    np.testing.assert_array_equal(w.data, b.data)
    with pytest.raises(ValueError, match="imbalance"):
        make_long_tail_world(imbalance=0.5)


def test_label_free_score_on_a_clusterer_without_predict():
    """scikit-learn clusterers without predict are scored on their labels_ (same rows)."""
    from sklearn.cluster import AgglomerativeClustering

    X, _ = _blobs(3, 20)
    model = AgglomerativeClustering(3).fit(X)
    assert label_free_score(model, X, criterion="silhouette_image") > 0.5
    with pytest.raises(ValueError, match="fitted on 60.*TransductiveSplit"):
        label_free_score(model, X[:10], criterion="silhouette_image")


def test_search_n_clusters_is_sklearn_shaped_and_matches_auto_k():
    from sklearn.datasets import make_blobs

    from skgradnorm.tuning import search_n_clusters

    X = make_blobs(n_samples=120, centers=4, n_features=6, random_state=0)[0] + 10.0
    result = search_n_clusters(X, range(2, 7), n_init=2, random_state=0)
    model = SphericalKMeans("auto", n_clusters_range=range(2, 7), n_init=2, random_state=0).fit(X)
    assert result.n_clusters_ == model.n_clusters_
    np.testing.assert_array_equal(result.n_clusters_range_, model.n_clusters_range_)
    np.testing.assert_allclose(result.scores_, model.n_clusters_scores_)
    np.testing.assert_array_equal(result.labels_, model.labels_)
    assert result.cluster_centers_.shape == (result.n_clusters_, 6)
    with pytest.raises(ValueError, match="criterion"):
        search_n_clusters(X, range(2, 4), criterion="elbow")
    with pytest.raises(ValueError, match="n_clusters_range reaches"):
        search_n_clusters(X[:5], range(2, 9))


def test_tune_shares_selector_fits_without_changing_any_result(small_world):
    """Settings that differ only in tau reuse one selector fit: every estimator, its
    labels, its nouns and its stability equal those of a plain fit and label_free_score."""
    from sklearn.model_selection import ParameterGrid

    from skgradnorm._tune_search import fit_candidates, score_candidates

    w = small_world
    model = LanguageAssistedClusterer(4, selector=_selector(w), n_init=2, random_state=0)
    grid = {
        "selector__temperature": [0.05],
        "selector__retrieval_temperature": [0.005, 0.03],
    }
    settings = [*ParameterGrid(grid), {"selector": "passthrough"}]
    cands = fit_candidates(model, w.data, settings, refit_random_state=0)
    scores = score_candidates(cands, w.data, "stability")
    for cand, params, score in zip(cands, settings, scores, strict=True):
        plain = clone(model).set_params(**params).fit(w.data)
        np.testing.assert_array_equal(cand.estimator.labels_, plain.labels_)
        assert repr(cand.estimator) == repr(plain)
        assert score == pytest.approx(label_free_score(plain, w.data))
        if "selector" not in params:
            assert cand.estimator.selector_.selected_nouns_ == plain.selector_.selected_nouns_
            assert (
                cand.estimator.selector_.retrieval_temperature
                == params["selector__retrieval_temperature"]
            )


def test_label_free_scorer_ranks_the_images_alone_beside_language(small_world):
    """GridSearchCV with label_free_scorer takes selector="passthrough" as one more
    candidate; its score is label_free_score of a plain image-only fit."""
    w = small_world
    model = LanguageAssistedClusterer(4, selector=_selector(w), n_init=2, random_state=0)
    grid = [{"selector__temperature": [0.05]}, {"selector": ["passthrough"]}]
    search = GridSearchCV(model, grid, scoring=label_free_scorer, cv=TransductiveSplit()).fit(
        w.data
    )
    image_only = clone(model).set_params(selector="passthrough").fit(w.data)
    assert search.cv_results_["mean_test_score"][1] == pytest.approx(
        label_free_score(image_only, w.data)
    )


def test_tune_keeps_language_only_when_it_separates_the_clusters_clearly_better(small_world):
    from skgradnorm.exceptions import LanguageDoesNotHelpWarning
    from skgradnorm.tuning import _choose, _reason, relative_gain

    rows = [
        {"label": "T=0.05", "criterion": 0.70, "image_only": False},
        {"label": "T=0.1", "criterion": 0.80, "image_only": False},
        {"label": "image only", "criterion": 0.95, "image_only": True},
    ]
    # the stability of the images alone does not decide; the silhouette gain does
    assert relative_gain(0.25, 0.2) == pytest.approx(0.25)
    assert relative_gain(0.1, -0.2) == pytest.approx(1.5)
    assert _choose(rows, 0.4) == 1 and _choose(rows, 0.25) == 1
    assert "so language is used" in _reason(rows, 1, "stability", 0.4, 0.25, (0.28, 0.2))
    assert _choose(rows, 0.1) == 2 and _choose(rows, -0.3) == 2
    assert _choose(rows, 0.1, min_gain=0.05) == 1
    assert "no language is used" in _reason(rows, 2, "stability", 0.1, 0.25, (0.22, 0.2))
    assert _choose(rows[:2], None) == 1 and _choose(rows[2:], None) == 0
    assert issubclass(LanguageDoesNotHelpWarning, UserWarning)
    # through tune: a gain asked that no clustering can reach gives the images alone
    w = small_world
    model = LanguageAssistedClusterer(4, selector=_selector(w), n_init=2, random_state=0)
    with pytest.warns(LanguageDoesNotHelpWarning, match="min_language_gain"):
        result = tune(model, w.data, grid={"selector__temperature": [0.05]}, min_language_gain=1e9)
    assert result.table_[result.best_index_]["image_only"]
    assert result.best_params_ == {"selector": "passthrough"}
    with pytest.raises(ValueError, match="min_language_gain"):
        tune(model, w.data, min_language_gain=float("nan"))
