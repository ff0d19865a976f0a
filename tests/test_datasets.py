"""The synthetic worlds: shapes, determinism, the structure the tests rely on, and the
neighbourhood statistics of ``world_statistics``."""

import numpy as np
import pytest
from sklearn.utils._param_validation import InvalidParameterError

from skgradnorm import SphericalKMeans
from skgradnorm.datasets import (
    make_calibrated_world,
    make_long_tail_world,
    make_planted_world,
    world_statistics,
)
from skgradnorm.metrics import clustering_accuracy_score


def test_shapes_types_and_unit_norms():
    w = make_planted_world(
        n_samples=50, n_classes=4, n_features=32, n_random_nouns=100, random_state=0
    )
    n_nouns = 4 * 3 * 20 + 4 * 6 + 4 * 6 + 10 + 100
    assert w.data.shape == (50, 32) and w.data.dtype == np.float32
    assert w.noun_embeddings.shape == (n_nouns, 32) and len(w.vocabulary) == n_nouns
    assert len(set(w.vocabulary)) == n_nouns
    np.testing.assert_allclose(np.linalg.norm(w.data, axis=1), 1.0, rtol=1e-5)
    np.testing.assert_allclose(np.linalg.norm(w.noun_embeddings, axis=1), 1.0, rtol=1e-5)
    assert set(w.target) == set(range(4)) and w.target_names == ["dog", "cat", "bird", "fish"]
    assert np.all((w.noun_target >= 0) == (w.noun_kind == "positive"))


def test_same_seed_same_world():
    a, b = make_planted_world(random_state=3), make_planted_world(random_state=3)
    np.testing.assert_array_equal(a.data, b.data)
    np.testing.assert_array_equal(a.noun_embeddings, b.noun_embeddings)


def test_clip_like_geometry():
    """Matching image-text cosines are low (CLIP: about 0.2-0.3), positive nouns are
    nearer their own class than other classes, generic nouns are nearest to all images."""
    w = make_planted_world(random_state=0)
    pos = w.noun_kind == "positive"
    sims = w.data @ w.noun_embeddings.T
    own = np.array([sims[i, pos & (w.noun_target == w.target[i])].mean() for i in range(100)])
    other = np.array([sims[i, pos & (w.noun_target != w.target[i])].mean() for i in range(100)])
    assert 0.1 < own.mean() < 0.4
    assert np.all(own > other)
    nearest_kind = w.noun_kind[sims.argmax(axis=1)]
    assert np.mean(nearest_kind == "generic") > 0.9


def test_bad_parameters():
    with pytest.raises(ValueError, match="'n_classes' parameter of make_planted_world must be"):
        make_planted_world(n_classes=0)
    with pytest.raises(ValueError, match="'n_features' parameter of make_planted_world must be"):
        make_planted_world(n_features=1.5)
    with pytest.raises(ValueError, match="n_classes must be an integer >= 1; got True"):
        make_planted_world(n_classes=True)  # a bool is not a count


@pytest.mark.parametrize(
    "make, params, message",
    [
        (make_planted_world, {"n_samples": "many"}, "'n_samples' parameter of make_planted_w"),
        (make_planted_world, {"image_noise": -0.1}, "'image_noise' parameter"),
        (make_planted_world, {"random_state": "seed"}, "'random_state' parameter"),
        (make_long_tail_world, {"imbalance": 0.5}, "'imbalance' parameter of make_long_tail"),
        (make_long_tail_world, {"class_overlap": 1.0}, "'class_overlap' parameter"),
        (make_long_tail_world, {"confusion": -1}, "'confusion' parameter"),
        (make_calibrated_world, {"alignment": 1.5}, "'alignment' parameter of make_calibrated"),
        (make_calibrated_world, {"entanglement": -0.1}, "'entanglement' parameter"),
        (make_calibrated_world, {"class_similarity": 1.0}, "'class_similarity' parameter"),
        (make_calibrated_world, {"noise_heterogeneity": 1.0}, "'noise_heterogeneity' param"),
        (make_calibrated_world, {"max_modes": 0}, "'max_modes' parameter"),
        (make_calibrated_world, {"image_noise": "high"}, "'image_noise' parameter"),
        (make_calibrated_world, {"n_samples": 10, "n_classes": 10}, "n_samples must be an"),
        (make_calibrated_world, {"n_features": 4}, "n_style_directions=6 exceeds n_features=4"),
    ],
)
def test_generators_reject_bad_parameters(make, params, message):
    with pytest.raises(ValueError, match=message):
        make(**params)
    if "must be an" not in message and "exceeds" not in message:  # validate_params' errors
        with pytest.raises(InvalidParameterError):
            make(**params)


