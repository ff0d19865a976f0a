"""The numbers behind the report's charts (no I/O, no HTML).

- :func:`class_table` compares cluster labels with known classes: the contingency table
  (classes x clusters), the clusters in the order of their Hungarian match to the classes
  (``scipy.optimize.linear_sum_assignment``, as for ACC), and each cluster's class mix;
- :func:`collection_map` places the collection in two dimensions for the map (PCA by
  default, t-SNE on request; both from scikit-learn), on a bounded sample of points.
"""

from __future__ import annotations

import numpy as np

__all__ = ["MAP_METHODS", "TSNE_AUTO_MAX", "class_table", "collection_map"]

#: The ways :func:`collection_map` can place the points.
MAP_METHODS = ("pca", "tsne", "auto")

#: ``method="auto"`` uses t-SNE up to this many images, PCA above (t-SNE of 1,000 points
#: takes seconds on 2 cores; see benchmarks/bench_report.py).
TSNE_AUTO_MAX = 1000


def class_table(true_labels, labels, n_clusters):
    """Known classes against cluster labels.

    Parameters
    ----------
    true_labels : array-like of shape (n_samples,)
        The known classes (any sortable hashable values).
    labels : array-like of shape (n_samples,)
        Cluster labels in ``range(n_clusters)``.
    n_clusters : int
        The number of clusters (empty ones included).

    Returns
    -------
    table : dict
        ``classes`` (list of str, sorted), ``counts`` (int ndarray of shape
        (n_classes, n_clusters): images of each class in each cluster), ``cluster_order``
        (list of int: the clusters matched to the classes by the Hungarian algorithm, in
        the classes' order, then the unmatched ones, largest first) and ``matched``
        (dict cluster -> class index).

    Examples
    --------
    >>> t = class_table(["a", "a", "b", "b", "b"], [1, 1, 0, 0, 2], 3)
    >>> t["classes"], t["counts"].tolist(), t["cluster_order"], t["matched"]
    (['a', 'b'], [[0, 2, 0], [2, 0, 1]], [1, 0, 2], {1: 0, 0: 1})
    """
    from scipy.optimize import linear_sum_assignment

    y = np.asarray(true_labels)
    labels = np.asarray(labels, dtype=np.intp)
    if y.shape[0] != labels.shape[0]:
        raise ValueError(f"{y.shape[0]} known classes for {labels.shape[0]} images.")
    classes, y_idx = np.unique(y, return_inverse=True)
    counts = np.zeros((classes.size, n_clusters), dtype=np.int64)
    np.add.at(counts, (y_idx.ravel(), labels), 1)
    rows, cols = linear_sum_assignment(counts, maximize=True)
    matched = {int(c): int(r) for r, c in zip(rows, cols, strict=True)}
    order = [int(c) for _, c in sorted(zip(rows, cols, strict=True))]
    sizes = counts.sum(axis=0)
    rest = sorted(set(range(n_clusters)) - set(order), key=lambda c: (-sizes[c], c))
    return {
        "classes": [str(c) for c in classes],
        "counts": counts,
        "cluster_order": order + rest,
        "matched": matched,
    }


def collection_map(X, *, method="pca", max_points=3000, random_state=0):
    """Two-dimensional coordinates of (a sample of) the rows of ``X`` for the report's map.

    Parameters
    ----------
    X : ndarray of shape (n_samples, n_features)
        The points (the report passes the clustering space ``[u ; t]``).
    method : {"pca", "tsne", "auto"}, default="pca"
        ``"pca"``: the first two principal components (fast at any size); ``"tsne"``:
        scikit-learn's t-SNE started from PCA (seconds for a few thousand points, so
        used on at most ``max_points`` of them); ``"auto"``: t-SNE up to
        :data:`TSNE_AUTO_MAX` (1,000) images, PCA above.
    max_points : int, default=3000
        At most this many points are placed and drawn (a uniform random sample; PCA and
        t-SNE are fitted on that sample only, so the cost does not grow with the
        collection).
    random_state : int, default=0
        Seeds the sample and t-SNE.

    Returns
    -------
    rows : ndarray of shape (m,)
        The rows of ``X`` placed (sorted), ``m = min(n_samples, max_points)``.
    coords : ndarray of shape (m, 2)
        Their coordinates.
    method : str
        The method used (``"pca"`` or ``"tsne"``). t-SNE falls back to PCA when the points
        have no spread (all alike, e.g. copies of one image): it has no map to draw then.

    Examples
    --------
    >>> rows, xy, used = collection_map(np.eye(5), max_points=4)
    >>> rows.shape, xy.shape, used
    ((4,), (4, 2), 'pca')
    """
    if method not in MAP_METHODS:
        raise ValueError(f"map method must be one of {MAP_METHODS}; got {method!r}.")
    X = np.asarray(X, dtype=np.float64)
    n = X.shape[0]
    if method == "auto":
        method = "tsne" if n <= TSNE_AUTO_MAX else "pca"
    rng = np.random.default_rng(random_state)
    rows = (
        np.sort(rng.choice(n, size=max_points, replace=False)) if n > max_points else np.arange(n)
    )
    Xs = X[rows]
    coords = np.zeros((rows.size, 2))
    if rows.size < 3 or Xs.shape[1] == 0:
        return rows, coords, method
    from threadpoolctl import threadpool_limits

    # One thread (BLAS and OpenMP): at most max_points rows, where on a busy machine extra
    # threads mostly wait for each other (benchmarks/bench_report.py: a 150 x 256 PCA,
    # 0.6-0.9 s with 2 threads and 0.04 s with 1; t-SNE of 90 points, 6.5 s and 0.3 s).
    with threadpool_limits(limits=1):
        from sklearn.decomposition import PCA

        k = min(2, Xs.shape[0], Xs.shape[1])
        with np.errstate(invalid="ignore", divide="ignore"):  # no spread: a ratio of 0 / 0
            coords[:, :k] = PCA(n_components=k, random_state=random_state).fit_transform(Xs)
        # t-SNE starts from the first principal component scaled by its spread: points all
        # (nearly) alike have none, and scikit-learn's t-SNE then crashed the process
        # (a segmentation fault on 12 copies of one image). Such points get PCA's map.
        scale = max(1.0, float(np.abs(Xs).max()))
        if method == "tsne" and rows.size > 5 and coords[:, 0].std() > 1e-9 * scale:
            from sklearn.manifold import TSNE

            perplexity = float(min(30.0, (rows.size - 1) / 3))
            coords = TSNE(
                n_components=2, init="pca", perplexity=perplexity, random_state=random_state
            ).fit_transform(Xs)
            return rows, coords, "tsne"
    return rows, coords, "pca"
