"""CLIPEncoder: embed images, texts and a noun bank with an open_clip CLIP model.

This module holds the estimator; the other rooms of :mod:`skgradnorm._clip` do the work:
``_model.py`` (loading the model from an open_clip tag, a local file or a folder, with clear
errors), ``_images.py`` (image inputs, decoding and file checks), ``_text.py`` (the fast
text path) and ``_tokenizer.py`` (noun prompts tokenized by splicing), ``_nouns.py``
(embedding a noun bank in chunks, and its cost estimate), ``_noun_cache.py`` and
``_image_cache.py`` (the on-disk caches). open_clip is imported lazily, on first use,
through :func:`skgradnorm._utils._compat.import_open_clip`.
"""

from __future__ import annotations

import logging
import os
from numbers import Integral

import numpy as np
import scipy.sparse as sp
import torch
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.utils._param_validation import Interval, Options, StrOptions

from .._utils._torch import resolve_device
from .._utils._validation import l2_normalize_rows
from ..exceptions import PretrainedWeightsError, UnreadableImageError
from ..vocabulary import PAPER_TEMPLATES
from . import _noun_cache
from ._image_cache import bundle_model_key, embed_with_cache, image_cache_for
from ._images import as_image_items, check_image_files, encode_images
from ._model import ModelBundle, load_bundle
from ._noun_cache import resolve_cache_dir
from ._nouns import (
    TimedSample,
    announce_noun_cost,
    check_strings,
    check_templates,
    cost_sample_size,
    embed_noun_chunk,
    embed_nouns_in_chunks,
    noun_cache_for,
    pending_nouns,
    sample_key,
    sample_positions,
)
from ._text import encode_prompts

__all__ = [
    "CLIPEncoder",
    "PAPER_TEMPLATES",
    "PretrainedWeightsError",
    "UnreadableImageError",
]

logger = logging.getLogger(__name__)


# --------------------------------------------------------------------------- the estimator


