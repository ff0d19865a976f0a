"""``LanguageAssistedClusterer``: spherical k-means on images joined with their retrieved text."""

from __future__ import annotations

import numbers

import numpy as np
import torch
from sklearn.base import BaseEstimator, ClusterMixin, _fit_context
from sklearn.utils._param_validation import HasMethods, Interval, StrOptions
from sklearn.utils.validation import check_is_fitted

from ._base import LanguageClustererMixin
from ._cluster._auto_k import resolve_k_values, search_k
from ._cluster._kmeans import kmeans_params, spherical_kmeans
from ._cluster._search import nearest_centers
from ._utils._validation import Count, l2_normalize_rows


class LanguageAssistedClusterer(LanguageClustererMixin, ClusterMixin, BaseEstimator):
    """Cluster images with the help of nouns: spherical k-means on ``[u ; t]``.

    ``fit`` fits a noun selector (by default :class:`GradNormNounSelector`) on the image
    embeddings ``u``, retrieves each image's text counterpart ``t`` from the selected
    nouns, and runs spherical k-means with ``n_clusters`` clusters on the concatenation
    ``[u ; t]``, as GradNorm does [1]_. Training-free: nothing but k-means is fitted.

    The selector contract: any scikit-learn transformer works as ``selector`` if, once
    fitted on image embeddings ``X``, its ``transform(X)`` returns the representation to
    cluster. The clusterer clones it, sets ``concatenate=True`` when it has that parameter
    (so :class:`GradNormNounSelector` returns ``[u ; t]``), fits it on ``X`` and clusters
    the L2-normalised rows of ``transform(X)``.

    Parameters
    ----------
    n_clusters : int or "auto", default=8
        Number of clusters K. ``"auto"`` fits the selector once, then the final k-means
        for every K of ``n_clusters_range`` on ``[u ; t]``, and keeps the most stable K
        (the adjusted Rand index between two fits with different seeds; the largest K
        among exact ties; chosen over the cosine silhouette by measurement, see the user
        guide's "Without labels", which also says how often it is exact: a class with
        several visual modes is often counted as several clusters). The
        choice is in ``n_clusters_``, the criterion per K in ``n_clusters_scores_``.
    n_clusters_range : sequence of int or None, default=None
        The K values ``n_clusters="auto"`` tries, each >= 2 and < n_samples; None is
        ``range(2, min(50, n_samples // 10) + 1)``. Ignored for an int ``n_clusters``.
    selector : transformer, default=None
        The noun selector (see the contract above), cloned before fitting. None builds
        ``GradNormNounSelector(encoder=encoder, vocabulary=vocabulary)`` with this
        estimator's ``random_state`` and ``device``; it needs a noun bank, from the
        ``encoder`` or from ``selector=GradNormNounSelector(noun_embeddings=...)``.
    encoder : CLIPEncoder or None, default=None
        Embeds images given as paths, PIL images or uint8 arrays, and (through the
        selector) the noun bank. When set, it replaces the selector's encoder.
    vocabulary : sequence of str or None, default=None
        The nouns for the encoder to embed (None: the bundled WordNet nouns). When set, it
        replaces the selector's vocabulary.
    n_init : int, default=20
        Restarts of the final spherical k-means (the paper: 20).
    max_iter : int, default=300
        Iterations per restart (the paper: 300).
    tol : float, default=1e-4
        Convergence tolerance on the centre shift.
    random_state : int, RandomState instance or None, default=None
        Seeds the final k-means (and the default selector). An int makes results
        reproducible.
    device : str, torch.device or None, default=None
        Where the final k-means runs (None: CUDA, then MPS, then CPU).

    Attributes
    ----------
    labels_ : ndarray of shape (n_samples,)
        Cluster of each training image.
    cluster_centers_ : ndarray of shape (n_clusters, 2 * n_features)
        L2-normalised centres in the concatenated space ``[u ; t]``.
    selector_ : estimator
        The fitted clone of ``selector``.
    objective_ : float
        Sum over images of the cosine to their cluster centre, in the concatenated space.
    n_iter_ : int
        Iterations of the best k-means restart.
    n_clusters_ : int
        The number of clusters used (resolves ``"auto"``).
    n_clusters_range_ : ndarray of int
        With ``n_clusters="auto"``: the K values tried.
    n_clusters_scores_ : ndarray of float
        With ``n_clusters="auto"``: the stability of each K (higher is better), to plot
        against ``n_clusters_range_``.
    n_features_in_ : int
        Dimension of the image embeddings.

    See Also
    --------
    GradNormNounSelector : the noun selection and retrieval.
    SphericalKMeans : the image-only baseline.

    Notes
    -----
    With ``u`` the L2-normalised image embedding and ``t`` its text counterpart (unit
    norm), the clustered representation is ``z = [u ; t] / sqrt(2)`` and the clusters
    maximise ``sum_i max_k <z_i, c_k>`` over unit centres ``c_k`` (spherical k-means).

    References
    ----------
    .. [1] B. Peng, J. Lu, Y. Zhang, Z. Fang, "On the Provable Importance of Gradients for
       Language-Assisted Image Clustering", ICCV 2025, arXiv:2510.16335.

    Examples
    --------
    >>> from skgradnorm import GradNormNounSelector, LanguageAssistedClusterer
    >>> from skgradnorm.datasets import make_planted_world
    >>> from skgradnorm.metrics import clustering_accuracy_score
    >>> world = make_planted_world(n_samples=300, n_classes=3, random_state=0)
    >>> laic = LanguageAssistedClusterer(
    ...     n_clusters=3, n_init=5,
    ...     selector=GradNormNounSelector(world.noun_embeddings, n_centers=12, random_state=0),
    ...     random_state=0)
    >>> labels = laic.fit_predict(world.data)
    >>> labels.shape
    (300,)
    >>> laic.cluster_centers_.shape == (3, 2 * world.data.shape[1])
    True
    """

    _parameter_constraints: dict = {
        "n_clusters": [Count(1, None, closed="left"), StrOptions({"auto"})],
        "n_clusters_range": ["array-like", None],
        "selector": [HasMethods(["fit", "transform", "get_params", "set_params"]), None],
        "encoder": [HasMethods(["transform", "encode_nouns"]), None],
        "vocabulary": ["array-like", None],
        "n_init": [Interval(numbers.Integral, 1, None, closed="left")],
        "max_iter": [Interval(numbers.Integral, 1, None, closed="left")],
        "tol": [Interval(numbers.Real, 0, None, closed="left")],
        "random_state": ["random_state"],
        "device": [None, str, torch.device],
    }

    def __init__(
        self,
        n_clusters=8,
        *,
        n_clusters_range=None,
        selector=None,
        encoder=None,
        vocabulary=None,
        n_init=20,
        max_iter=300,
        tol=1e-4,
        random_state=None,
        device=None,
    ):
        self.n_clusters = n_clusters
        self.n_clusters_range = n_clusters_range
        self.selector = selector
        self.encoder = encoder
        self.vocabulary = vocabulary
        self.n_init = n_init
        self.max_iter = max_iter
        self.tol = tol
        self.random_state = random_state
        self.device = device

    def _joint_embedding(self, X):
        """The selector's representation of validated images, with unit rows."""
        Z = self.selector_.transform(X)
        return l2_normalize_rows(np.asarray(Z), name="the selector's transform output")

    def _check_params_vs_input(self, X):
        """The checks that need both the parameters and the data; the K values to try."""
        return resolve_k_values(self.n_clusters, self.n_clusters_range, X.shape[0])

    @_fit_context(prefer_skip_nested_validation=False)
    def fit(self, X, y=None):
        """Select nouns, retrieve text counterparts and cluster ``[u ; t]``.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features), or images
            Image embeddings, or images (paths, PIL images, uint8 arrays) when an
            ``encoder`` is given.
        y : None
            Ignored; present for API consistency.

        Returns
        -------
        self : LanguageAssistedClusterer
            The fitted clusterer.
        """
        selector = self._make_selector()
        X = self._images(X, selector, reset=True)
        ks = self._check_params_vs_input(X)
        self.selector_ = selector.fit(X)
        params = kmeans_params(self)
        Z = self._joint_embedding(X)
        if ks is None:
            self.n_clusters_ = int(self.n_clusters)
            fit = spherical_kmeans(Z, self.n_clusters, **params)
        else:
            self.n_clusters_, self.n_clusters_scores_, fit = search_k(Z, ks, **params)
            self.n_clusters_range_ = ks
        self.cluster_centers_, self.labels_, self.objective_, self.n_iter_ = fit
        return self

    def predict(self, X):
        """Assign new images to the nearest cluster centre in the ``[u ; t]`` space.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Image embeddings.

        Returns
        -------
        labels : ndarray of shape (n_samples,)
            Index of the cluster each image belongs to.
        """
        check_is_fitted(self)
        X = self._images(X, self.selector_, reset=False)
        return nearest_centers(self._joint_embedding(X), self.cluster_centers_, self.device)
