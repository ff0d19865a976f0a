"""make_planted_world: shapes, determinism, and the structure the tests rely on."""

import numpy as np
import pytest

from skgradnorm.datasets import make_planted_world


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
    with pytest.raises(ValueError, match="n_classes must be an integer >= 1"):
        make_planted_world(n_classes=0)
    with pytest.raises(ValueError, match="n_features must be an integer >= 2"):
        make_planted_world(n_features=1.5)
