"""Tests of the torch spherical k-means (function, Lloyd step and estimator)."""

import pickle

import numpy as np
import pytest
import torch
from sklearn.cluster import KMeans
from sklearn.exceptions import NotFittedError
from sklearn.metrics import adjusted_rand_score
from sklearn.utils.estimator_checks import parametrize_with_checks

from skgradnorm._spherical_kmeans import SphericalKMeans, _lloyd_iter, spherical_kmeans


def _unit(A):
    return A / np.linalg.norm(A, axis=1, keepdims=True)


def _separated(n=500, d=16, k=5, noise=0.05, seed=0):
    rng = np.random.RandomState(seed)
    directions = _unit(rng.randn(k, d))
    y = rng.randint(k, size=n)
    return _unit(directions[y] + noise * rng.randn(n, d)), y


def _overlapping(n=2000, d=32, seed=0):
    return _unit(np.random.RandomState(seed).randn(n, d))


def _objective_of_centers(X, centers):
    """Sum of cosines of samples to their argmax centre (centres renormalised)."""
    C = _unit(centers)
    return float((X @ C.T).max(axis=1).sum())


# --------------------------------------------------------------------------- function


def test_invariants_unit_centres_argmax_labels_objective():
    X = _overlapping(n=600, d=16, seed=1)
    centers, labels, objective, n_iter = spherical_kmeans(
        X, 7, n_init=2, random_state=0, device="cpu"
    )
    assert centers.shape == (7, 16)
    assert labels.shape == (600,) and labels.dtype == np.int64
    assert isinstance(objective, float) and isinstance(n_iter, int)
    assert 1 <= n_iter <= 300
    np.testing.assert_allclose(np.linalg.norm(centers, axis=1), 1.0, atol=1e-12)
    sim = X @ centers.T
    np.testing.assert_array_equal(labels, sim.argmax(axis=1))
    assert objective == pytest.approx(sim.max(axis=1).sum(), rel=1e-12)


def test_matches_sklearn_kmeans_on_separated_data():
    X, y = _separated()
    centers, labels, objective, _ = spherical_kmeans(X, 5, n_init=10, random_state=0, device="cpu")
    km = KMeans(n_clusters=5, n_init=10, random_state=0).fit(X)
    assert adjusted_rand_score(km.labels_, labels) == 1.0
    assert adjusted_rand_score(y, labels) == 1.0
    ref = _objective_of_centers(X, km.cluster_centers_)
    assert objective == pytest.approx(ref, rel=1e-6)


# k-means (Euclidean, spherical, faiss) only finds local optima, and the three
# implementations use different random seeds, so on overlapping data each lands on a slightly
# different optimum. Within 1% of the references means "as good a local optimum"; a broken
# update rule or a bad seeding would miss it by far more.
QUALITY = 0.99


def test_quality_against_sklearn_on_overlapping_data():
    X = _overlapping()
    _, _, objective, _ = spherical_kmeans(
        X, 20, n_init=3, max_iter=100, random_state=0, device="cpu"
    )
    km = KMeans(n_clusters=20, n_init=3, max_iter=100, random_state=0).fit(X)
    assert objective >= QUALITY * _objective_of_centers(X, km.cluster_centers_)


def test_quality_against_faiss_on_overlapping_data():
    faiss = pytest.importorskip("faiss")
    X = _overlapping()
    _, _, objective, _ = spherical_kmeans(
        X, 20, n_init=3, max_iter=100, random_state=0, device="cpu"
    )
    Xf = np.ascontiguousarray(X, dtype=np.float32)
    fk = faiss.Kmeans(32, 20, spherical=True, niter=100, nredo=3, seed=0,
                      max_points_per_centroid=10**6, verbose=False)
    fk.train(Xf)
    assert objective >= QUALITY * _objective_of_centers(X, fk.centroids.astype(np.float64))


def _numpy_lloyd_step(X, C):
    labels = (X @ C.T).argmax(axis=1)
    new = np.stack([X[labels == j].sum(axis=0) for j in range(C.shape[0])])
    return _unit(new), labels


