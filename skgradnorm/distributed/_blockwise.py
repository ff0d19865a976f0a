"""Block-wise ``predict`` / ``transform`` of fitted estimators on dask arrays.

The behaviour of dask-ml's ``ParallelPostFit``: fit on data that fits in memory (a sample),
then apply the fitted estimator to each block of a dask array independently, so the whole
array is never gathered in one process. dask-ml itself is not a dependency: it pulls in
pandas, numba and dask's dataframe stack for what is here a ``map_blocks`` call, so this
module implements the same behaviour in a few lines (and is tested against plain, in-memory
``predict``).

The fitted estimator enters the task graph once (as one ``dask.delayed`` value), so it is
sent to each worker once, not with every block.
"""

from __future__ import annotations

import uuid
from numbers import Integral

import numpy as np
from sklearn.base import BaseEstimator, MetaEstimatorMixin, _fit_context, clone
from sklearn.utils import check_random_state
from sklearn.utils._param_validation import HasMethods, Interval, validate_params
from sklearn.utils.validation import check_is_fitted


def _is_dask_array(X) -> bool:
    return type(X).__module__.startswith("dask.array") and hasattr(X, "map_blocks")


def _apply(estimator, method: str, X):
    """``estimator.<method>(X)`` one block of rows at a time when X is a dask array."""
    import dask

    if not _is_dask_array(X):
        return getattr(estimator, method)(X)
    if X.ndim != 2:
        raise ValueError(f"X must be a 2-D dask array (rows x features); got {X.ndim} dimensions.")
    if X.numblocks[1] != 1:
        X = X.rechunk({1: -1})  # each task needs whole rows
    # Learn the output's dtype and width from one in-memory row (the estimator is fitted,
    # so this is cheap): dask needs them before anything runs.
    probe = getattr(estimator, method)(np.ones((1, X.shape[1]), dtype=X.dtype))
    probe = np.asarray(probe)
    fitted = dask.delayed(estimator, name=f"skgradnorm-fitted-{uuid.uuid4().hex}")
    if probe.ndim == 1:
        return X.map_blocks(_call, fitted, method, drop_axis=1, dtype=probe.dtype, meta=probe[:0])
    return X.map_blocks(
        _call,
        fitted,
        method,
        chunks=(X.chunks[0], (probe.shape[1],)),
        dtype=probe.dtype,
        meta=probe[:0],
    )


def _call(block, estimator, method):
    return getattr(estimator, method)(block)


_BLOCKWISE_PARAMS = {
    "estimator": [HasMethods(["fit"])],
    "X": ["array-like", HasMethods(["map_blocks"])],
}


@validate_params(_BLOCKWISE_PARAMS, prefer_skip_nested_validation=True)
def predict_blockwise(estimator, X):
    """``estimator.predict`` on each block of rows of a dask array, lazily.

    Parameters
    ----------
    estimator : fitted estimator
        Any fitted estimator whose ``predict`` treats rows independently (classifiers,
        clusterers with a ``predict``, ...).
    X : dask.array.Array of shape (n_samples, n_features), or array-like
        The data. A numpy array is passed to ``estimator.predict`` as is.

    Returns
    -------
    y : dask.array.Array of shape (n_samples,)
        Lazy predictions, one block per block of rows of ``X`` (an ndarray when ``X`` is
        not a dask array).

    See Also
    --------
    transform_blockwise, BlockwisePostFit

    Examples
    --------
    >>> import dask.array as da
    >>> import numpy as np
    >>> from skgradnorm import SphericalKMeans
    >>> from skgradnorm.distributed import predict_blockwise
    >>> X = np.random.default_rng(0).normal(size=(1000, 8))
    >>> km = SphericalKMeans(3, n_init=2, random_state=0, device="cpu").fit(X[:200])
    >>> y = predict_blockwise(km, da.from_array(X, chunks=(250, 8)))
    >>> y.numblocks, bool((y.compute() == km.predict(X)).all())
    ((4,), True)
    """
    return _apply(estimator, "predict", X)


@validate_params(_BLOCKWISE_PARAMS, prefer_skip_nested_validation=True)
def transform_blockwise(estimator, X):
    """``estimator.transform`` on each block of rows of a dask array, lazily.

    Parameters
    ----------
    estimator : fitted estimator
        Any fitted transformer whose ``transform`` treats rows independently.
    X : dask.array.Array of shape (n_samples, n_features), or array-like
        The data. A numpy array is passed to ``estimator.transform`` as is.

    Returns
    -------
    Xt : dask.array.Array of shape (n_samples, n_output_features)
        Lazy output, one block per block of rows of ``X``.

    See Also
    --------
    predict_blockwise, BlockwisePostFit

    Examples
    --------
    >>> import dask.array as da
    >>> import numpy as np
    >>> from skgradnorm import SphericalKMeans
    >>> from skgradnorm.distributed import transform_blockwise
    >>> X = np.random.default_rng(0).normal(size=(1000, 8))
    >>> km = SphericalKMeans(3, n_init=2, random_state=0, device="cpu").fit(X[:200])
    >>> transform_blockwise(km, da.from_array(X, chunks=(250, 8))).shape
    (1000, 3)
    """
    return _apply(estimator, "transform", X)


