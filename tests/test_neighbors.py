"""The chunked inner-product neighbour search against a plain numpy reference."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import random_unit_rows

from skgradnorm._cluster._neighbors import drop_self, nearest_neighbors
from skgradnorm._cluster._search import faiss_available


def reference_neighbors(X, k):
    """The whole n x n similarity matrix, the diagonal removed, sorted: slow and plain."""
    S = X.astype(np.float64) @ X.astype(np.float64).T
    np.fill_diagonal(S, -np.inf)
    return np.argsort(-S, axis=1, kind="stable")[:, :k]


@pytest.mark.parametrize("seed", range(3))
@pytest.mark.parametrize("chunk_size", [None, 1, 7, 500])
def test_torch_backend_equals_reference(seed, chunk_size):
    X = random_unit_rows(seed, 97, 8)
    got = nearest_neighbors(X, 10, backend="torch", device="cpu", chunk_size=chunk_size)
    assert got.dtype == np.int64 and got.shape == (97, 10)
    np.testing.assert_array_equal(got, reference_neighbors(X, 10))


@pytest.mark.skipif(not faiss_available(), reason="faiss is not installed")
@pytest.mark.parametrize("seed", range(3))
def test_faiss_backend_equals_reference(seed):
    X = random_unit_rows(seed, 300, 16, dtype=np.float32)
    got = nearest_neighbors(X, 12, backend="faiss")
    ref = reference_neighbors(X, 12)
    assert got.dtype == np.int64
    # float32 rounding may swap two near-equal neighbours: compare the similarities
    S = X.astype(np.float64) @ X.astype(np.float64).T
    rows = np.arange(300)[:, None]
    np.testing.assert_allclose(S[rows, got], S[rows, ref], atol=1e-5)
    assert np.mean(got == ref) > 0.99
    assert not np.any(got == np.arange(300)[:, None])


def test_auto_backend_equals_torch_backend():
    X = random_unit_rows(5, 120, 6, dtype=np.float32)
    np.testing.assert_array_equal(
        nearest_neighbors(X, 5, backend="auto", device="cpu"),
        nearest_neighbors(X, 5, backend="torch", device="cpu"),
    )


@pytest.mark.parametrize("backend", ["torch", "faiss"])
def test_duplicated_rows_never_list_themselves(backend):
    if backend == "faiss" and not faiss_available():
        pytest.skip("faiss is not installed")
    base = random_unit_rows(0, 10, 5, dtype=np.float32)
    X = np.vstack([base, base, base])  # every row has two exact twins
    got = nearest_neighbors(X, 4, backend=backend, device="cpu")
    assert not np.any(got == np.arange(30)[:, None])
    twins = {i: {(i + 10) % 30, (i + 20) % 30} for i in range(30)}
    assert all(set(got[i, :2]) == twins[i] for i in range(30))


def test_drop_self_where_self_is_absent_drops_the_farthest():
    hits = np.array([[0, 3, 2], [2, 0, 3], [3, 0, 2]])
    # row 0: itself first; row 1: itself absent (drop the last); row 2: itself last
    np.testing.assert_array_equal(drop_self(hits, 2), [[3, 2], [2, 0], [3, 0]])


@pytest.mark.parametrize("k", [5, 6])
def test_too_many_neighbours_is_one_clear_error(k):
    with pytest.raises(ValueError, match=r"n_neighbors=\d+ needs at least .* n_samples=5"):
        nearest_neighbors(random_unit_rows(0, 5, 3), k)


def test_zero_neighbours_is_an_error():
    with pytest.raises(ValueError, match="n_neighbors=0 must be at least 1"):
        nearest_neighbors(random_unit_rows(0, 5, 3), 0)


def test_unknown_backend():
    with pytest.raises(ValueError, match="backend='gpu' is not one of"):
        nearest_neighbors(random_unit_rows(0, 5, 3), 2, backend="gpu")