@pytest.mark.parametrize("dtype, atol", [(np.float64, 1e-12), (np.float32, 1e-6)])
def test_lloyd_step_matches_numpy_reference(dtype, atol):
    X = _overlapping(n=203, d=8, seed=2).astype(dtype)
    C0 = X[[0, 50, 100, 150]].copy()
    new, labels = _lloyd_iter(torch.as_tensor(X), torch.as_tensor(C0), chunk_size=7)
    ref_new, ref_labels = _numpy_lloyd_step(X.astype(np.float64), C0.astype(np.float64))
    assert new.dtype == torch.from_numpy(X).dtype
    np.testing.assert_array_equal(labels.numpy(), ref_labels)
    np.testing.assert_allclose(new.numpy(), ref_new, atol=atol)


def test_empty_cluster_is_relocated():
    rng = np.random.RandomState(0)
    # All data in the half-space x_0 > 0; the second initial centre points the other way.
    X = _unit(np.abs(rng.randn(50, 4)) + np.array([2.0, 0, 0, 0]))
    C0 = np.array([[1.0, 0, 0, 0], [-1.0, 0, 0, 0], [0, 1.0, 0, 0]])
    assert set((X @ C0.T).argmax(axis=1)) != {0, 1, 2}  # centre 1 really attracts nothing
    new, labels = _lloyd_iter(torch.as_tensor(X), torch.as_tensor(C0), chunk_size=7)
    new, labels = new.numpy(), labels.numpy()
    assert np.isfinite(new).all()
    np.testing.assert_allclose(np.linalg.norm(new, axis=1), 1.0)
    assert np.bincount(labels, minlength=3).min() >= 1
    # the worst-served sample went to the empty cluster: its centre is that sample
    worst = (X @ C0.T).max(axis=1).argmin()
    assert labels[worst] == 1
    np.testing.assert_allclose(new[1], X[worst])


def test_duplicate_points_more_clusters_than_distinct_points():
    # 3 distinct directions, 5 clusters: k-means++ must pick duplicates, clusters empty out.
    X = np.repeat(np.eye(3), 4, axis=0)
    centers, labels, objective, _ = spherical_kmeans(X, 5, n_init=2, random_state=0, device="cpu")
    assert np.isfinite(centers).all()
    assert objective == pytest.approx(12.0)
    np.testing.assert_array_equal(labels, (X @ centers.T).argmax(axis=1))


def test_same_random_state_same_labels():
    X = _overlapping(n=500, d=16, seed=3)
    a = spherical_kmeans(X, 10, n_init=2, random_state=42, device="cpu")
    b = spherical_kmeans(X, 10, n_init=2, random_state=42, device="cpu")
    np.testing.assert_array_equal(a[1], b[1])
    np.testing.assert_array_equal(a[0], b[0])
    assert a[2] == b[2] and a[3] == b[3]
    # a different seed runs too (it may or may not give other labels)
    c = spherical_kmeans(X, 10, n_init=2, random_state=7, device="cpu")
    assert c[1].shape == a[1].shape


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_dtype_is_preserved(dtype):
    X = _overlapping(n=100, d=8).astype(dtype)
    centers, _, _, _ = spherical_kmeans(X, 3, n_init=1, random_state=0, device="cpu")
    assert centers.dtype == dtype
    km = SphericalKMeans(n_clusters=3, n_init=1, random_state=0, device="cpu").fit(X)
    assert km.cluster_centers_.dtype == dtype
    assert km.transform(X).dtype == dtype


def test_too_many_clusters_function():
    with pytest.raises(ValueError, match=r"n_clusters=5 .*n_samples=3"):
        spherical_kmeans(_overlapping(n=3, d=4), 5, device="cpu")


def test_verbose_prints_each_restart(capsys):
    X = _overlapping(n=50, d=4)
    spherical_kmeans(X, 2, n_init=3, random_state=0, device="cpu", verbose=True)
    out = capsys.readouterr().out
    assert out.count("objective=") == 3


