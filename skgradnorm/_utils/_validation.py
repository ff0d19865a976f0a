"""Input checks shared by functions and estimators (errors say what was wrong and what to do)."""

from __future__ import annotations

import numpy as np
from sklearn.utils import check_array
from sklearn.utils._param_validation import Interval
from sklearn.utils.extmath import row_norms
from sklearn.utils.validation import validate_data


class Count(Interval):
    """scikit-learn's ``Interval(Integral, ...)`` constraint, refusing ``bool``.

    ``True`` is an ``Integral`` in Python, so ``Interval`` alone takes
    ``n_clusters=True`` for 1 cluster; a count given as a bool is a mistake.

    Examples
    --------
    >>> Count(1, None, closed="left").is_satisfied_by(True)
    False
    """

    def __init__(self, left, right, *, closed):
        from numbers import Integral

        super().__init__(Integral, left, right, closed=closed)

    def is_satisfied_by(self, val):
        return not isinstance(val, (bool, np.bool_)) and super().is_satisfied_by(val)


def check_embedding_matrix(array, *, name: str, allow_empty: bool = False) -> np.ndarray:
    """Validate a 2-D float matrix of embeddings (rows are items) and return it as numpy.

    Raises ``ValueError`` naming ``name`` for 1-D input, NaN or infinity, and (unless
    ``allow_empty``) zero rows or zero columns.
    """
    if array is None:
        raise ValueError(f"{name} is None; pass a 2-D array of shape (n_items, n_features).")
    arr = np.asarray(array) if not hasattr(array, "shape") else array
    if getattr(arr, "ndim", 2) != 2:
        raise ValueError(
            f"{name} must be a 2-D array of shape (n_items, n_features); got an array with "
            f"shape {tuple(arr.shape)}. Reshape a single embedding with x.reshape(1, -1)."
        )
    if not allow_empty and (arr.shape[0] == 0 or arr.shape[1] == 0):
        raise ValueError(
            f"{name} is empty (shape {tuple(arr.shape)}); it needs at least one row and one column."
        )
    return check_array(
        array,
        dtype=[np.float64, np.float32],
        ensure_all_finite=True,
        ensure_min_samples=0 if allow_empty else 1,
        ensure_min_features=0 if allow_empty else 1,
        input_name=name,
    )


def safe_row_norms(X: np.ndarray) -> np.ndarray:
    """L2 norm of every row of ``X``, without overflow or underflow.

    The norms come from scikit-learn's ``row_norms`` (an ``einsum``), which makes no
    temporary as large as ``X``: at ImageNet-1K scale (1.28M x 512 float32, 2.6 GB)
    ``np.linalg.norm`` would first square a full copy. Rows whose squared norm overflows
    (``X * 1e200``) or underflows (``X * 1e-200``) are recomputed as ``m * ||x / m||`` with
    ``m`` their largest absolute entry, as LAPACK's ``nrm2`` does. When such a norm does not
    fit the dtype of ``X`` (float32 rows of values near 3e38 have norms above float32's
    largest number), the norms are returned in float64: dividing the float32 rows by them
    then gives unit rows, not zeros.
    """
    with np.errstate(over="ignore", under="ignore"):
        norms = row_norms(X)
    tiny = np.sqrt(np.finfo(norms.dtype).tiny) / np.finfo(norms.dtype).eps
    bad = np.flatnonzero(~np.isfinite(norms) | (norms < tiny))
    if bad.size:
        rows = np.asarray(X[bad], dtype=np.float64)  # m * ||x / m|| may overflow float32
        scale = np.abs(rows).max(axis=1)
        ok = scale > 0
        fixed = scale[ok] * row_norms(rows[ok] / scale[ok, None])
        if norms.dtype != np.float64 and fixed.size and fixed.max() > np.finfo(norms.dtype).max:
            norms = norms.astype(np.float64)
        norms[bad[ok]] = fixed
    return norms


def nonzero_row_norms(X: np.ndarray, *, name: str) -> np.ndarray:
    """L2 norm of every row of ``X`` (:func:`safe_row_norms`); a zero row is an error.

    A zero vector has no direction, so it cannot be compared by cosine.
    """
    norms = safe_row_norms(X)
    zero = np.flatnonzero(norms == 0)
    if zero.size:
        raise ValueError(
            f"{name} has {zero.size} row(s) of zero norm (first at index {zero[0]}); embeddings "
            "are compared by direction (cosine), so every row needs a non-zero norm."
        )
    return norms