# Outputs of the two older generators at the commit before validate_params was added
# (f86c384), for a fixed seed: validation must not change what a valid call returns.
_GOLDEN = {
    make_planted_world: {
        "data": [
            [0.2282123, 0.1228012, -0.2242514, -0.2540747, -0.0998816],
            [-0.0728978, 0.1350776, 0.2706744, -0.4164734, 0.1415806],
        ],
        "target": [0, 2, 2, 1, 0, 2, 1, 3, 2, 0, 2, 1],
        "subclass": [1, 0, 1, 1, 1, 2, 2, 1, 2, 1, 1, 1],
        "sums": (-49.52813969788258, 56.31580974513781),
        "n_nouns": 318,
    },
    make_long_tail_world: {
        "data": [
            [0.2373329, -0.1769668, 0.0297114, -0.1750268, -0.3936273],
            [0.1335119, -0.3980382, -0.1162228, -0.0679806, -0.0192345],
        ],
        "target": [1, 0, 0, 0, 3, 1, 0, 1, 0, 2, 0, 0],
        "subclass": [0, 0, 3, 3, 0, 1, 0, 0, 0, 1, 2, 3],
        "sums": (65.64739701699, 41.349295325548155),
        "n_nouns": 126,
    },
}


@pytest.mark.parametrize("make", list(_GOLDEN), ids=lambda f: f.__name__)
def test_older_generators_unchanged_for_a_fixed_seed(make):
    expected = _GOLDEN[make]
    w = make(n_samples=60, n_classes=4, n_features=16, n_random_nouns=20, random_state=7)
    assert w.noun_embeddings.shape == (expected["n_nouns"], 16)
    np.testing.assert_allclose(w.data[:2, :5], expected["data"], atol=1e-6)
    assert w.target[:12].tolist() == expected["target"]
    assert w.subclass[:12].tolist() == expected["subclass"]
    sums = (w.data.astype(np.float64).sum(), w.noun_embeddings.astype(np.float64).sum())
    np.testing.assert_allclose(sums, expected["sums"], rtol=1e-6)


# -- make_calibrated_world ----------------------------------------------------------------


def test_calibrated_world_shapes_and_noun_bank():
    w = make_calibrated_world(
        n_samples=300, n_classes=6, n_features=32, n_random_nouns=50, random_state=0
    )
    assert w.data.shape == (300, 32) and w.data.dtype == np.float32
    assert w.noun_embeddings.shape == (len(w.vocabulary), 32)
    assert len(set(w.vocabulary)) == len(w.vocabulary)
    np.testing.assert_allclose(np.linalg.norm(w.data, axis=1), 1.0, rtol=1e-5)
    np.testing.assert_allclose(np.linalg.norm(w.noun_embeddings, axis=1), 1.0, rtol=1e-5)
    assert set(w.target) == set(range(6)) and w.superclass.shape == (6,)
    assert set(w.noun_kind) == {"positive", "style", "blend", "generic", "random"}
    assert np.all((w.noun_target >= 0) == (w.noun_kind == "positive"))
    # Every mode of every class has its positive nouns.
    for c in range(6):
        modes = np.unique(w.subclass[w.target == c])
        assert np.sum(w.noun_target == c) >= len(modes) * 10


def test_calibrated_world_same_seed_same_world():
    a, b = (
        make_calibrated_world(n_samples=200, random_state=3),
        make_calibrated_world(n_samples=200, random_state=3),
    )
    for key in ("data", "target", "subclass", "noun_embeddings", "noun_target", "superclass"):
        np.testing.assert_array_equal(a[key], b[key])
    assert a.vocabulary == b.vocabulary
    c = make_calibrated_world(n_samples=200, random_state=4)
    assert not np.array_equal(a.data, c.data)


@pytest.mark.parametrize("seed", [0, 1])
def test_calibrated_world_looks_like_real_features(seed):
    """The promise of the docstring, at the defaults: classes connected in the 50-NN
    graph, 20-NN purity high but imperfect, overlapping modes, image-only spherical k-means
    well below perfect, and nouns that name most images' class."""
    w = make_calibrated_world(random_state=seed)
    stats = world_statistics(w.data, w.target, w.subclass)
    assert 0.75 <= stats["knn_purity"] <= 0.93
    assert stats["n_components"] <= 3
    assert stats["subclass_purity"] < stats["knn_purity"] - 0.05  # modes overlap
    labels = SphericalKMeans(10, n_init=3, random_state=0).fit(w.data).labels_
    assert 0.55 <= clustering_accuracy_score(w.target, labels) <= 0.9
    positive = w.noun_kind == "positive"
    nearest = (w.data @ w.noun_embeddings[positive].T).argmax(axis=1)
    assert np.mean(w.noun_target[positive][nearest] == w.target) >= 0.8


