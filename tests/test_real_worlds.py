"""Tests of benchmarks/real_worlds.py that need none of its extra packages.

The models and collections (benchmarks/requirements-evidence.txt) are not installed in CI,
so only the parts that run without them are tested here: the Procrustes bridge, the
per-world statistics, the ImageNet-class to noun-bank match, image preprocessing and the
cache folder setting.
"""

import importlib.util

import numpy as np
import pytest
import scipy.linalg
from conftest import benchmark_module
from scipy.sparse.csgraph import connected_components


@pytest.fixture(scope="module")
def rw():
    yield from benchmark_module("real_worlds")


def test_procrustes_matches_scipy_when_square(rw):
    rng = np.random.default_rng(0)
    a, b = rng.normal(size=(40, 6)), rng.normal(size=(40, 6))
    expected, _ = scipy.linalg.orthogonal_procrustes(a, b)
    np.testing.assert_allclose(rw.procrustes(a, b), expected, atol=1e-10)


def test_procrustes_is_the_square_solution_with_zero_padded_targets(rw):
    rng = np.random.default_rng(1)
    a, b = rng.normal(size=(30, 12)), rng.normal(size=(30, 5))
    q = rw.procrustes(a, b)
    assert q.shape == (12, 5)
    np.testing.assert_allclose(q.T @ q, np.eye(5), atol=1e-10)
    rotation, _ = scipy.linalg.orthogonal_procrustes(a, np.hstack([b, np.zeros((30, 7))]))
    np.testing.assert_allclose(q, rotation[:, :5], atol=1e-8)
    # and no other semi-orthogonal map aligns the rows better with their targets
    best = np.trace(q.T @ a.T @ b)
    for _ in range(20):
        other, _ = np.linalg.qr(rng.normal(size=(12, 5)))
        assert np.trace(other.T @ a.T @ b) < best


def test_bridge_quality_is_perfect_on_an_exact_isometry(rw):
    rng = np.random.default_rng(2)
    centred = rng.normal(size=(60, 20))
    centred -= centred.mean(axis=0)
    basis, _ = np.linalg.qr(centred)  # orthonormal, zero-mean columns: a^T a = I
    q0, _ = np.linalg.qr(rng.normal(size=(20, 8)))
    rows = 5.0 * basis + rng.normal(size=20)  # any common offset of the rows is removed
    quality = rw.bridge_quality(rows, basis @ q0, n_splits=3)
    assert quality["in_sample"] == 1.0
    assert 0.0 <= quality["held_out"] < 1.0


def _reference_statistics(data, target, purity_k, graph_k):
    sim = data @ data.T
    np.fill_diagonal(sim, -np.inf)
    order = np.argsort(-sim, axis=1, kind="stable")
    purity = np.mean(target[order[:, :purity_k]] == target[:, None])
    adjacency = np.zeros(sim.shape, dtype=bool)
    rows = np.repeat(np.arange(len(data)), graph_k)
    adjacency[rows, order[:, :graph_k].ravel()] = True
    n_components, _ = connected_components(adjacency | adjacency.T, directed=False)
    return purity, n_components


def test_world_statistics_against_a_plain_reference(rw):
    rng = np.random.default_rng(3)
    centres = rw._normalize(rng.normal(size=(3, 16)))
    target = np.repeat(np.arange(3), 30)
    # two clean classes far apart, one noisy class: purity below 1, several components
    noise = np.where(target[:, None] == 2, 2.0, 0.05)
    data = rw._normalize(centres[target] + noise * rng.normal(size=(90, 16))).astype(np.float32)
    class_text = centres.astype(np.float32)
    stats = rw.world_statistics(data, target, class_text, seeds=range(2), purity_k=5, graph_k=4)
    purity, n_components = _reference_statistics(data, target, 5, 4)
    assert stats["n"] == 90 and stats["K"] == 3 and stats["majority"] == pytest.approx(1 / 3)
    assert stats["purity"] == pytest.approx(purity)
    assert stats["components"] == n_components
    zero_shot = np.mean(np.argmax(data @ class_text.T, axis=1) == target)
    assert stats["zero_shot"] == pytest.approx(zero_shot)
    mean, std = stats["kmeans_acc"]
    assert 1 / 3 <= mean <= 1.0 and std >= 0.0


@pytest.mark.slow  # reads the whole noun bank and its glosses: a few seconds
def test_imagenet_classes_match_their_synsets_lemmas(rw):
    from skgradnorm.vocabulary import wordnet_definitions, wordnet_nouns

    if importlib.util.find_spec("timm") is None:
        pytest.skip("timm (installed with open_clip_torch) is absent")
    wnids, rows = rw.imagenet_classes()
    paper, glosses = wordnet_nouns("paper"), wordnet_definitions("paper")
    assert len(wnids) == len(rows) == 1000 and len(set(wnids)) == 1000
    assert wnids[0] == "n01440764"
    assert sorted(paper[i] for i in rows[0]) == ["Tinca_tinca", "tench"]
    for r in rows:  # each class: one synset (one gloss), distinct lemmas
        assert r and len({glosses[i] for i in r}) == 1 and len({paper[i] for i in r}) == len(r)


def test_images_are_composited_on_white_and_scaled_to_unit_range(rw):
    from PIL import Image

    image = Image.new("RGBA", (40, 20), (0, 0, 0, 0))  # fully transparent
    image.paste((0, 0, 0, 255), (18, 8, 22, 12))  # an opaque black square in the centre
    x = rw._to_tensor(image, 16)
    assert x.shape == (3, 16, 16) and x.dtype == np.float32
    assert x.max() == pytest.approx(1.0) and x.min() >= -1.0
    assert x[:, 0, 0] == pytest.approx([1.0, 1.0, 1.0])  # white background
    assert x[:, 8, 8].max() < 0.0  # the dark square, centre-cropped


def test_cache_folder_follows_the_environment_variable(rw, tmp_path, monkeypatch):
    monkeypatch.setenv(rw.CACHE_ENV, str(tmp_path / "evidence"))
    assert rw.cache_root() == tmp_path / "evidence"
    assert (tmp_path / "evidence").is_dir()
    assert rw.cache_root(tmp_path / "other") == tmp_path / "other"


def test_unknown_world_and_model_are_refused_before_any_work(rw):
    with pytest.raises(ValueError, match="Unknown real world 'cifar'"):
        rw.load_real_world("cifar")
    with pytest.raises(ValueError, match="image_model must be one of"):
        rw.load_real_world("digits", image_model="b7")