def l2_normalize_rows(
    X: np.ndarray, *, name: str, rows=None, dtype=None, norms=None, copy=True, zero="raise"
) -> np.ndarray:
    """Rows of ``X`` (or of ``X[rows]``) scaled to unit L2 norm, in ``dtype``.

    This is the package's one row normaliser.

    Parameters
    ----------
    X : ndarray of shape (n, d)
        Float rows.
    name : str
        What ``X`` is, for error messages.
    rows : array of int or None
        Normalise only these rows (a copy). Every row of ``X`` is still checked for a zero
        norm when ``zero="raise"``; pass ``norms`` to reuse that check.
    dtype : numpy dtype or None
        Output dtype (None: that of ``X``).
    norms : ndarray of shape (n,) or None
        Row norms already computed (by :func:`nonzero_row_norms`).
    copy : bool
        False scales ``X`` itself when it already has ``dtype`` and ``rows`` is None: no
        array as large as ``X`` is made (embedding 1.28M x 512 images would otherwise hold
        two 2.6 GB copies).
    zero : {"raise", "keep"}
        A zero row is an error (``"raise"``: it has no direction), or stays zero
        (``"keep"``, for model outputs that are checked elsewhere).
    """
    if norms is None:
        norms = nonzero_row_norms(X, name=name) if zero == "raise" else safe_row_norms(X)
    if rows is not None:
        out = X[rows].astype(dtype or X.dtype, copy=False)  # fancy indexing already copies
        norms = norms[rows]
    elif copy:
        out = np.array(X, dtype=dtype or X.dtype, copy=True)
    else:
        out = np.asarray(X, dtype=dtype or X.dtype)
    if zero == "keep":
        norms = np.maximum(norms, np.finfo(out.dtype).tiny)
    out /= norms[:, None]
    return out


def check_n_clusters(n_clusters: int, n_samples: int, *, name: str = "n_clusters") -> int:
    """The one check that a number of clusters (or centres) fits the number of samples."""
    if n_clusters > n_samples:
        raise ValueError(
            f"{name}={n_clusters} is larger than n_samples={n_samples}; use "
            f"{name} <= {n_samples}, or pass more samples."
        )
    return int(n_clusters)


def check_same_dimension(a: np.ndarray, b: np.ndarray, *, a_name: str, b_name: str) -> None:
    """Raise ``ValueError`` when two embedding matrices do not live in the same space."""
    if a.shape[1] != b.shape[1]:
        raise ValueError(
            f"{a_name} has {a.shape[1]} features but {b_name} has {b.shape[1]}; images and "
            "nouns must be embedded by the same model (one shared embedding space)."
        )


def looks_like_embeddings(X) -> bool:
    """True for a 2-D float matrix (or a list of vectors, or a dataframe): embeddings.

    Anything else (file paths, PIL images, uint8 image arrays) is taken for images.
    """
    if isinstance(X, np.ndarray):
        return X.ndim == 2 and X.dtype.kind == "f"
    if hasattr(X, "dtypes") or hasattr(X, "__dataframe__"):
        return True
    if isinstance(X, (list, tuple)) and len(X) > 0:
        first = X[0]
        return isinstance(first, (list, tuple)) or (
            isinstance(first, np.ndarray) and first.ndim == 1
        )
    return False


def embed_if_images(X, encoder):
    """Embed ``X`` with ``encoder`` (anything with ``transform``, e.g. a CLIPEncoder) unless
    ``X`` already is a matrix of embeddings."""
    if encoder is None or looks_like_embeddings(X):
        return X
    return encoder.transform(X)


def validated_images(estimator, X, encoder, *, reset):
    """``X`` as validated float image embeddings: embedded by ``encoder`` first when it
    holds images (paths, PIL images, uint8 arrays), then checked by scikit-learn's
    ``validate_data`` (``reset=True`` in ``fit``: records ``n_features_in_``)."""
    X = embed_if_images(X, encoder)
    return validate_data(estimator, X, dtype=[np.float64, np.float32], reset=reset)
