"""Bad and extreme inputs to the Python API: each gives a clear error at once, or a right
result (issue 19's list; ``scripts/replay_bad_inputs.py`` replays the same cases)."""

import time

import numpy as np
import pytest
from sklearn.utils._param_validation import InvalidParameterError

from skgradnorm import LanguageAssistedClusterer, SphericalKMeans
from skgradnorm._utils._validation import l2_normalize_rows, safe_row_norms
from skgradnorm.metrics import clustering_accuracy_score, clustering_metrics


@pytest.mark.parametrize("estimator", [SphericalKMeans, LanguageAssistedClusterer])
def test_a_bool_is_not_a_number_of_clusters(estimator):
    X = np.random.default_rng(0).normal(size=(20, 5))
    with pytest.raises(InvalidParameterError, match="Got True"):
        estimator(n_clusters=True).fit(X)
    assert SphericalKMeans(np.int64(2), random_state=0).fit(X).n_clusters_ == 2


# scikit-learn's finiteness check sums X first, which overflows here (then checks each value)
@pytest.mark.filterwarnings("ignore:invalid value encountered:RuntimeWarning")
def test_float32_norms_that_overflow_give_unit_rows():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(40, 6)).astype(np.float32)
    X[:20] += 3.0
    big = X * np.float32(3e38 / np.abs(X).max())  # norms above float32's largest number
    norms = safe_row_norms(big)
    assert np.isfinite(norms).all()
    unit = l2_normalize_rows(big, name="X")
    assert unit.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(unit.astype(np.float64), axis=1), 1.0, rtol=1e-5)
    np.testing.assert_allclose(unit, l2_normalize_rows(X, name="X"), atol=1e-5)
    ref = SphericalKMeans(2, n_init=2, random_state=0).fit(X).labels_
    got = SphericalKMeans(2, n_init=2, random_state=0).fit(big).labels_
    np.testing.assert_array_equal(ref, got)


def test_accuracy_of_mixed_type_labels():
    y = np.array([1, "a", 1, "a", "1"], dtype=object)
    assert clustering_accuracy_score(y, [0, 1, 0, 1, 1]) == pytest.approx(0.8)
    # 1 and "1" are different classes; a plain list of mixed values is not made strings
    assert clustering_accuracy_score([1, "a", 1, "1"], [0, 1, 0, 1]) == pytest.approx(0.75)
    m = clustering_metrics([1, "a", (2, 3), "a"], [0, 1, 2, 1])
    assert m["ACC"] == 1.0 and m["n_classes"] == 3 and m["NMI"] == pytest.approx(1.0)
    with pytest.raises(TypeError, match="hashable"):
        clustering_accuracy_score(np.array([[1], [2, 3]], dtype=object), [0, 1])


def test_a_huge_k_range_is_refused_at_once():
    X = np.random.default_rng(0).normal(size=(40, 5))
    start = time.perf_counter()
    with pytest.raises(ValueError, match="reaches K=99999999 but there are only 40"):
        SphericalKMeans("auto", n_clusters_range=range(2, 10**8)).fit(X)
    assert time.perf_counter() - start < 5  # not the minutes it took to list the range
    with pytest.raises(ValueError, match="reaches K=41"):
        SphericalKMeans("auto", n_clusters_range=range(10**8, 2, -1)[-39:]).fit(X)


def test_nouns_with_a_lone_surrogate_are_refused(tiny_encoder):
    with pytest.raises(ValueError, match=r"nouns\[1\] .* is not valid text"):
        tiny_encoder.encode_nouns(["dog", "ca\ud800t"])
    assert tiny_encoder.encode_nouns(["dög"]).shape == (1, 32)


@pytest.mark.parametrize("kind", ["identical", "rank_one", "two_points"])
def test_the_map_of_points_all_alike_does_not_crash(kind):
    """scikit-learn's t-SNE crashed the process (segmentation fault) on identical rows."""
    from skgradnorm._reporting._report_data import collection_map

    rng = np.random.default_rng(0)
    X = np.tile(rng.normal(size=(1, 64)), (12, 1))
    if kind == "rank_one":
        X = X * np.linspace(1, 2, 12)[:, None]
    elif kind == "two_points":
        X[6:] = rng.normal(size=64)
    rows, coords, method = collection_map(X, method="tsne")
    assert rows.shape == (12,) and np.isfinite(coords).all()
    assert method == ("pca" if kind == "identical" else "tsne")


def test_an_extreme_image_is_cropped_before_it_is_resized(tiny_encoder, tmp_path, monkeypatch):
    """A 20,000 x 1 picture is not first resized to 640,000 x 32 pixels (or, for 224-pixel
    models, 4,480,000 x 224: gigabytes) to keep a square of it."""
    from PIL import Image

    from skgradnorm._clip import _images

    rng = np.random.default_rng(0)
    wide = Image.fromarray(rng.integers(0, 255, (1, 20000, 3), dtype=np.uint8))
    kept = _images.keep_cropped_part(wide, 32, 32)
    assert kept.size[1] == 1 and kept.size[0] < 100
    photo = Image.fromarray(rng.integers(0, 255, (300, 400, 3), dtype=np.uint8))
    assert _images.keep_cropped_part(photo, 32, 32) is photo  # ordinary shapes: untouched
    # The embedding of a long strip is that of the whole strip (the margin keeps every
    # pixel the resampling filter reads for the centre square).
    strip = rng.integers(0, 255, (12, 900, 3), dtype=np.uint8)
    path = tmp_path / "strip.png"
    Image.fromarray(strip).save(path)
    cropped = tiny_encoder.set_params(cache_dir=False).transform([str(path)])
    sizes = []
    real = _images.keep_cropped_part
    monkeypatch.setattr(_images, "keep_cropped_part", lambda im, s, c: sizes.append(im.size) or im)
    whole = tiny_encoder.transform([str(path)])
    assert sizes == [(900, 12)] and real(Image.fromarray(strip), 32, 32).size[0] < 900
    np.testing.assert_allclose(cropped, whole, atol=1e-6)


def test_a_file_that_is_no_image_is_said_in_words(tiny_encoder, tmp_path):
    """Not Pillow's "cannot identify image file <_io.BufferedReader name=4>", which names a
    file descriptor rather than the problem."""
    from skgradnorm.exceptions import UnreadableImageError

    for name, data in (("empty.jpg", b""), ("page.png", b"<html></html>")):
        (tmp_path / name).write_bytes(data)
    with pytest.raises(UnreadableImageError) as info:
        tiny_encoder.set_params(cache_dir=False).transform(
            [str(tmp_path / "empty.jpg"), str(tmp_path / "page.png")]
        )
    text = str(info.value)
    assert text.count("not an image Pillow can read") == 2 and "BufferedReader" not in text
