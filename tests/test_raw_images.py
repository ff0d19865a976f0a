"""The estimators on raw images: an encoder embeds the images and the noun bank.

A tiny open_clip model with random weights (tests/_clip_fixtures.py) stands in for CLIP:
it gives real shapes and code paths, not semantics, so these tests check the plumbing
(inputs, pipelines, caching), not clustering quality (the planted-world tests do that).
"""

from __future__ import annotations

import numpy as np
import pytest
from _clip_fixtures import make_tiny_encoder, random_image
from PIL import Image
from sklearn.metrics import make_scorer
from sklearn.model_selection import GridSearchCV
from sklearn.pipeline import Pipeline

from skgradnorm import GradNormNounSelector, LanguageAssistedClusterer
from skgradnorm.metrics import clustering_accuracy_score

VOCABULARY = ["cat", "dog", "car", "tree", "boat", "house", "bird", "fish", "lamp", "cup"]


@pytest.fixture
def image_folder(tmp_path):
    """12 small generated images in three colour families, with their family as label."""
    folder = tmp_path / "images"
    (folder / "sub").mkdir(parents=True)
    paths, labels = [], []
    for i in range(12):
        img = random_image(seed=i, size=(24, 30)) // 4
        img[..., i % 3] += 180  # a dominant channel per family
        path = folder / ("sub" if i % 2 else ".") / f"img_{i}.png"
        Image.fromarray(img).save(path)
        paths.append(str(path.resolve()))
        labels.append(i % 3)
    return paths, np.array(labels)


def test_pipeline_fit_predict_on_image_paths(image_folder, tmp_path):
    paths, _ = image_folder
    enc = make_tiny_encoder(cache_dir=tmp_path / "cache")
    pipe = Pipeline(
        [
            (
                "laic",
                LanguageAssistedClusterer(
                    3, encoder=enc, vocabulary=VOCABULARY, n_init=2, random_state=0
                ),
            )
        ]
    )
    labels = pipe.fit_predict(paths)
    assert labels.shape == (12,) and set(labels) <= {0, 1, 2}
    laic = pipe["laic"]
    assert laic.n_features_in_ == enc.transform(paths[:1]).shape[1]
    assert set(laic.selector_.selected_nouns_) <= set(VOCABULARY)
    np.testing.assert_array_equal(pipe.predict(paths), labels)
    # the same images as embeddings give the same clustering
    np.testing.assert_array_equal(laic.predict(enc.transform(paths)), labels)


def test_pipeline_with_an_encoder_step_feeding_embeddings(image_folder, tmp_path):
    paths, _ = image_folder
    enc = make_tiny_encoder(cache_dir=tmp_path / "cache")
    direct = LanguageAssistedClusterer(
        3, encoder=enc, vocabulary=VOCABULARY, n_init=2, random_state=0
    )
    pipe = Pipeline(
        [
            ("clip", make_tiny_encoder(cache_dir=tmp_path / "cache")),
            (
                "laic",
                LanguageAssistedClusterer(
                    3, encoder=enc, vocabulary=VOCABULARY, n_init=2, random_state=0
                ),
            ),
        ]
    )
    np.testing.assert_array_equal(pipe.fit_predict(paths), direct.fit_predict(paths))


def test_selector_embeds_images_and_nouns(image_folder, tmp_path):
    paths, _ = image_folder
    enc = make_tiny_encoder(cache_dir=tmp_path / "cache")
    sel = GradNormNounSelector(
        encoder=enc, vocabulary=VOCABULARY, n_centers=3, top_k=2, random_state=0
    )
    T = sel.fit_transform([Image.open(p) for p in paths])  # PIL images work too
    assert T.shape == (12, enc.transform(paths[:1]).shape[1])
    np.testing.assert_allclose(T, sel.transform(paths), atol=1e-6)
    np.testing.assert_allclose(
        sel.selected_embeddings_, enc.encode_nouns(VOCABULARY)[sel.selected_indices_], atol=1e-6
    )


@pytest.mark.slow
def test_grid_search_embeds_the_noun_bank_once(image_folder, tmp_path, prompt_calls):
    paths, labels = image_folder
    # One fit, with its own cache, tells how many text-tower computations the bank needs.
    LanguageAssistedClusterer(
        3, encoder=make_tiny_encoder(cache_dir=tmp_path / "one"), vocabulary=VOCABULARY, n_init=1
    ).fit(paths)
    one_fit = prompt_calls["calls"]
    assert one_fit >= 1
    prompt_calls["calls"] = 0
    search = GridSearchCV(
        LanguageAssistedClusterer(
            3,
            selector=GradNormNounSelector(n_centers=3),
            encoder=make_tiny_encoder(cache_dir=tmp_path / "grid"),
            vocabulary=VOCABULARY,
            n_init=1,
            random_state=0,
        ),
        {"selector__temperature": [0.02, 0.05], "selector__top_k": [1, 2]},
        scoring=make_scorer(clustering_accuracy_score),
        cv=2,
    )
    search.fit(paths, labels)  # 4 candidates x 2 folds + 1 refit = 9 fits
    assert len(search.cv_results_["params"]) == 4
    assert prompt_calls["calls"] == one_fit  # the first fit embeds, the 8 others hit the cache


def test_errors_on_raw_images(image_folder, tmp_path):
    paths, _ = image_folder
    enc = make_tiny_encoder(cache_dir=False)
    with pytest.raises(ValueError, match="vocabulary is empty"):
        GradNormNounSelector(encoder=enc, vocabulary=[]).fit(paths)
    with pytest.raises(ValueError, match="could not convert|dtype"):
        LanguageAssistedClusterer(3, selector=GradNormNounSelector(np.eye(4))).fit(
            paths
        )  # no encoder
    broken = tmp_path / "broken.png"
    broken.write_bytes(b"not an image")
    with pytest.raises(ValueError, match="broken.png"):
        LanguageAssistedClusterer(3, encoder=enc, vocabulary=VOCABULARY).fit(paths + [str(broken)])
