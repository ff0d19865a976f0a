"""``LanguageAssistedClusterer``: spherical k-means on images joined with their retrieved text."""

from __future__ import annotations

import numbers

import numpy as np
import torch
from sklearn.base import BaseEstimator, ClusterMixin, _fit_context
from sklearn.utils._param_validation import HasMethods, Interval, StrOptions
from sklearn.utils.validation import check_is_fitted

from ._base import LanguageClustererMixin
from ._cluster._auto_k import resolve_k_values, search_k, store_k_search
from ._cluster._kmeans import kmeans_params, spherical_kmeans, warn_if_fewer_clusters
from ._cluster._search import nearest_centers
from ._utils._validation import Count, l2_normalize_rows, validated_images

#: What ``n_clusters="auto"`` scores K on: ``"images"`` (the image embeddings ``u``) or
#: ``"joint"`` (``[u ; t]``, which is then clustered). Chosen by measurement
#: (``benchmarks/bench_label_free.py --parts k``; figures in ``benchmarks/RESULTS.md``): the
#: text half of ``[u ; t]`` splits the images by the nouns they retrieve, and the criteria
#: then count far more clusters than classes.
K_SEARCH_ON = "images"

#: The ``selector`` value that clusters the images alone (scikit-learn's name for a skipped
#: step, as in ``Pipeline``).
IMAGE_ONLY = "passthrough"


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
        Number of clusters K. ``"auto"`` fits the selector once, chooses K on the images
        ``u`` by the BIC of a Gaussian mixture (see
        :func:`skgradnorm.tuning.search_n_clusters`), then clusters ``[u ; t]`` with that
        K. The choice is in ``n_clusters_``, how sure it is in ``n_clusters_confidence_``.
        It is a first guess, not an answer: the user guide's "Without labels" says how
        often it was exact (often on synthetic worlds, rarely on real photos); give K
        when you know it.
    n_clusters_range : sequence of int or None, default=None
        The K values ``n_clusters="auto"`` tries, each >= 2 and < n_samples; None is
        ``range(2, min(50, n_samples // 10) + 1)``. Ignored for an int ``n_clusters``.
    selector : transformer or "passthrough", default=None
        The noun selector (see the contract above), cloned before fitting. None builds
        ``GradNormNounSelector(encoder=encoder, vocabulary=vocabulary)`` with this
        estimator's ``random_state`` and ``device``; it needs a noun bank, from the
        ``encoder`` or from ``selector=GradNormNounSelector(noun_embeddings=...)``.
        ``"passthrough"`` (scikit-learn's name for a skipped step) uses no language: the
        images ``u`` alone are clustered (spherical k-means on ``u``), the baseline that
        :func:`skgradnorm.tuning.tune` puts beside the language settings.
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
    selector_ : estimator or "passthrough"
        The fitted clone of ``selector`` (``"passthrough"`` when the images are clustered
        alone).
    objective_ : float
        Sum over images of the cosine to their cluster centre, in the concatenated space.
    n_iter_ : int
        Iterations of the best k-means restart.
    n_clusters_ : int
        The number of clusters used (resolves ``"auto"``).
    n_clusters_range_ : ndarray of int
        With ``n_clusters="auto"``: the K values scored.
    n_clusters_scores_ : ndarray of float
        With ``n_clusters="auto"``: the criterion of each K (higher is better), to plot
        against ``n_clusters_range_``.
    n_clusters_confidence_ : float
        With ``n_clusters="auto"``: how sure the choice of K is, in [0, 1] (0: another K
        scored the same within the criterion's noise).
    n_clusters_criterion_ : str
        With ``n_clusters="auto"``: the criterion's name.
    language_gain_ : float
        Set by :func:`skgradnorm.tuning.tune` on the estimator it returns: the relative
        silhouette gain of its best language setting over the images alone (language is
        used from ``min_language_gain``, 0.25 by default).
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
        "selector": [
            HasMethods(["fit", "transform", "get_params", "set_params"]),
            StrOptions({IMAGE_ONLY}),
            None,
        ],
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

    def _image_only(self) -> bool:
        return isinstance(self.selector, str) and self.selector == IMAGE_ONLY

    def _joint_embedding(self, X):
        """The selector's representation of validated images, with unit rows (the images
        themselves with ``selector="passthrough"``)."""
        if isinstance(self.selector_, str):
            return l2_normalize_rows(X, name="X")
        Z = self.selector_.transform(X)
        return l2_normalize_rows(np.asarray(Z), name="the selector's transform output")

    def _validated(self, X, selector, *, reset):
        """Validated image embeddings (images embedded by the encoder first: the
        clusterer's with ``selector="passthrough"``, else the selector's)."""
        if isinstance(selector, str):
            return validated_images(self, X, self.encoder, reset=reset)
        return self._images(X, selector, reset=reset)

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
        selector = IMAGE_ONLY if self._image_only() else self._make_selector()
        X = self._validated(X, selector, reset=True)
        ks = self._check_params_vs_input(X)
        self.selector_ = selector if isinstance(selector, str) else selector.fit(X)
        params = kmeans_params(self)
        Z = self._joint_embedding(X)
        if ks is None:
            self.n_clusters_ = int(self.n_clusters)
            fit = spherical_kmeans(Z, self.n_clusters, **params)
        else:
            # K is chosen on the images u (see K_SEARCH_ON), the clusters made on [u ; t]
            U = l2_normalize_rows(X, name="X") if K_SEARCH_ON == "images" else Z
            found = search_k(U, ks, fit_rows=Z, **params)
            store_k_search(self, found)
            fit = found.fit
        self.cluster_centers_, self.labels_, self.objective_, self.n_iter_ = fit
        warn_if_fewer_clusters(self.labels_, self.cluster_centers_.shape[0], rows="[u ; t]")
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
        X = self._validated(X, self.selector_, reset=False)
        return nearest_centers(self._joint_embedding(X), self.cluster_centers_, self.device)