class CLIPEncoder(TransformerMixin, BaseEstimator):
    """Embed images, texts and nouns with an open_clip CLIP model.

    A stateless transformer: :meth:`transform` maps a list of images to L2-normalised CLIP
    image embeddings. :meth:`encode_texts` and :meth:`encode_nouns` embed strings with the
    text tower; nouns go through the prompt-template ensemble of the paper and their
    embeddings are cached on disk. The model is loaded on first use (not by ``__init__`` or
    :meth:`fit`) and is never pickled: an unpickled or cloned encoder loads it again.

    Text encoding does not pay for CLIP's fixed 77-token context: prompts are sorted by
    token length, batched, each batch is cut to its longest prompt and the text tower runs
    with its causal attention mask cut to match. The results equal open_clip's
    ``encode_text`` (to float rounding) at several times the speed.

    Parameters
    ----------
    model_name : str, default="ViT-B-32"
        An open_clip architecture name (``open_clip.list_models()``), or
        ``"hf-hub:org/repo"`` / ``"local-dir:/path"`` (then ``pretrained`` is ignored).
    pretrained : str, path-like or None, default="openai"
        The weights. An open_clip pretrained tag (``open_clip.list_pretrained()``), fetched
        by open_clip's normal loading (this needs network access the first time); or a
        local weights file (``.pt``, ``.bin``, ``.safetensors``) for ``model_name``; or a
        folder, or ``"local-dir:/path"``, holding ``open_clip_config.json`` and
        ``open_clip_model.safetensors`` (its config then defines the architecture). ``None``
        builds the architecture with random weights, which is only useful for tests and
        benchmarks (a warning says so).
    device : str, torch.device or None, default=None
        Where the model runs. ``None`` picks CUDA, then Apple's MPS, then the CPU.
    precision : {"fp32", "fp16", "bf16"} or None, default=None
        The model's precision. ``None`` means ``"fp16"`` on CUDA and ``"fp32"`` elsewhere.
        Outputs are float32 in every case.
    batch_size : int, default=64
        Images per forward pass. On out-of-memory errors the batch is halved and retried.
    text_batch_size : int, default=256
        Prompts per forward pass of the text tower (halved on out-of-memory errors).
    num_workers : int, default=0
        Worker processes (a torch ``DataLoader``) that read and preprocess images; 0 reads
        them in the main process.
    templates : sequence of str or None, default=None
        Prompt templates for :meth:`encode_nouns`, each with one ``{}`` for the noun.
        ``None`` uses the paper's seven templates,
        :data:`skgradnorm.vocabulary.PAPER_TEMPLATES`.
    cache_dir : str, path-like, False or None, default=None
        Folder for the cache of noun embeddings and of image-file embeddings (keyed by
        each file's content and by :meth:`model_key`). ``None`` uses
        ``$SKGRADNORM_CACHE`` if set, else ``~/.cache/skgradnorm``
        (``$XDG_CACHE_HOME/skgradnorm``). ``False`` disables the cache. Nothing is
        cached for random weights (``pretrained=None``).
    verbose : bool, default=False
        Show a progress bar (tqdm) while embedding, and warn
        (:class:`~skgradnorm.exceptions.SlowNounBankWarning`) before embedding nouns that
        are estimated to take more than a minute, unless :meth:`estimate_noun_seconds`
        already gave the caller that estimate. Quiet by default, as scikit-learn's
        estimators are (the command line turns it on when stderr is a terminal); the
        estimate is always logged (logger ``skgradnorm``, level INFO).

    See Also
    --------
    skgradnorm.vocabulary.wordnet_nouns : The WordNet noun bank.

    Notes
    -----
    This transformer learns nothing; :meth:`fit` only validates the parameters. The loaded
    model is kept in a private attribute that is dropped when pickling.

    A noun's embedding is the mean of the raw (unnormalised) text embeddings of its
    prompts, one per template, then L2-normalised.

    Examples
    --------
    Creating and fitting the encoder loads nothing; the weights are fetched on first use
    (the lines marked ``+SKIP`` need them, and network access or local weights):

    >>> from skgradnorm import CLIPEncoder
    >>> enc = CLIPEncoder(model_name="ViT-B-32", pretrained="openai")
    >>> enc.fit() is enc
    True
    >>> U = enc.transform(["cat.jpg", "dog.png"])  # doctest: +SKIP
    >>> U.shape, U.dtype  # doctest: +SKIP
    ((2, 512), dtype('float32'))
    >>> E = enc.encode_nouns(["cat", "dog", "car"])  # doctest: +SKIP
    >>> (U @ E.T).argmax(axis=1)  # doctest: +SKIP
    array([0, 1])

    The same calls run offline on the architecture with random weights (``pretrained=None``,
    meaningful for shapes and speed only; pass a local weights file for real embeddings):

    >>> import numpy as np
    >>> enc = CLIPEncoder("ViT-B-32", pretrained=None, device="cpu", cache_dir=False)
    >>> images = np.zeros((2, 64, 64, 3), dtype=np.uint8)  # an N x H x W x C uint8 batch
    >>> U = enc.transform(images)
    >>> U.shape, U.dtype
    ((2, 512), dtype('float32'))
    >>> enc.encode_nouns(["cat", "dog", "car"]).shape
    (3, 512)

    Without network, pass local weights instead of a tag:

    >>> enc = CLIPEncoder("ViT-B-32", pretrained="/models/open_clip_model.safetensors")
    >>> enc = CLIPEncoder(pretrained="local-dir:/models/vit-b-32")  # config + weights
    """

    _parameter_constraints: dict = {
        "model_name": [str],
        "pretrained": [str, os.PathLike, None],
        "device": [str, torch.device, None],
        "precision": [StrOptions({"fp32", "fp16", "bf16"}), None],
        "batch_size": [Interval(Integral, 1, None, closed="left")],
        "text_batch_size": [Interval(Integral, 1, None, closed="left")],
        "num_workers": [Interval(Integral, 0, None, closed="left")],
        "templates": ["array-like", None],
        "cache_dir": [str, os.PathLike, Options(bool, {False}), None],
        "verbose": ["boolean"],
    }

    def __init__(
        self,
        model_name="ViT-B-32",
        pretrained="openai",
        *,
        device=None,
        precision=None,
        batch_size=64,
        text_batch_size=256,
        num_workers=0,
        templates=None,
        cache_dir=None,
        verbose=False,
    ):
        self.model_name = model_name
        self.pretrained = pretrained
        self.device = device
        self.precision = precision
        self.batch_size = batch_size
        self.text_batch_size = text_batch_size
        self.num_workers = num_workers
        self.templates = templates
        self.cache_dir = cache_dir
        self.verbose = verbose

    # ----------------------------------------------------------------- sklearn protocol

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.requires_fit = False
        tags.input_tags.two_d_array = False
        tags.input_tags.three_d_array = True
        tags.input_tags.string = True
        tags.transformer_tags.preserves_dtype = []
        return tags

    def __getstate__(self):
        # A copy: ``object.__getstate__`` may return the live ``__dict__`` itself, and
        # popping from it would unload the model of the encoder being pickled.
        state = dict(super().__getstate__())
        state.pop("_model_bundle", None)
        state.pop("_noun_sample", None)
        return state

    def fit(self, X=None, y=None):
        """Validate the parameters; nothing is learned and no model is loaded.

        Parameters
        ----------
        X : images or None
            Not used; a sparse matrix is refused (images are never sparse).
        y : ignored

        Returns
        -------
        self : CLIPEncoder
        """
        self._validate_params()
        check_templates(self.templates)
        if sp.issparse(X):
            raise TypeError("CLIPEncoder embeds images; a sparse matrix is not images.")
        return self

    def transform(self, X):
        """Embed images.

        Parameters
        ----------
        X : sequence of images, PIL image or ndarray
            A list (or other sequence) whose items are image file paths (str or
            ``pathlib.Path``), PIL images or uint8 arrays (H x W grayscale, H x W x C with C
            in 1, 3, 4). A single uint8 array is one image (H x W or H x W x C) or a batch
            (N x H x W x C). Images are decoded as a browser shows them: EXIF orientation
            is applied, 16-bit images are scaled to 8 bits (not clipped), float images
            from [0, 1] or else from their own range; RGBA, palette, grayscale and CMYK
            images are converted to RGB (alpha is dropped). Images are then preprocessed
            with the model's own transform.

        Returns
        -------
        embeddings : ndarray of shape (n_images, embed_dim), float32
            L2-normalised image embeddings, in the order of ``X``.

        Raises
        ------
        UnreadableImageError
            If image files cannot be read; the error lists every such file.
        """
        self._validate_params()
        items = as_image_items(X)
        check_image_files(items)
        bundle = self._get_bundle()

        def embed(subset, positions):
            return encode_images(
                bundle,
                subset,
                batch_size=self.batch_size,
                num_workers=self.num_workers,
                verbose=self.verbose,
                positions=positions,
            )

        cache = image_cache_for(bundle, resolve_cache_dir(self.cache_dir))
        return embed_with_cache(items, embed, cache)

    def load_model(self):
        """Load the model now, rather than on first use, and return the encoder.

        This is where a wrong weights file, a wrong architecture or unreachable weights
        fail, in one line, so calling it first checks the weights before any long work.

        Returns
        -------
        self : CLIPEncoder

        Raises
        ------
        PretrainedWeightsError
            If the weights cannot be loaded: a file that is not an open_clip state dict of
            ``model_name``, or a tag that is neither cached nor downloadable.
        """
        self._validate_params()
        self._get_bundle()
        return self

    def model_key(self):
        """What identifies this encoder's image embeddings, as a JSON-able dict.

        The architecture, the identity of the weights (the SHA-256 of a local file, or the
        tag), the precision, the preprocessing, the image decoding rules and the library
        versions: two encoders with equal keys give the same embeddings. The image cache
        is keyed by it, and ``skgradnorm._clip._embedding_files.save_embeddings`` stores it beside
        saved embeddings, to check them against the encoder that reads them back.
        Loads the model. With random weights (``pretrained=None``) the key says so, and
        equal keys do not mean equal embeddings (nothing is cached then).

        Returns
        -------
        key : dict
        """
        self._validate_params()
        bundle = self._get_bundle()
        return bundle_model_key(bundle, resolve_cache_dir(self.cache_dir))

    def get_feature_names_out(self, input_features=None):
        """Names of the output features: ``clipencoder0``, ``clipencoder1``, ...

        This loads the model (to learn the embedding dimension). ``input_features`` must be
        None: images have no feature names.
        """
        if input_features is not None:
            raise ValueError(
                "CLIPEncoder embeds images, which have no input feature names; call "
                "get_feature_names_out() without input_features."
            )
        d = self._get_bundle().embed_dim
        return np.asarray([f"clipencoder{i}" for i in range(d)], dtype=object)

    # ----------------------------------------------------------------- public encoders

    def encode_texts(self, texts):
        """Embed raw strings with the text tower.

        Parameters
        ----------
        texts : sequence of str
            The texts (prompts), used as given.

        Returns
        -------
        embeddings : ndarray of shape (n_texts, embed_dim), float32
            L2-normalised text embeddings.
        """
        self._validate_params()
        texts = check_strings(texts, "texts")
        bundle = self._get_bundle()
        raw = encode_prompts(
            bundle, texts, batch_size=self.text_batch_size, progress=bool(self.verbose)
        )
        return l2_normalize_rows(raw, name="text embeddings", copy=False, zero="keep")

    def encode_nouns(self, nouns):
        """Embed nouns through the prompt-template ensemble, with a disk cache.

        Each noun is put into every template; the raw (unnormalised) text embeddings of its
        prompts are averaged and the mean is L2-normalised. Unless ``cache_dir=False``, the
        result is cached on disk in resumable chunks (see ``skgradnorm._clip._noun_cache``), keyed
        by the model, its weights, the nouns, the templates, the precision and the library
        versions; a second call with the same inputs computes nothing.

        A noun that appears several times (the paper's WordNet bank repeats a word once per
        sense: ``head`` 33 times) is embedded once, and the cache holds each distinct
        string once; every occurrence gets the same row.

        Parameters
        ----------
        nouns : sequence of str
            The vocabulary, e.g. :func:`skgradnorm.vocabulary.wordnet_nouns`.

        Returns
        -------
        embeddings : ndarray of shape (n_nouns, embed_dim), float32
            L2-normalised noun embeddings, in the order of ``nouns``.
        """
        self._validate_params()
        templates = check_templates(self.templates)
        nouns = check_strings(nouns, "nouns")
        all_nouns, nouns = nouns, list(dict.fromkeys(nouns))  # distinct, first-occurrence order
        bundle = self._get_bundle()
        cache = noun_cache_for(bundle, nouns, templates, resolve_cache_dir(self.cache_dir))
        if cache is None and bundle.source_kind == "random" and self.cache_dir is not False:
            logger.info("random weights (pretrained=None): noun embeddings are not cached")

        def compute(chunk, progress):
            out, used = embed_noun_chunk(
                bundle,
                chunk,
                templates,
                batch_size=self.text_batch_size,
                sample=getattr(self, "_noun_sample", None),
                progress=progress,
            )
            if used:
                self._noun_sample = None  # used once
            return out

        def on_start(n_pending, first_chunk):
            if n_pending <= 2 * cost_sample_size(len(templates), self.text_batch_size):
                return 0  # short work: not worth a word, nor a sample
            sample = self._timed_sample(bundle, first_chunk, templates)
            announced, sample.announced = sample.announced, False
            if not announced:  # else estimate_noun_seconds told the caller (and logged it)
                n_t, verbose = len(templates), bool(self.verbose)
                announce_noun_cost(  # stacklevel 4: the caller of encode_nouns
                    sample, n_pending, n_t, bundle.device, cache, warn=verbose, stacklevel=4
                )
            return sample.n_nouns  # embedded already: the bar starts with them

        out = embed_nouns_in_chunks(
            nouns, compute, cache=cache, verbose=self.verbose, on_start=on_start
        )
        if len(nouns) < len(all_nouns):  # every occurrence of a noun gets its row
            row = {noun: i for i, noun in enumerate(nouns)}
            out = out[[row[noun] for noun in all_nouns]]
        return out

    def estimate_noun_seconds(self, nouns):
        """Estimated seconds that :meth:`encode_nouns` needs for ``nouns``; 0.0 if cached.

        Loads the model, counts the distinct nouns whose embeddings are not cached yet,
        times a sample of them (every template, in full batches of ``text_batch_size``
        prompts: 293 nouns with the paper's 7 templates) and extrapolates. The timed
        sample is kept and used by the next :meth:`encode_nouns` of the same nouns, so
        nothing is embedded twice, and that call does not announce the cost again (the
        caller was told). The estimate is also logged.

        Parameters
        ----------
        nouns : sequence of str
            The vocabulary that :meth:`encode_nouns` will be given.

        Returns
        -------
        seconds : float
            The estimate, 0.0 when every noun is cached. It includes the timed batch.
        """
        self._validate_params()
        templates = check_templates(self.templates)
        # The distinct nouns, as encode_nouns embeds them: the same cache, the same sample.
        nouns = list(dict.fromkeys(check_strings(nouns, "nouns")))
        bundle = self._get_bundle()
        cache = noun_cache_for(bundle, nouns, templates, resolve_cache_dir(self.cache_dir))
        n_pending, first = pending_nouns(cache, len(nouns))
        if not n_pending:
            return 0.0
        sample = self._timed_sample(
            bundle, nouns[first : first + _noun_cache.DEFAULT_CHUNK_SIZE], templates
        )
        sample.announced = True
        n_t = len(templates)
        return float(announce_noun_cost(sample, n_pending, n_t, bundle.device, cache, warn=False))

    # ----------------------------------------------------------------- internals

    def _timed_sample(self, bundle, chunk, templates):
        """The timed sample of ``chunk`` (kept for the chunk's computation, see
        :func:`._nouns.embed_noun_chunk`), made once."""
        size = cost_sample_size(len(templates), self.text_batch_size)
        picked = [chunk[i] for i in sample_positions(len(chunk), size)]
        sample = getattr(self, "_noun_sample", None)
        if sample is None or sample.key != sample_key(bundle, templates, picked):
            sample = TimedSample(bundle, chunk, templates, batch_size=self.text_batch_size)
            self._noun_sample = sample
        return sample

    def _bundle_params(self):
        device = resolve_device(self.device)
        precision = self.precision
        if precision is None:
            precision = "fp16" if device.type == "cuda" else "fp32"
        pretrained = os.fspath(self.pretrained) if self.pretrained is not None else None
        return (self.model_name, pretrained, str(device), precision)

    def _get_bundle(self) -> ModelBundle:
        params = self._bundle_params()
        bundle = getattr(self, "_model_bundle", None)
        if bundle is None or bundle.params != params:
            bundle = load_bundle(params, stacklevel=4)
            self._model_bundle = bundle
        return bundle