class BlockwisePostFit(MetaEstimatorMixin, BaseEstimator):
    """Fit on an in-memory sample of a dask array, then predict and transform block-wise.

    What dask-ml's ``ParallelPostFit`` does, plus the sampling: ``fit`` draws at most
    ``max_fit_samples`` rows of a dask array uniformly at random, computes them into memory
    and fits a clone of ``estimator`` on them; ``predict`` and ``transform`` then apply the
    fitted clone to each block of rows (:func:`predict_blockwise`,
    :func:`transform_blockwise`), never gathering the whole array.

    Parameters
    ----------
    estimator : estimator
        The estimator to fit, e.g. :class:`~skgradnorm.LanguageAssistedClusterer` or
        :class:`~skgradnorm.SphericalKMeans`. It is cloned.
    max_fit_samples : int or None, default=100_000
        Rows drawn (without replacement) for ``fit``; ``None`` fits on every row (which
        must then fit in memory).
    random_state : int, RandomState instance or None, default=None
        Draws the sample.

    Attributes
    ----------
    estimator_ : estimator
        The fitted clone.
    fit_rows_ : ndarray of shape (n_fit_samples,)
        Indices of the rows that ``estimator_`` was fitted on, ascending.

    See Also
    --------
    predict_blockwise, transform_blockwise

    Notes
    -----
    A sample suffices to fit cluster centres: with :math:`m` rows drawn uniformly from
    :math:`n`, the centres' fitting objective is an unbiased estimate of the full one, and
    every row is then assigned to its nearest centre, :math:`\\hat y_i = \\arg\\max_k
    \\langle x_i, c_k \\rangle` for spherical k-means. The same idea is behind
    ``SphericalKMeans(max_samples=...)``.

    Examples
    --------
    >>> import dask.array as da
    >>> import numpy as np
    >>> from skgradnorm import SphericalKMeans
    >>> from skgradnorm.distributed import BlockwisePostFit
    >>> X = da.from_array(np.random.default_rng(0).normal(size=(2000, 8)), chunks=(500, 8))
    >>> model = BlockwisePostFit(SphericalKMeans(4, n_init=2, device="cpu"),
    ...                          max_fit_samples=300, random_state=0).fit(X)
    >>> model.fit_rows_.shape, model.predict(X).shape
    ((300,), (2000,))
    """

    _parameter_constraints: dict = {
        "estimator": [HasMethods(["fit"])],
        "max_fit_samples": [Interval(Integral, 1, None, closed="left"), None],
        "random_state": ["random_state"],
    }

    def __init__(self, estimator, *, max_fit_samples=100_000, random_state=None):
        self.estimator = estimator
        self.max_fit_samples = max_fit_samples
        self.random_state = random_state

    @_fit_context(prefer_skip_nested_validation=False)
    def fit(self, X, y=None, **fit_params):
        """Fit a clone of ``estimator`` on a sample of the rows of ``X``, in memory.

        Parameters
        ----------
        X : dask.array.Array or array-like of shape (n_samples, n_features)
            The data.
        y : dask.array.Array, array-like or None
            Targets, sampled like ``X`` (None for clusterers).
        **fit_params : dict
            Passed to ``estimator.fit``.

        Returns
        -------
        self : BlockwisePostFit
        """
        if not _is_dask_array(X) and not hasattr(X, "shape"):
            X = np.asarray(X)
        n = X.shape[0]
        rows = np.arange(n)
        if self.max_fit_samples is not None and n > self.max_fit_samples:
            rng = check_random_state(self.random_state)
            rows = np.sort(rng.choice(n, self.max_fit_samples, replace=False))
        Xs = X[rows] if len(rows) < n else X
        ys = None if y is None else (y[rows] if len(rows) < n else y)
        if _is_dask_array(Xs):
            Xs = Xs.compute()
        if ys is not None and _is_dask_array(ys):
            ys = ys.compute()
        self.estimator_ = clone(self.estimator).fit(Xs, ys, **fit_params)
        self.fit_rows_ = rows
        return self

    def predict(self, X):
        """Predict each block of rows with the fitted estimator (lazy for a dask array).

        Parameters
        ----------
        X : dask.array.Array or array-like of shape (n_samples, n_features)

        Returns
        -------
        y : dask.array.Array or ndarray of shape (n_samples,)
        """
        check_is_fitted(self)
        return predict_blockwise(self.estimator_, X)

    def transform(self, X):
        """Transform each block of rows with the fitted estimator (lazy for a dask array).

        Parameters
        ----------
        X : dask.array.Array or array-like of shape (n_samples, n_features)

        Returns
        -------
        Xt : dask.array.Array or ndarray of shape (n_samples, n_output_features)
        """
        check_is_fitted(self)
        return transform_blockwise(self.estimator_, X)