# --------------------------------------------------------------------------- estimator


def test_estimator_methods_are_consistent():
    X, _ = _separated(n=300, d=16, k=4, seed=5)
    X_raw = X * np.random.RandomState(0).uniform(0.5, 3.0, size=(300, 1))  # norms do not matter
    km = SphericalKMeans(n_clusters=4, n_init=3, random_state=0, device="cpu").fit(X_raw)
    assert km.n_features_in_ == 16
    np.testing.assert_array_equal(km.predict(X_raw), km.labels_)
    np.testing.assert_array_equal(km.fit_predict(X_raw), km.labels_)
    T = km.transform(X_raw)
    assert T.shape == (300, 4)
    np.testing.assert_allclose(T, X @ km.cluster_centers_.T, atol=1e-12)
    np.testing.assert_array_equal(T.argmax(axis=1), km.labels_)
    assert km.score(X_raw) == pytest.approx(km.objective_, rel=1e-12)
    assert km.score(X_raw) == pytest.approx(T.max(axis=1).sum(), rel=1e-12)
    assert km.get_feature_names_out().tolist() == [f"sphericalkmeans{i}" for i in range(4)]


def test_predict_before_fit_raises():
    with pytest.raises(NotFittedError):
        SphericalKMeans(n_clusters=2).predict(np.ones((3, 2)))


def test_estimator_too_many_clusters():
    with pytest.raises(ValueError, match=r"n_clusters=10 .*n_samples=4.*n_clusters <= 4"):
        SphericalKMeans(n_clusters=10, device="cpu").fit(_overlapping(n=4, d=3))


def test_nan_raises():
    X = _overlapping(n=10, d=3)
    X[2, 1] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        SphericalKMeans(n_clusters=2, device="cpu").fit(X)


def test_zero_row_raises():
    X = _overlapping(n=10, d=3)
    X[4] = 0.0
    with pytest.raises(ValueError, match="zero norm"):
        SphericalKMeans(n_clusters=2, device="cpu").fit(X)
    km = SphericalKMeans(n_clusters=2, device="cpu").fit(_overlapping(n=10, d=3))
    with pytest.raises(ValueError, match="zero norm"):
        km.predict(X)


def test_pickle_round_trip():
    X = _overlapping(n=200, d=8, seed=4)
    km = SphericalKMeans(n_clusters=5, n_init=2, random_state=0, device="cpu").fit(X)
    km2 = pickle.loads(pickle.dumps(km))
    np.testing.assert_array_equal(km2.predict(X), km.predict(X))
    np.testing.assert_array_equal(km2.cluster_centers_, km.cluster_centers_)


def test_torch_device_object_is_accepted():
    X = _overlapping(n=50, d=4)
    km = SphericalKMeans(n_clusters=2, n_init=1, random_state=0, device=torch.device("cpu")).fit(X)
    assert km.labels_.shape == (50,)


def test_integer_input_is_accepted():
    # Stand-in for sklearn's check_estimators_dtypes (expected to fail below), on integer data
    # without all-zero rows.
    X = np.random.RandomState(0).randint(1, 4, size=(20, 5))
    for Xi in (X.astype(np.int64), X.astype(np.int32)):
        km = SphericalKMeans(n_clusters=3, n_init=2, random_state=1, device="cpu").fit(Xi)
        assert km.cluster_centers_.dtype == np.float64
        np.testing.assert_array_equal(km.predict(Xi), km.labels_)
        assert km.transform(Xi).shape == (20, 3)


def _expected_failed_checks(estimator):
    return {
        "check_estimators_dtypes": (
            "its data cast to int has an all-zero row; a zero vector has no direction, so "
            "fit rejects it by design (see test_integer_input_is_accepted)"
        ),
    }


@parametrize_with_checks(
    [SphericalKMeans(n_clusters=3, n_init=2, max_iter=20, random_state=0)],
    expected_failed_checks=_expected_failed_checks,
)
def test_sklearn_estimator_checks(estimator, check):
    check(estimator)
