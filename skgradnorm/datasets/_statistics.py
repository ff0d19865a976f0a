"""How a world's (or real features') neighbourhoods look: neighbour purity, components."""

from __future__ import annotations

import numpy as np
from scipy.sparse import csr_matrix
from scipy.sparse.csgraph import connected_components
from sklearn.neighbors import NearestNeighbors
from sklearn.utils import (
    check_array,
    check_consistent_length,
    column_or_1d,
)
from sklearn.utils._param_validation import validate_params

from ._common import count

__all__ = ["world_statistics"]


@validate_params(
    {
        "X": ["array-like"],
        "target": ["array-like"],
        "subclass": ["array-like", None],
        "n_neighbors": count(1),
        "graph_k": count(1),
    },
    prefer_skip_nested_validation=True,
)
def world_statistics(X, target, subclass=None, *, n_neighbors=20, graph_k=50):
    """How the neighbourhoods of labelled embeddings look: purity and connectivity.

    Tells islands from connected classes. Methods that learn from neighbours (TAC's
    trained heads, :class:`~skgradnorm.MutualDistillationClusterer`) need a class to be
    one connected neighbourhood; k-means needs it compact. Use it to compare a synthetic
    world with real features, or to describe the worlds of a benchmark beside its scores.

    Neighbours are by cosine similarity (rows are L2-normalised here), a sample never
    being its own neighbour (``sklearn.neighbors.NearestNeighbors``, exact search).

    Parameters
    ----------
    X : array-like of shape (n_samples, n_features)
        Embeddings (more than ``max(n_neighbors, graph_k)`` rows, none all zero).
    target : array-like of shape (n_samples,)
        Class labels.
    subclass : array-like of shape (n_samples,) or None, default=None
        Sub-class labels, read within each class (the pair (class, sub-class) names a
        sub-class, as in the ``subclass`` field of this module's worlds).
    n_neighbors : int, default=20
        Neighbours of the purity statistics.
    graph_k : int, default=50
        Neighbours per sample of the graph whose components are counted.

    Returns
    -------
    stats : dict
        - ``knn_purity``: the mean over samples of the fraction of their ``n_neighbors``
          nearest neighbours in their class;
        - ``subclass_purity``: the same for sub-classes (NaN when ``subclass`` is None);
        - ``n_components``: the number of connected components of the symmetrised
          ``graph_k``-nearest-neighbour graph (``scipy.sparse.csgraph``). 1 means that
          the whole collection is one connected neighbourhood; around the number of
          sub-classes, that classes are made of islands.

    Examples
    --------
    >>> import numpy as np
    >>> from skgradnorm.datasets import world_statistics
    >>> rng = np.random.RandomState(0)
    >>> X = np.vstack([rng.normal(size=(60, 8)) + 5 * np.eye(8)[0],
    ...                rng.normal(size=(60, 8)) - 5 * np.eye(8)[0]])
    >>> world_statistics(X, np.repeat([0, 1], 60), graph_k=10)
    {'knn_purity': 1.0, 'subclass_purity': nan, 'n_components': 2}
    """
    X = check_array(X, dtype=[np.float64, np.float32], input_name="X")
    target = column_or_1d(target)
    check_consistent_length(X, target)
    k = max(n_neighbors, graph_k)
    if X.shape[0] <= k:
        raise ValueError(
            f"world_statistics needs more than max(n_neighbors, graph_k) = {k} samples; got "
            f"{X.shape[0]}. Pass smaller n_neighbors / graph_k or more samples."
        )
    norms = np.linalg.norm(X, axis=1, keepdims=True)
    if np.any(norms == 0):
        raise ValueError("X has all-zero rows, which have no cosine neighbours; drop them first.")
    neighbors = NearestNeighbors(n_neighbors=k).fit(X / norms).kneighbors(return_distance=False)
    _, labels = np.unique(target, return_inverse=True)
    knn_purity = float(np.mean(labels[neighbors[:, :n_neighbors]] == labels[:, None]))
    subclass_purity = float("nan")
    if subclass is not None:
        subclass = column_or_1d(subclass)
        check_consistent_length(X, subclass)
        _, _, sub = np.unique(
            np.stack([labels, np.unique(subclass, return_inverse=True)[1]], axis=1),
            axis=0,
            return_index=True,
            return_inverse=True,
        )
        sub = sub.ravel()
        subclass_purity = float(np.mean(sub[neighbors[:, :n_neighbors]] == sub[:, None]))
    n = X.shape[0]
    graph = csr_matrix(
        (
            np.ones(n * graph_k),
            neighbors[:, :graph_k].ravel(),
            np.arange(0, n * graph_k + 1, graph_k),
        ),
        shape=(n, n),
    )
    n_components, _ = connected_components(graph, directed=False)
    return {
        "knn_purity": knn_purity,
        "subclass_purity": subclass_purity,
        "n_components": int(n_components),
    }