def test_planted_worlds_are_islands():
    """What the calibrated worlds fix: in a planted world every neighbour shares the
    image's sub-class, and the 50-NN graph falls apart into many components."""
    w = make_planted_world(n_samples=2000, n_random_nouns=0, random_state=0)
    stats = world_statistics(w.data, w.target, w.subclass)
    assert stats["knn_purity"] >= 0.99 and stats["subclass_purity"] >= 0.99
    assert stats["n_components"] >= len(w.target_names)


# -- world_statistics ---------------------------------------------------------------------


def _reference_statistics(X, target, subclass, n_neighbors, graph_k):
    """Plain reference: full cosine matrix, argsort, and a graph search by hand."""
    U = X / np.linalg.norm(X, axis=1, keepdims=True)
    S = U @ U.T
    np.fill_diagonal(S, -np.inf)
    order = np.argsort(-S, axis=1, kind="stable")
    purity = np.mean(target[order[:, :n_neighbors]] == target[:, None])
    pairs = np.array([f"{t}/{s}" for t, s in zip(target, subclass, strict=True)])
    sub_purity = np.mean(pairs[order[:, :n_neighbors]] == pairs[:, None])
    n = len(X)
    adjacency = [set() for _ in range(n)]
    for i in range(n):
        for j in order[i, :graph_k]:
            adjacency[i].add(int(j))
            adjacency[int(j)].add(i)
    seen, components = np.zeros(n, bool), 0
    for start in range(n):
        if seen[start]:
            continue
        components += 1
        stack = [start]
        seen[start] = True
        while stack:
            for j in adjacency[stack.pop()]:
                if not seen[j]:
                    seen[j] = True
                    stack.append(j)
    return purity, sub_purity, components


@pytest.mark.parametrize("seed", range(3))
def test_world_statistics_matches_a_plain_reference(seed):
    rng = np.random.RandomState(seed)
    centers = rng.normal(size=(4, 6)) * 3
    target = rng.randint(4, size=120)
    subclass = rng.randint(2, size=120)
    X = centers[target] + rng.normal(size=(120, 6)) + 0.5 * subclass[:, None]
    stats = world_statistics(X, target, subclass, n_neighbors=7, graph_k=3)
    purity, sub_purity, components = _reference_statistics(X, target, subclass, 7, 3)
    assert stats["knn_purity"] == pytest.approx(purity)
    assert stats["subclass_purity"] == pytest.approx(sub_purity)
    assert stats["n_components"] == components


def test_world_statistics_labels_and_scale():
    rng = np.random.RandomState(0)
    X = rng.normal(size=(80, 5))
    target = rng.randint(3, size=80)
    stats = world_statistics(X, target, n_neighbors=5, graph_k=5)
    assert np.isnan(stats["subclass_purity"])
    # Cosine neighbours: scaling rows and renaming labels change nothing.
    scaled = world_statistics(
        X * rng.uniform(0.5, 3, size=(80, 1)),
        np.array(list("abc"))[target],
        n_neighbors=5,
        graph_k=5,
    )
    assert scaled == pytest.approx(stats, nan_ok=True)


@pytest.mark.parametrize(
    "params, message",
    [
        ({"n_neighbors": 0}, "'n_neighbors' parameter of world_statistics"),
        ({"graph_k": 1.5}, "'graph_k' parameter of world_statistics"),
        ({"graph_k": 60}, "needs more than max\\(n_neighbors, graph_k\\) = 60 samples"),
    ],
)
def test_world_statistics_bad_input(params, message):
    X = np.random.RandomState(0).normal(size=(60, 4))
    with pytest.raises(ValueError, match=message):
        world_statistics(X, np.zeros(60), **params)


def test_world_statistics_bad_arrays():
    X = np.random.RandomState(0).normal(size=(60, 4))
    with pytest.raises(ValueError, match="inconsistent numbers of samples"):
        world_statistics(X, np.zeros(59), n_neighbors=5, graph_k=5)
    X[3] = 0
    with pytest.raises(ValueError, match="all-zero rows"):
        world_statistics(X, np.zeros(60), n_neighbors=5, graph_k=5)
