"""Shared test set-up: no downloads, CPU only, few threads, and shared fixtures."""

import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")  # tests never download anything

import numpy as np  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402

torch.set_num_threads(min(2, torch.get_num_threads()))


def random_noun_bank(X, n_nouns=20, seed=0):
    """A deterministic random noun bank matching X's dimension (a callable noun_embeddings).

    Module-level so that estimators holding it can be pickled and cloned.
    """
    return np.random.default_rng(seed).normal(size=(n_nouns, X.shape[1]))


@pytest.fixture(scope="session")
def planted_world():
    """The default planted world (600 images, 5 classes) with a fixed seed."""
    from skgradnorm.datasets import make_planted_world

    return make_planted_world(random_state=0)
