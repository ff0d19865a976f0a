"""The heads' safeguard (``fallback="silhouette"``): the training-free clusters when the
heads separate the images worse, the heads' otherwise, ``predict`` consistent with either."""

from __future__ import annotations

from argparse import Namespace

import numpy as np
import pytest

from skgradnorm import GradNormNounSelector, MutualDistillationClusterer
from skgradnorm._cli._commands import fit_or_tune
from skgradnorm._warm_start import choose, describe_choice, joint_embedding
from skgradnorm.datasets import make_planted_world


def blobs(seed=0, n_per=60, k=3, d=16):
    rng = np.random.RandomState(seed)
    centers = rng.standard_normal((k, d)) * 3
    U = np.vstack([c + rng.standard_normal((n_per, d)) for c in centers])
    U /= np.linalg.norm(U, axis=1, keepdims=True)
    return U, np.repeat(np.arange(k), n_per), rng


def test_choose_keeps_the_better_separated_clusters():
    U, truth, rng = blobs()
    shuffled = rng.permutation(truth)
    chosen, sil = choose(U, truth, shuffled)
    assert chosen == "heads" and sil["heads"] > sil["training-free"]
    chosen, sil = choose(U, shuffled, truth)
    assert chosen == "training-free" and sil["heads"] < sil["training-free"]
    assert choose(U, truth, truth)[0] == "heads"  # a tie keeps the heads


def test_a_near_tie_keeps_the_heads_a_clear_gap_falls_back():
    """The training-free clusters win only by more than FALLBACK_MARGIN of the heads'
    silhouette: a slightly better separation is a tie, and a tie keeps the trained heads."""
    from skgradnorm._warm_start import FALLBACK_MARGIN

    U, truth, rng = blobs()
    for n_moved, expected in ((1, "heads"), (40, "training-free")):
        heads = truth.copy()
        moved = rng.choice(truth.size, n_moved, replace=False)
        heads[moved] = (heads[moved] + 1) % 3  # a few images put in the wrong blob
        chosen, sil = choose(U, heads, truth)
        gap = sil["training-free"] - sil["heads"]
        assert gap > 0  # the training-free clusters always separate better here
        assert (gap > FALLBACK_MARGIN * abs(sil["heads"])) == (expected == "training-free")
        assert chosen == expected


@pytest.fixture(scope="module")
def hard_world():
    """Islands joined wrongly by the warm start: training loses more (the safeguard's case)."""
    return make_planted_world(
        n_samples=2000, n_classes=10, n_subclasses=2, image_noise=1.0, random_state=4
    )


def fitted(world, **params):
    selector = GradNormNounSelector(world.noun_embeddings, random_state=4)
    model = MutualDistillationClusterer(10, selector=selector, random_state=4, device="cpu")
    return model.set_params(**params).fit(world.data)


def test_falls_back_to_the_training_free_clusters(hard_world):
    kept = fitted(hard_world)
    trained = fitted(hard_world, fallback=None)
    assert trained.chosen_ == "heads" and trained.silhouettes_ is None
    assert kept.chosen_ == "training-free"
    assert kept.silhouettes_["heads"] < kept.silhouettes_["training-free"]
    np.testing.assert_array_equal(kept.labels_, kept.init_labels_)
    assert not np.array_equal(trained.labels_, trained.init_labels_)
    # the heads are trained the same either way; only what is kept differs
    np.testing.assert_array_equal(trained.init_labels_, kept.init_labels_)
    assert trained.loss_curve_ == kept.loss_curve_
    # predict follows the kept clusters: the training-free centres on [u ; t]
    np.testing.assert_array_equal(kept.predict(hard_world.data), kept.labels_)
    proba = kept.predict_proba(hard_world.data[:50])
    assert proba.shape == (50, 10) and set(np.unique(proba)) <= {0.0, 1.0}
    np.testing.assert_allclose(proba.sum(axis=1), 1.0)
    assert kept.init_centers_.shape == (10, 2 * hard_world.data.shape[1])
    assert describe_choice(trained) is None
    assert describe_choice(kept).startswith("The training-free clusters were kept")


def test_the_cli_says_which_clusters_were_kept(hard_world):
    model = MutualDistillationClusterer(
        10,
        selector=GradNormNounSelector(hard_world.noun_embeddings, random_state=4),
        random_state=4,
        device="cpu",
    )
    fitted_model, _, reasons = fit_or_tune(model, hard_world.data, Namespace(tune=False))
    assert fitted_model.chosen_ == "training-free"
    assert reasons == [describe_choice(fitted_model)]
    assert f"{fitted_model.silhouettes_['heads']:.3f}" in reasons[0]


def test_keeps_the_heads_when_they_separate_better():
    world = make_planted_world(n_samples=2000, random_state=0)  # heads mend 3% of the labels
    selector = GradNormNounSelector(world.noun_embeddings, random_state=0)
    params = {"random_state": 0, "device": "cpu"}
    kept = MutualDistillationClusterer(5, selector=selector, **params).fit(world.data)
    trained = MutualDistillationClusterer(5, selector=selector, fallback=None, **params)
    trained.fit(world.data)
    assert kept.chosen_ == "heads" and np.mean(kept.labels_ != kept.init_labels_) > 0.01
    assert describe_choice(kept).startswith("The trained heads' clusters were kept")
    assert kept.silhouettes_["heads"] >= kept.silhouettes_["training-free"]
    np.testing.assert_array_equal(kept.labels_, trained.labels_)
    np.testing.assert_allclose(
        kept.predict_proba(world.data), trained.predict_proba(world.data), rtol=0, atol=0
    )


def test_tac_init_compares_nothing():
    world = make_planted_world(n_samples=300, n_classes=3, n_subclasses=1, random_state=0)
    selector = GradNormNounSelector(world.noun_embeddings, n_centers=9, random_state=0)
    model = MutualDistillationClusterer(
        3, selector=selector, init="tac", n_neighbors=10, n_epochs=2, random_state=0
    ).fit(world.data)
    assert model.chosen_ == "heads" and model.silhouettes_ is None
    assert model.init_labels_ is None and model.init_centers_ is None


def test_joint_embedding_is_unit():
    U, _, rng = blobs()
    Z = joint_embedding(U * 5.0, rng.standard_normal((U.shape[0], 8)))
    np.testing.assert_allclose(np.linalg.norm(Z, axis=1), 1.0, rtol=1e-6)
