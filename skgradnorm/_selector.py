"""``GradNormNounSelector``: keep the nouns close to the images, and retrieve text for images."""

from __future__ import annotations

import numbers

import numpy as np
import torch
from sklearn import config_context
from sklearn.base import BaseEstimator, TransformerMixin, _fit_context
from sklearn.utils import check_random_state
from sklearn.utils._param_validation import HasMethods, Interval, Options, StrOptions
from sklearn.utils.validation import _check_feature_names_in, check_is_fitted

from ._cluster._kmeans import draw_rows, kmeans_params, spherical_kmeans
from ._consensus import check_rounds, round_seeds, select_by_rounds
from ._gradnorm import gradnorm_scores, sic_scores, tac_scores
from ._retrieval import text_counterparts
from ._selector_auto import auto_n_centers, auto_retrieval_temperature
from ._utils._clone import SharesLargeArrays
from ._utils._validation import (
    check_embedding_matrix,
    check_n_clusters,
    check_same_dimension,
    l2_normalize_rows,
    nonzero_row_norms,
    validated_images,
)

STRATEGIES = ("gradnorm", "tac", "sic", "none")


class GradNormNounSelector(SharesLargeArrays, TransformerMixin, BaseEstimator):
    """Select the nouns close to an image collection with GradNorm, and retrieve text for images.

    ``fit`` clusters the image embeddings into ``n_centers`` fine-grained centres
    (spherical k-means), scores every noun of the bank by the norm of the cross-entropy
    gradient of its softmax over the centres (GradNorm: a small score means a confident,
    positive noun), assigns each noun to its argmax centre and keeps the ``top_k`` nouns
    with the smallest scores per centre. ``transform`` gives each image its text
    counterpart ``t = normalize(softmax(u E_sel^T / tau) E_sel)`` over the kept nouns.

    Read more in the user guide; the method is GradNorm [1]_, its baselines TAC [2]_ and
    SIC [3]_.

    Parameters
    ----------
    noun_embeddings : array-like of shape (n_nouns, n_features) or callable
        Embeddings of the noun bank, made by the text tower of the same model as the
        images (rows are L2-normalised in ``fit``). Required. Like ``KMeans(init=...)``,
        it may be a callable ``f(X)`` that returns the bank at fit time, given the
        L2-normalised image embeddings ``X`` the centres are fitted on (useful to compute or
        load a large bank lazily).
    vocabulary : sequence of str of length n_nouns, default=None
        The nouns, in the order of ``noun_embeddings``; used for ``selected_nouns_``.
        None names them ``"noun_0"``, ``"noun_1"``, ... When ``noun_embeddings`` is None
        and an ``encoder`` is given, the nouns to embed (None: the bundled WordNet nouns,
        :func:`skgradnorm.vocabulary.wordnet_nouns`).
    encoder : CLIPEncoder or None, default=None
        Embeds what is not already embedded: the noun bank (``encoder.encode_nouns(
        vocabulary)``, cached on disk by the encoder) when ``noun_embeddings`` is None,
        and ``X`` in ``fit`` and ``transform`` when it holds images (file paths, PIL
        images, uint8 arrays) rather than a float matrix of embeddings.
    n_centers : int or "auto", default="auto"
        Number of image centres C (much larger than the number of clusters).
        ``"auto"`` uses ``round(sqrt(n_samples))``, within ``[1, n_samples]``: 224
        centres for 50,000 images (the paper: 200 to 250 on CIFAR), 1,132 for ImageNet-1K
        (the paper: 2,000). With ``strategy="tac"``, TAC's rule: ``round(n_samples / 300)``
        (167 for 50,000 images), or ``3 * n_clusters`` when that is fewer than
        ``n_clusters``. The resolved value is ``n_centers_``. Set it explicitly to
        reproduce the paper.
    temperature : float, default=0.05
        Filter temperature T of the softmax over centres (paper: 0.018 to 0.08).
    top_k : int, default=5
        Nouns kept per centre (paper: 5; 3 for ImageNet-1K).
    p : float, default=2.0
        Order of the gradient norm (``p >= 1`` or ``numpy.inf``); ``p=1`` ranks like TAC.
    strategy : {"gradnorm", "tac", "sic", "none"}, default="gradnorm"
        The noun filter. ``"tac"``: TAC's rule (softmax over raw cosine similarities, no
        temperature, the most confident nouns per centre). ``"sic"``: SIC's rule (drop the
        nouns whose cosine to the mean noun is at least ``1 - uniqueness_threshold``, then
        the most similar nouns per centre). ``"none"``: keep every noun. For ``"tac"``,
        ``"sic"`` and ``"none"``, ``temperature`` and ``p`` are not used.
    retrieval_temperature : float or "auto", default="auto"
        Temperature tau of the retrieval softmax (paper: 0.006 to 0.01). ``"auto"``: 0.005
        with ``strategy="tac"`` (TAC's), else 0.008. The resolved value is
        ``retrieval_temperature_``.
    uniqueness_threshold : float, default=0.2
        SIC's gamma_u, used only by ``strategy="sic"``.
    concatenate : bool, default=False
        If True, ``transform`` returns ``[u ; t]`` of shape (n_samples, 2 * n_features),
        the representation the clusterer uses; else the text counterparts ``t``.
    n_init : int, default=3
        Restarts of the spherical k-means that makes the centres (shared by the rounds
        when ``n_rounds > 1``).
    max_iter : int, default=100
        Iterations per restart of that k-means.
    n_rounds : int, default=1
        Consensus selection: fit the centres ``n_rounds`` times with seeds drawn from
        ``random_state``, each round on its own random subsample of the images
        (``round_subsample``), select ``top_k`` nouns per centre in every round, and keep
        the nouns selected in at least ``min_votes`` rounds. The rounds share the noun
        bank and the restart budget: each runs ``max(1, n_init // n_rounds)`` k-means
        restarts. 1 (the default) is the paper's single selection, exactly. Measured
        effects are in the user guide ("Without labels") and ``benchmarks/RESULTS.md``.
    min_votes : int or None, default=None
        Votes (rounds) a noun needs to be kept, in ``[1, n_rounds]``; None is a strict
        majority, ``n_rounds // 2 + 1``.
    round_subsample : float in (0, 1], default=0.8
        With ``n_rounds > 1``, the fraction of the images each round fits its centres on
        (drawn with the round's seed; at least ``n_centers_``), so that the rounds' errors
        differ and a vote can remove them. 1.0 fits every round on every image. Not used by
        one round.
    n_clusters : int or None, default=None
        The number of clusters the selection is for, if known; used only by TAC's
        ``n_centers="auto"`` rule. The language-assisted clusterers set it on their clone
        of the selector from their own int ``n_clusters``.
    max_samples : int or None, default=None
        Fit the centres on a random subsample of this many images (drawn with
        ``random_state``) instead of on all of them; None uses every image. This is the
        way to keep the centre step short, and its memory small, on very large
        collections, for a slightly lower k-means objective (the user guide's "Large
        collections" gives measured trade-offs). Only the subsample is copied and
        normalised; the images outside it are not used for the centres.
        ``n_centers="auto"`` still counts all images.
    random_state : int, RandomState instance or None, default=None
        Seeds the centre k-means (and, with ``n_rounds > 1``, the seeds of the rounds).
        Pass an int for reproducible results.
    device : str, torch.device or None, default=None
        Where to compute (None: CUDA, then MPS, then CPU).

    Attributes
    ----------
    centers_ : ndarray of shape (`n_centers_`, n_features)
        The L2-normalised image centres W (of the first round when ``n_rounds > 1``;
        ``round_centers_`` holds every round's).
    n_centers_ : int
        The number of centres used (resolves ``"auto"``).
    retrieval_temperature_ : float
        The retrieval temperature used (resolves ``"auto"``).
    n_iter_ : int
        Iterations of the best restart of the centre k-means (first round).
    round_centers_ : list of ndarray of shape (`n_centers_`, n_features)
        The centres of every round (``round_centers_[0]`` is ``centers_``).
    scores_ : ndarray of shape (n_nouns,)
        Each noun's filter score (smaller is better). GradNorm's score for
        ``"gradnorm"`` and ``"none"``; ``1 - confidence`` for ``"tac"``; minus the
        cosine to the nearest centre for ``"sic"`` (``inf`` for nouns it drops). With
        ``n_rounds > 1``, the scores against ``centers_`` (the first round).
    assignments_ : ndarray of shape (n_nouns,)
        Each noun's argmax centre among ``centers_``.
    selected_indices_ : ndarray of shape (n_selected,)
        Indices of the kept nouns in the bank, ordered by centre then rank (centre and
        rank in the first round when ``n_rounds > 1``).
    selection_votes_ : ndarray of shape (n_selected,)
        In how many rounds each kept noun was selected (all ones for ``n_rounds=1``).
    selected_nouns_ : list of str
        The kept nouns.
    selected_embeddings_ : ndarray of shape (n_selected, n_features)
        Their L2-normalised embeddings.
    n_features_in_ : int
        Dimension of the embedding space.

    See Also
    --------
    LanguageAssistedClusterer : clusters ``[u ; t]`` with spherical k-means.
    gradnorm_scores : the scoring function.

    Notes
    -----
    With unit noun embeddings ``e``, centres ``W`` and ``s = softmax(W e / T)``,
    ``k* = argmax_k s_k`` and ``c = s_{k*}``, GradNorm scores a noun by
    ``T ||dCE(onehot(k*), s) / dW||_p = ||s - onehot(k*)||_p ||e||_p``
    (see :func:`gradnorm_scores`). Each centre keeps the ``top_k`` nouns assigned to it with
    the smallest scores, ``E_sel``. An image ``u`` then retrieves
    ``t = normalize(softmax(u E_sel^T / tau) E_sel)``.

    :func:`~sklearn.base.clone` shares a ``noun_embeddings`` array of 1 MiB or more with
    the clone instead of copying it (fitting only reads it): do not write into it.

    References
    ----------
    .. [1] B. Peng, J. Lu, Y. Zhang, Z. Fang, "On the Provable Importance of Gradients for
       Language-Assisted Image Clustering", ICCV 2025, arXiv:2510.16335.
    .. [2] Y. Li, P. Hu, D. Peng, J. Lv, J. Fan, X. Peng, "Image Clustering with External
       Guidance", ICML 2024, arXiv:2310.11989.
    .. [3] S. Cai, L. Qiu, X. Chen, Q. Zhang, L. Chen, "Semantic-Enhanced Image Clustering",
       AAAI 2023, arXiv:2208.09849.

    Examples
    --------
    >>> from skgradnorm import GradNormNounSelector
    >>> from skgradnorm.datasets import make_planted_world
    >>> world = make_planted_world(n_samples=300, n_classes=3, random_state=0)
    >>> selector = GradNormNounSelector(
    ...     noun_embeddings=world.noun_embeddings, vocabulary=world.vocabulary,
    ...     n_centers=12, top_k=2, random_state=0)
    >>> text = selector.fit_transform(world.data)
    >>> text.shape == world.data.shape
    True
    >>> len(selector.selected_nouns_) <= 12 * 2
    True
    """

    _parameter_constraints: dict = {
        "noun_embeddings": ["array-like", callable, None],
        "vocabulary": ["array-like", None],
        "encoder": [HasMethods(["transform", "encode_nouns"]), None],
        "n_centers": [Interval(numbers.Integral, 1, None, closed="left"), StrOptions({"auto"})],
        "temperature": [Interval(numbers.Real, 0, None, closed="neither")],
        "top_k": [Interval(numbers.Integral, 1, None, closed="left")],
        "p": [Interval(numbers.Real, 1, None, closed="left"), Options(numbers.Real, {np.inf})],
        "strategy": [StrOptions(set(STRATEGIES))],
        "retrieval_temperature": [
            Interval(numbers.Real, 0, None, closed="neither"),
            StrOptions({"auto"}),
        ],
        "uniqueness_threshold": [Interval(numbers.Real, 0, 2, closed="both")],
        "concatenate": ["boolean"],
        "n_init": [Interval(numbers.Integral, 1, None, closed="left")],
        "max_iter": [Interval(numbers.Integral, 1, None, closed="left")],
        "n_rounds": [Interval(numbers.Integral, 1, None, closed="left")],
        "min_votes": [Interval(numbers.Integral, 1, None, closed="left"), None],
        "round_subsample": [Interval(numbers.Real, 0, 1, closed="right")],
        "n_clusters": [Interval(numbers.Integral, 1, None, closed="left"), None],
        "max_samples": [Interval(numbers.Integral, 1, None, closed="left"), None],
        "random_state": ["random_state"],
        "device": [None, str, torch.device],
    }

    def __init__(
        self,
        noun_embeddings=None,
        *,
        vocabulary=None,
        encoder=None,
        n_centers="auto",
        temperature=0.05,
        top_k=5,
        p=2.0,
        strategy="gradnorm",
        retrieval_temperature="auto",
        uniqueness_threshold=0.2,
        concatenate=False,
        n_init=3,
        max_iter=100,
        n_rounds=1,
        min_votes=None,
        round_subsample=0.8,
        n_clusters=None,
        max_samples=None,
        random_state=None,
        device=None,
    ):
        self.noun_embeddings = noun_embeddings
        self.vocabulary = vocabulary
        self.encoder = encoder
        self.n_centers = n_centers
        self.temperature = temperature
        self.top_k = top_k
        self.p = p
        self.strategy = strategy
        self.retrieval_temperature = retrieval_temperature
        self.uniqueness_threshold = uniqueness_threshold
        self.concatenate = concatenate
        self.n_init = n_init
        self.max_iter = max_iter
        self.n_rounds = n_rounds
        self.min_votes = min_votes
        self.round_subsample = round_subsample
        self.n_clusters = n_clusters
        self.max_samples = max_samples
        self.random_state = random_state
        self.device = device

    # -- the noun bank -------------------------------------------------------------------
    def _noun_bank(self, X):
        """The validated noun bank (not yet normalised), its row norms and its nouns (a list,
        or None for ``noun_0``, ``noun_1``, ...).

        Every check is made here, before the centre k-means, so that a bad bank fails fast;
        the normalised copy is made after the k-means (see ``fit``), which keeps the peak
        memory of ``fit`` lower on large collections.
        """
        vocabulary = self.vocabulary
        if self.noun_embeddings is not None:
            bank = (
                self.noun_embeddings(X) if callable(self.noun_embeddings) else self.noun_embeddings
            )
        elif self.encoder is not None:
            if vocabulary is None:
                from .vocabulary import wordnet_nouns

                vocabulary = wordnet_nouns()
            vocabulary = [str(v) for v in vocabulary]
            if not vocabulary:
                raise ValueError(
                    "vocabulary is empty; pass at least one noun (or None for WordNet's)."
                )
            bank = self.encoder.encode_nouns(vocabulary)
        else:
            raise ValueError(
                "GradNormNounSelector needs a noun bank: pass noun_embeddings, an array of "
                "shape (n_nouns, n_features) made by the text tower of the model that embedded "
                "the images, or an encoder (CLIPEncoder) that embeds the vocabulary."
            )
        E = check_embedding_matrix(bank, name="noun_embeddings")
        norms = nonzero_row_norms(E, name="noun_embeddings")
        check_same_dimension(X, E, a_name="X", b_name="noun_embeddings")
        names = None if vocabulary is None else list(vocabulary)
        if names is not None and len(names) != E.shape[0]:
            raise ValueError(
                f"vocabulary has {len(names)} nouns but noun_embeddings has {E.shape[0]} "
                "rows; they must list the same nouns in the same order."
            )
        return E, norms, names

    def _check_params_vs_input(self, X):
        """Resolve ``n_centers_`` and ``retrieval_temperature_``, and check the parameters
        that depend on the data."""
        n_samples = X.shape[0]
        self._min_votes = check_rounds(self.n_rounds, self.min_votes)
        self.retrieval_temperature_ = auto_retrieval_temperature(
            self.strategy, self.retrieval_temperature
        )
        if self.n_centers == "auto":
            self.n_centers_ = auto_n_centers(n_samples, self.strategy, self.n_clusters)
        else:
            self.n_centers_ = check_n_clusters(self.n_centers, n_samples, name="n_centers")
        if self.max_samples is not None and self.max_samples < min(n_samples, self.n_centers_):
            raise ValueError(
                f"max_samples={self.max_samples} is smaller than n_centers={self.n_centers_}; "
                f"every centre needs at least one image: use max_samples >= {self.n_centers_} "
                "or None (all images)."
            )

    def _fit_rows(self, n_samples):
        """Sorted indices of the images the centres are fitted on (None: all of them)."""
        if self.max_samples is None or self.max_samples >= n_samples:
            return None
        return draw_rows(n_samples, self.max_samples, check_random_state(self.random_state))

    def _score(self, E, W):
        """``(scores, assignments, tiebreak)``: GradNorm's tie-break is its exact log score,
        which still orders the nouns whose scores underflow to 0 at small temperatures.
        ``E`` and ``W`` were checked in this fit: the scoring skips its own NaN scan."""
        kw = {"device": self.device}
        with config_context(assume_finite=True):
            if self.strategy in ("gradnorm", "none"):
                T, p = self.temperature, self.p
                return gradnorm_scores(E, W, temperature=T, p=p, return_log=True, **kw)
            if self.strategy == "tac":
                return (*tac_scores(E, W, **kw), None)
            scores = sic_scores(E, W, uniqueness_threshold=self.uniqueness_threshold, **kw)
        return (*scores, None)

    @_fit_context(prefer_skip_nested_validation=True)
    def fit(self, X, y=None):
        """Fit the image centres, score the noun bank and select the positive nouns.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features), or images
            Image embeddings (rows are L2-normalised here), or images (paths, PIL images,
            uint8 arrays) when an ``encoder`` is given.
        y : None
            Ignored; present for API consistency.

        Returns
        -------
        self : GradNormNounSelector
            The fitted selector.
        """
        X = validated_images(self, X, self.encoder, reset=True)
        self._check_params_vs_input(X)
        X_fit = l2_normalize_rows(X, name="X", rows=self._fit_rows(X.shape[0]))
        bank, bank_norms, names = self._noun_bank(X_fit)
        self._fit_rounds(X_fit)
        del X_fit
        E = l2_normalize_rows(bank, name="noun_embeddings", dtype=X.dtype, norms=bank_norms)
        del bank
        self._select(E)
        if self.selected_indices_.size == 0:
            if self.strategy == "sic":
                cut = 1.0 - self.uniqueness_threshold
                raise ValueError(
                    "No noun was selected: strategy='sic' dropped every noun as generic (its "
                    f"cosine to the mean noun was >= 1 - uniqueness_threshold = {cut:g}); "
                    "lower uniqueness_threshold (0 drops none) or use strategy='gradnorm'."
                )
            raise ValueError(
                "No noun was selected: no noun got min_votes votes over the rounds (lower "
                "min_votes), or every score was NaN or infinite (check the noun bank)."
            )
        # names of the selected nouns only (naming all of a large bank took longer)
        self.selected_nouns_ = [
            f"noun_{i}" if names is None else str(names[i]) for i in self.selected_indices_
        ]
        self.selected_embeddings_ = E[self.selected_indices_]
        return self

    def _fit_rounds(self, X_fit):
        """The centres of every round (``round_centers_``; the first is ``centers_``)."""
        self.round_centers_ = []
        # The rounds share the restart budget (see n_rounds): one round is the paper's fit.
        round_n_init = max(1, self.n_init // self.n_rounds)
        size = max(self.n_centers_, round(self.round_subsample * X_fit.shape[0]))
        for seed in round_seeds(self.random_state, self.n_rounds):
            rows = None
            if self.n_rounds > 1:
                rows = draw_rows(X_fit.shape[0], size, check_random_state(seed))
            # max_samples is the selector's own (X_fit is already the subsample)
            params = kmeans_params(self, n_init=round_n_init, random_state=seed, max_samples=None)
            X_round = X_fit if rows is None else X_fit[rows]
            centers, _, _, n_iter = spherical_kmeans(X_round, self.n_centers_, **params)
            self.round_centers_.append(centers)
            if len(self.round_centers_) == 1:
                self.centers_, self.n_iter_ = centers, n_iter

    def _select(self, E):
        """Score the bank against every round's centres, select and vote."""
        if self.strategy == "none":  # every noun, in bank order, whatever the rounds
            self.scores_, self.assignments_, _ = self._score(E, self.centers_)
            self.selected_indices_ = np.arange(E.shape[0])
            self.selection_votes_ = np.full(E.shape[0], self.n_rounds, dtype=np.int64)
            return
        (
            self.scores_,
            self.assignments_,
            self.selected_indices_,
            self.selection_votes_,
        ) = select_by_rounds(
            self.round_centers_,
            lambda centers: self._score(E, centers),
            top_k=self.top_k,
            min_votes=self._min_votes,
        )

    def _validated_images(self, X):
        check_is_fitted(self)
        return l2_normalize_rows(validated_images(self, X, self.encoder, reset=False), name="X")

    def _text_counterparts(self, X):
        """Text counterparts of validated, normalised image embeddings."""
        return text_counterparts(
            X,
            self.selected_embeddings_.astype(X.dtype, copy=False),
            temperature=self.retrieval_temperature_,
            device=self.device,
        )

    def transform(self, X):
        """Retrieve the text counterpart of each image from the selected nouns.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Image embeddings.

        Returns
        -------
        ndarray of shape (n_samples, n_features) or (n_samples, 2 * n_features)
            The L2-normalised text counterparts ``t``, or ``[u ; t]`` when
            ``concatenate=True`` (``u`` the L2-normalised images).
        """
        X = self._validated_images(X)
        T = self._text_counterparts(X)
        return np.hstack([X, T]) if self.concatenate else T

    def get_feature_names_out(self, input_features=None):
        """Output feature names: ``text0, ...``, after the image features when concatenated.

        Parameters
        ----------
        input_features : array-like of str or None, default=None
            The input (image) feature names, checked as scikit-learn checks them (their
            number, and equal to ``feature_names_in_`` when fitted on a dataframe). With
            ``concatenate=True`` they name the image part of the output; None uses
            ``feature_names_in_`` when defined, else ``image0, image1, ...``.

        Returns
        -------
        feature_names_out : ndarray of str objects
        """
        check_is_fitted(self)
        d = self.n_features_in_
        text = [f"text{i}" for i in range(d)]
        if not self.concatenate:
            _check_feature_names_in(self, input_features)
            return np.asarray(text, dtype=object)
        if input_features is None and not hasattr(self, "feature_names_in_"):
            image = [f"image{i}" for i in range(d)]
        else:
            image = list(_check_feature_names_in(self, input_features))
        return np.asarray(image + text, dtype=object)
