"""``MutualDistillationClusterer``: TAC's trained cluster heads on retrieved text counterparts."""

from __future__ import annotations

import numbers

import numpy as np
import torch
from sklearn.base import BaseEstimator, ClusterMixin, _fit_context
from sklearn.utils import check_random_state
from sklearn.utils._param_validation import HasMethods, Interval, StrOptions
from sklearn.utils.validation import check_is_fitted

from ._base import LanguageClustererMixin
from ._cluster._neighbors import auto_algorithm, nearest_neighbors
from ._cluster._search import faiss_available, nearest_centers
from ._distill import (
    fit_heads_to_labels,
    head_probabilities,
    new_heads,
    size_prior,
    train_heads,
)
from ._heads_settings import check_sizes, resolved
from ._selector import STRATEGIES
from ._utils._torch import resolve_device
from ._utils._validation import Count, l2_normalize_rows
from ._warm_start import choose, joint_embedding, training_free_clusters

__all__ = ["MutualDistillationClusterer"]


class MutualDistillationClusterer(LanguageClustererMixin, ClusterMixin, BaseEstimator):
    """Cluster images with TAC's cluster heads trained on images and their retrieved text.

    ``fit`` fits a noun selector (by default :class:`GradNormNounSelector`) on the image
    embeddings ``u``, takes each image's text counterpart ``t`` from it
    (``selector.transform``), finds every sample's nearest neighbours among the images and,
    separately, among the text counterparts, and trains two cluster heads, one on ``u`` and
    one on ``t``, by TAC's cross-modal mutual distillation. Clusters are the argmax of the
    image head, so ``predict`` on new images needs no text.

    Parameters
    ----------
    n_clusters : int, default=8
        Number of clusters K.
    selector : GradNormNounSelector, default=None
        The noun selector, cloned before fitting (its ``concatenate`` is set to False). None
        builds ``GradNormNounSelector(encoder=encoder, vocabulary=vocabulary)`` with this
        estimator's ``random_state`` and ``device``; it needs a noun bank, from the
        ``encoder`` or from ``selector=GradNormNounSelector(noun_embeddings=...)``.
    strategy : {"gradnorm", "tac", "sic", "none"} or None, default=None
        When set, replaces the selector's noun filter: ``"tac"`` with these heads is TAC
        as published. None keeps the selector's (GradNorm for the default selector).
    encoder : CLIPEncoder or None, default=None
        Embeds images given as paths, PIL images or uint8 arrays, and (through the
        selector) the noun bank. When set, it replaces the selector's encoder.
    vocabulary : sequence of str or None, default=None
        The nouns for the encoder to embed (None: the bundled WordNet nouns). When set, it
        replaces the selector's vocabulary.
    n_neighbors : int, default=50
        Nearest neighbours (inner product, the sample itself excluded) each sample draws
        its partner from, in each modality (TAC: 50). Needs ``n_samples > n_neighbors``.
    init : {"training-free", "tac"}, default="training-free"
        Where the heads start. ``"training-free"``: first fit both heads by cross-entropy
        to the training-free labels, those of :class:`LanguageAssistedClusterer` with its
        defaults, the same selector and this ``random_state`` (spherical k-means of
        ``[u ; t]``; ``init_labels_``), for ``init_epochs`` epochs, then train them by
        TAC's loss. A departure from TAC (see Notes). ``"tac"``: random weights, TAC as
        published (exactly: nothing else is drawn or trained).
    init_epochs : int, default=5
        Epochs of the warm start of ``init="training-free"`` (batches of ``batch_size``,
        Adam with ``learning_rate`` and ``betas``, its own optimizer).
    n_epochs : int or "auto", default="auto"
        Passes over the data. ``"auto"``: 20, or 100 when ``n_clusters >= 100`` (TAC).
    batch_size : int or "auto", default="auto"
        Samples per step; the last incomplete batch of every epoch is dropped. ``"auto"``:
        512, or 8192 when ``n_clusters >= 100`` (TAC), at most ``n_samples``. An int
        larger than ``n_samples`` is replaced by ``n_samples``, with a warning.
    temperature : float or "auto", default="auto"
        Temperature of the cluster-level contrast. ``"auto"``: 0.5, or 5.0 when
        ``n_clusters >= 100`` (TAC).
    entropy_weight : float, default=5.0
        Weight of the batch-entropy term (TAC: 5).
    size_prior : {"auto", "equal", "init"} or float in [0, 1], default="auto"
        The cluster sizes the balance term pulls towards: ``"equal"`` (TAC's entropy),
        ``"init"`` (the shares of ``init_labels_``; a departure from TAC, see Notes), a
        float ``a`` (``a`` times those plus ``1 - a`` times equal shares); ``"auto"``:
        ``"init"`` with ``init="training-free"``, ``"equal"`` with ``init="tac"``.
    fallback : {"silhouette"} or None, default="silhouette"
        With ``init="training-free"``: keep the training-free clusters when their mean
        cosine silhouette on the images beats the heads' by more than 2% of it, else the
        heads' (``labels_`` and ``predict``; a departure from TAC, see Notes). None: always
        the heads'. Nothing is compared with ``init="tac"``.
    learning_rate : float, default=1e-3
        Adam's step size (TAC: torch's default, 1e-3).
    betas : tuple of two floats, default=(0.9, 0.99)
        Adam's decay rates (TAC: 0.9, 0.99).
    weight_decay : float, default=0.0
        Adam's L2 penalty (TAC: none).
    neighbor_backend : {"auto", "torch", "faiss"}, default="auto"
        What finds the neighbours: faiss's exact inner-product search (CPU, float32), or
        chunked torch matrix products on ``device``; ``"auto"`` picks faiss when it is
        installed and the device is the CPU.
    neighbor_algorithm : {"exact", "ivf", "nndescent", "hnsw", "auto"}, default="exact"
        How the neighbours are searched. ``"exact"``: every pair of samples (TAC), about
        ``n_samples**2 * n_features`` multiply-adds per modality. ``"ivf"``: an approximate
        inverted-file search (see Notes), seeded by ``random_state``. ``"nndescent"``: a
        cheap IVF graph refined by NN-descent rounds (see Notes). ``"hnsw"``: faiss's HNSW
        index searched with every sample, refined by the same rounds (needs faiss; CPU;
        not bit-reproducible across runs on several threads). ``"auto"``: exact up to
        200,000 samples and on a GPU; above that on the CPU, ``"hnsw"`` (``"nndescent"``
        without faiss). Not the default: the HNSW graph differs run to run on several
        threads (the heads' ACC did not suffer at 50,000 and 250,000 images; see Notes).
    random_state : int, RandomState instance or None, default=None
        Seeds the heads' initial weights, the batch orders, the neighbour draws and the
        default selector. An int gives the same labels on every run on the same device.
    device : str, torch.device or None, default=None
        Where to train and predict (None: CUDA, then MPS, then CPU).
    verbose : bool, default=False
        Show a progress bar (tqdm) per epoch, with the running mean loss.

    Attributes
    ----------
    labels_ : ndarray of shape (n_samples,)
        Cluster of each training image (argmax of the trained image head, or
        ``init_labels_`` when ``chosen_`` is ``"training-free"``).
    init_labels_, init_centers_ : ndarray or None
        The training-free labels the heads were warm-started from, and the centres of
        their k-means on ``[u ; t]`` (None for ``init="tac"``).
    chosen_ : {"heads", "training-free"}
        Which clusters ``labels_`` and ``predict`` give (see ``fallback``); with
        ``"training-free"``, ``predict`` assigns new images to the nearest of
        ``init_centers_`` (their text counterparts from ``selector_``) and
        ``predict_proba`` is that assignment's one-hot.
    silhouettes_ : dict or None
        ``{"heads": float, "training-free": float}``: the mean cosine silhouettes on the
        images that ``fallback`` compared (None when nothing was compared).
    selector_ : estimator
        The fitted clone of ``selector``.
    image_head_, text_head_ : torch.nn.Sequential
        The trained heads (on the CPU, in eval mode): ``Linear(d, d) -> BatchNorm1d ->
        ReLU -> Linear(d, K) -> Softmax``.
    loss_curve_ : list of float
        The mean batch loss of every epoch.
    n_iter_ : int
        Epochs run.
    batch_size_ : int
        The batch size used (resolves ``"auto"`` and the cap at ``n_samples``).
    temperature_ : float
        The contrast temperature used.
    n_features_in_ : int
        Dimension of the image embeddings.

    See Also
    --------
    LanguageAssistedClusterer : the training-free alternative (k-means on ``[u ; t]``).
    GradNormNounSelector : the noun selection and retrieval.

    Notes
    -----
    With ``P`` the ``(batch, K)`` softmax outputs of a head (``P^n``: of a neighbour drawn
    among the 50 nearest in the same modality), each step minimises

    .. math::

        D(P_{img}, P^n_{txt}) + D(P_{txt}, P^n_{img})
        - \\frac{1}{B}\\sum_i \\log \\langle p_{txt,i}, p_{img,i} \\rangle
        - w\\,[H(\\bar p_{txt}) + H(\\bar p_{img})]

    where :math:`D(P, Q)` is the cluster-level contrast: the :math:`2K` columns of
    :math:`P` and :math:`Q` are L2-normalised, column :math:`k` of :math:`P` is pulled to
    column :math:`k` of :math:`Q` and pushed from the other :math:`2K-2` columns (softmax
    cross-entropy of their cosines over the temperature, averaged over the :math:`2K`
    columns), :math:`\\bar p` is the batch-mean prediction and :math:`H` its entropy.
    The heads are trained in float32 whatever the input's dtype.

    **Departure from TAC [1]_: the warm start** (``init="training-free"``, the default).
    TAC starts the heads from random weights. Its loss sees only neighbour relations and
    the balance of the clusters, so when a class is made of several neighbourhoods that do
    not touch, it cannot tell which belong together, and random heads join them at random.
    Started from the training-free labels (the clusters of
    :class:`LanguageAssistedClusterer`), the same training keeps what the k-means found
    and refines it along the neighbour graphs: on the planted worlds (classes of separate
    islands) TAC's start lost 0.18 ACC to the training-free labels, the warm start none
    (the docs' "Evidence" page). ``init="tac"`` is TAC as published, bit for bit.

    **Departure from TAC: the size prior** (``size_prior="auto"``: ``"init"`` with the
    warm start). TAC's term :math:`-w\\,H(\\bar p)` pulls the batch mean towards equal
    cluster sizes; with the warm start it becomes :math:`w\\,\\mathrm{KL}(\\bar p \\,\\|\\,
    \\pi)`, :math:`\\pi` the shares of the training-free clusters, so the heads keep the
    sizes those found ("Evidence" page: equal sizes gain more where classes are equal, and
    lose on the real worlds, whose classes are unequal).

    **Departure from TAC: the safeguard** (``fallback="silhouette"``). Where the warm
    start is poor (a planted world's islands joined wrongly), training can lose more; so
    the training-free clusters are kept when they separate the images clearly better (mean
    cosine silhouette on ``u``, scikit-learn's ``silhouette_score`` on at most 4,000
    images, higher by more than 2%), else the heads' are. ACC minus training-free, mean
    ± std over 5 seeds of the family mean, measured before the margin ("Evidence" page):
    planted +0.007 ± 0.005 (always the heads: -0.008 ± 0.030), calibrated +0.069 ± 0.012
    (the same), real +0.001 ± 0.001 (+0.004 ± 0.003): never below on a family's mean.

    **Opt-in: approximate neighbours.** TAC's exact search costs ``n**2 d`` multiply-adds
    per modality (some 2.7 hours per modality at ImageNet-1K scale on two CPU cores).
    ``"ivf"`` files every sample under its nearest of ``L = round(sqrt(n))`` centres and
    compares it with the samples under its ``P = max(24, ceil(L / 50))`` nearest: recall@50
    0.46 on a CLIP-like 1.28M x 512 world. ``"nndescent"`` refines the IVF graph at
    ``P = 4`` by NN-descent rounds (Dong, Charikar, Li, WWW 2011): recall@50 0.83 after 8
    rounds at 200,000 x 512. ``"hnsw"`` starts the rounds from faiss's HNSW search (8-bit
    codes, 48 links) and runs up to 2 rounds: recall@50 0.969 in 12.9 min at 1.28M x 512
    on two cores, against 126 min per modality for the exact search in the same run
    (``benchmarks/RESULTS.md``, "Cheaper rounds after the HNSW start"). ``"auto"`` takes
    the HNSW above 200,000 samples on the CPU, never the plain IVF (it missed the
    same-class neighbours the heads need); on a GPU it stays exact.

    References
    ----------
    .. [1] Y. Li, P. Hu, D. Peng, J. Lv, J. Fan, X. Peng, "Image Clustering with External
       Guidance", ICML 2024, arXiv:2310.11989.
    .. [2] B. Peng et al., "On the Provable Importance of Gradients for Language-Assisted
       Image Clustering", ICCV 2025, arXiv:2510.16335.

    Examples
    --------
    >>> from skgradnorm import GradNormNounSelector, MutualDistillationClusterer
    >>> from skgradnorm.datasets import make_planted_world
    >>> world = make_planted_world(n_samples=300, n_classes=3, random_state=0)
    >>> model = MutualDistillationClusterer(
    ...     n_clusters=3, n_neighbors=10, n_epochs=5, batch_size=100,
    ...     selector=GradNormNounSelector(world.noun_embeddings, n_centers=12, random_state=0),
    ...     random_state=0)
    >>> labels = model.fit_predict(world.data)
    >>> labels.shape, model.predict_proba(world.data).shape
    ((300,), (300, 3))
    >>> model.n_iter_, len(model.loss_curve_)
    (5, 5)
    """

    _parameter_constraints: dict = {
        "n_clusters": [Count(1, None, closed="left")],
        "selector": [HasMethods(["fit", "transform"]), None],
        "strategy": [StrOptions(set(STRATEGIES)), None],
        "encoder": [HasMethods(["transform", "encode_nouns"]), None],
        "vocabulary": ["array-like", None],
        "n_neighbors": [Interval(numbers.Integral, 1, None, closed="left")],
        "init": [StrOptions({"tac", "training-free"})],
        "init_epochs": [Interval(numbers.Integral, 1, None, closed="left")],
        "n_epochs": [Interval(numbers.Integral, 1, None, closed="left"), StrOptions({"auto"})],
        "batch_size": [Interval(numbers.Integral, 2, None, closed="left"), StrOptions({"auto"})],
        "temperature": [Interval(numbers.Real, 0, None, closed="neither"), StrOptions({"auto"})],
        "entropy_weight": [Interval(numbers.Real, 0, None, closed="left")],
        "size_prior": [
            StrOptions({"auto", "equal", "init"}),
            Interval(numbers.Real, 0, 1, closed="both"),
        ],
        "fallback": [StrOptions({"silhouette"}), None],
        "learning_rate": [Interval(numbers.Real, 0, None, closed="neither")],
        "betas": ["array-like"],
        "weight_decay": [Interval(numbers.Real, 0, None, closed="left")],
        "neighbor_backend": [StrOptions({"auto", "torch", "faiss"})],
        "neighbor_algorithm": [StrOptions({"auto", "exact", "ivf", "nndescent", "hnsw"})],
        "random_state": ["random_state"],
        "device": [None, str, torch.device],
        "verbose": ["verbose"],
    }

    def __init__(
        self,
        n_clusters=8,
        *,
        selector=None,
        strategy=None,
        encoder=None,
        vocabulary=None,
        n_neighbors=50,
        init="training-free",
        init_epochs=5,
        n_epochs="auto",
        batch_size="auto",
        temperature="auto",
        entropy_weight=5.0,
        size_prior="auto",
        fallback="silhouette",
        learning_rate=1e-3,
        betas=(0.9, 0.99),
        weight_decay=0.0,
        neighbor_backend="auto",
        neighbor_algorithm="exact",
        random_state=None,
        device=None,
        verbose=False,
    ):
        self.n_clusters = n_clusters
        self.selector = selector
        self.strategy = strategy
        self.encoder = encoder
        self.vocabulary = vocabulary
        self.n_neighbors = n_neighbors
        self.init = init
        self.init_epochs = init_epochs
        self.n_epochs = n_epochs
        self.batch_size = batch_size
        self.temperature = temperature
        self.entropy_weight = entropy_weight
        self.size_prior = size_prior
        self.fallback = fallback
        self.learning_rate = learning_rate
        self.betas = betas
        self.weight_decay = weight_decay
        self.neighbor_backend = neighbor_backend
        self.neighbor_algorithm = neighbor_algorithm
        self.random_state = random_state
        self.device = device
        self.verbose = verbose

    # -- set-up ------------------------------------------------------------------------
    _concatenate = False
    _passed_to_selector = ("encoder", "vocabulary", "strategy")

    def _make_selector(self):
        selector = super()._make_selector()
        given = selector.get_params()
        if given.get("noun_embeddings", 0) is None and given.get("encoder") is None:
            raise ValueError(
                "MutualDistillationClusterer needs a noun bank for its selector: pass "
                "selector=GradNormNounSelector(noun_embeddings=...) with the nouns' embeddings, "
                "or encoder=CLIPEncoder(...) to embed the vocabulary."
            )
        return selector

    def _resolved(self, name):
        return resolved(self, name)

    def _training_free_labels(self, X, T, rng):
        """``init="training-free"``: the labels of :class:`LanguageAssistedClusterer` with its
        defaults, the same selector and this ``random_state`` (spherical k-means of the unit
        ``[u ; t]``); None for TAC's init, which draws nothing here."""
        self.init_centers_ = None
        if self.init == "tac":
            return None
        seed = self.random_state
        if not isinstance(seed, numbers.Integral):
            seed = int(rng.randint(np.iinfo(np.int32).max))
        self.init_centers_, labels = training_free_clusters(
            X, T, self.n_clusters, seed, self.device
        )
        return labels

    # -- fit / predict -----------------------------------------------------------------
    @_fit_context(prefer_skip_nested_validation=False)
    def fit(self, X, y=None):
        """Retrieve text counterparts, find neighbours and train the two cluster heads.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features), or images
            Image embeddings, or images (paths, PIL images, uint8 arrays) when an
            ``encoder`` is given.
        y : None
            Ignored; present for API consistency.

        Returns
        -------
        self : MutualDistillationClusterer
            The fitted clusterer.
        """
        if self.size_prior not in ("auto", "equal") and self.init == "tac":
            raise ValueError(
                f"size_prior={self.size_prior!r} pulls the cluster sizes towards "
                'the training-free start\'s, which init="tac" does not make; pass '
                'size_prior="equal" (or "auto"), or init="training-free".'
            )
        selector = self._make_selector()
        X = self._images(X, selector, reset=True)
        batch_size = check_sizes(self, X.shape[0])
        dev = resolve_device(self.device)
        rng = check_random_state(self.random_state)

        self.selector_ = selector.fit(X)
        T_native = np.asarray(self.selector_.transform(X))
        T = T_native.astype(np.float32, copy=False)
        U = l2_normalize_rows(X, name="X", dtype=np.float32)
        algorithm = self._neighbor_algorithm(X.shape[0], dev)
        image_neighbors, text_neighbors = (
            nearest_neighbors(
                Z,
                self.n_neighbors,
                backend=self.neighbor_backend,
                device=dev,
                algorithm=algorithm,
                random_state=None if algorithm == "exact" else rng.randint(np.iinfo(np.int32).max),
            ).astype(np.int32)
            for Z in (U, T)
        )
        self.init_labels_ = self._training_free_labels(X, T_native, rng)
        U_t = torch.from_numpy(U).to(dev)
        self.temperature_ = float(self._resolved("temperature"))
        self.batch_size_ = int(batch_size)
        image_head, text_head = self._train(
            U_t, torch.from_numpy(T).to(dev), image_neighbors, text_neighbors, rng
        )
        self.n_iter_ = len(self.loss_curve_)
        self.image_head_, self.text_head_ = image_head.cpu(), text_head.cpu()
        return self

    def _neighbor_algorithm(self, n_samples, dev):
        """``neighbor_algorithm``, ``"auto"`` resolved once (exact fits then draw no seed)."""
        if self.neighbor_algorithm != "auto":
            return self.neighbor_algorithm
        return auto_algorithm(n_samples, on_cpu=dev.type == "cpu", faiss_ok=faiss_available())

    def _train(self, U, T, image_neighbors, text_neighbors, rng):
        """The warm start (``init="training-free"``), then TAC's training; sets
        ``loss_curve_`` and ``labels_``; returns the trained heads."""
        adam = {
            "learning_rate": float(self.learning_rate),
            "betas": tuple(float(b) for b in self.betas),
            "weight_decay": float(self.weight_decay),
        }
        heads = new_heads(U.shape[1], self.n_clusters, rng, U.device, U.dtype)
        if self.init_labels_ is not None:
            fit_heads_to_labels(
                heads,
                (U, T),
                torch.from_numpy(self.init_labels_).to(U.device),
                n_epochs=int(self.init_epochs),
                batch_size=self.batch_size_,
                rng=rng,
                **adam,
            )
        image_head, text_head, self.loss_curve_ = train_heads(
            U,
            T,
            image_neighbors,
            text_neighbors,
            self.n_clusters,
            n_epochs=int(self._resolved("n_epochs")),
            batch_size=self.batch_size_,
            temperature=self.temperature_,
            entropy_weight=float(self.entropy_weight),
            rng=rng,
            verbose=bool(self.verbose),
            heads=heads,
            prior=size_prior(self.init_labels_, self.n_clusters, self.size_prior, U),
            **adam,
        )
        self.labels_ = head_probabilities(image_head, U).argmax(dim=1).cpu().numpy()
        self.chosen_, self.silhouettes_ = "heads", None
        if self.init_labels_ is not None and self.fallback is not None:
            self.chosen_, self.silhouettes_ = choose(
                U.cpu().numpy(), self.labels_, self.init_labels_
            )
        if self.chosen_ == "training-free":
            self.labels_ = self.init_labels_.copy()
        return image_head, text_head

    def predict_proba(self, X):
        """The image head's cluster probabilities of new images (with ``chosen_`` equal
        to ``"training-free"``: the one-hot of the nearest of ``init_centers_``).

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features), or images
            Image embeddings (L2-normalised here), or images when an ``encoder`` is given.

        Returns
        -------
        proba : ndarray of shape (n_samples, n_clusters), float32
            Rows sum to one.
        """
        check_is_fitted(self)
        X = self._images(X, self.selector_, reset=False)
        if getattr(self, "chosen_", "heads") == "training-free":
            T = np.asarray(self.selector_.transform(X))
            nearest = nearest_centers(joint_embedding(X, T), self.init_centers_, self.device)
            return np.eye(self.n_clusters, dtype=np.float32)[nearest]
        U = l2_normalize_rows(X, name="X", dtype=np.float32)
        dev = resolve_device(self.device)
        head = self.image_head_.to(dev)
        try:
            return head_probabilities(head, torch.from_numpy(U).to(dev)).cpu().numpy()
        finally:
            self.image_head_ = head.cpu()

    def predict(self, X):
        """Assign new images to the cluster their image head rates most probable (with
        ``chosen_`` equal to ``"training-free"``: the nearest of ``init_centers_``).

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features), or images
            Image embeddings, or images when an ``encoder`` is given.

        Returns
        -------
        labels : ndarray of shape (n_samples,)
            Index of the cluster each image belongs to.
        """
        return self.predict_proba(X).argmax(axis=1)
