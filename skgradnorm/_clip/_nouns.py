"""Embedding a noun bank: the template ensemble, chunk by chunk with the cache, and what it
will cost, said before it starts.

- :func:`encode_noun_chunk` embeds nouns through the prompt templates (GradNorm's and TAC's
  ensemble: the raw prompt embeddings of a noun averaged, then L2-normalised).
- :func:`embed_nouns_in_chunks` walks a vocabulary in chunks, reusing and filling the
  on-disk :class:`~._noun_cache.NounEmbeddingCache`, with one progress bar.
- The cost estimate: the full WordNet bank (119,034 distinct nouns x 7 templates) takes
  seconds to minutes on a GPU and hours on a CPU. :class:`~skgradnorm.CLIPEncoder` times a
  sample of the nouns it is about to embed (:class:`TimedSample`, spread over the first
  chunk to compute) and extrapolates to every noun that is not cached yet. The sample is
  large enough to run in full batches (:func:`cost_sample_size`): small batches cost more
  per prompt than the real chunks' (a fixed cost per batch and per operation), which made
  an estimate from 48 nouns 1.6 to 2.8 times too high (``benchmarks/bench_noun_cost.py``).
  The timed sample is part of the work (its embeddings are used, never computed twice).
  :func:`describe_noun_cost` says the estimate in a few words (the command line's step
  line); :func:`announce_noun_cost` logs the full message and, for a verbose encoder whose
  caller was not told yet, warns (:class:`~skgradnorm.exceptions.SlowNounBankWarning`)
  when it exceeds :data:`SLOW_NOUN_BANK_SECONDS`. One sample, one message.
"""

from __future__ import annotations

import logging
import math
import time
import warnings

import numpy as np

from .._utils._progress import AVERAGE_SINCE_START, progress_bar
from .._utils._torch import device_name
from .._utils._validation import l2_normalize_rows
from ..exceptions import CacheUnavailableWarning, SlowNounBankWarning
from ..vocabulary import PAPER_TEMPLATES
from . import _noun_cache
from ._text import encode_prompts
from ._tokenizer import tokenize_prompts

__all__ = [
    "COST_SAMPLE_NOUNS",
    "SLOW_NOUN_BANK_SECONDS",
    "TimedSample",
    "announce_noun_cost",
    "check_strings",
    "check_templates",
    "cost_sample_size",
    "describe_noun_cost",
    "embed_noun_chunk",
    "embed_nouns_in_chunks",
    "encode_noun_chunk",
    "encode_sample",
    "format_duration",
    "noun_cache_for",
    "pending_nouns",
]

logger = logging.getLogger(__name__)

#: The fewest nouns timed (each with every template) to estimate the cost of a noun bank.
COST_SAMPLE_NOUNS = 48
#: The timed sample holds enough prompts for this many full text batches
#: (:func:`cost_sample_size`).
COST_SAMPLE_BATCHES = 8
#: A verbose encoder warns before embedding nouns estimated to take longer than this.
SLOW_NOUN_BANK_SECONDS = 60.0


def format_duration(seconds: float) -> str:
    """``"4 h 38 min"``, ``"12 min"``, ``"40 s"``: a duration rounded for people."""
    seconds = max(0.0, float(seconds))
    if seconds < 90:
        return f"{max(1, round(seconds))} s"
    minutes = round(seconds / 60)
    if minutes < 90:
        return f"{minutes} min"
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes} min" if minutes else f"{hours} h"


def cost_sample_size(n_templates: int, batch_size: int) -> int:
    """Nouns in the timed sample of a chunk: enough prompts (``n_templates`` each) for
    :data:`COST_SAMPLE_BATCHES` full batches of ``batch_size``, and at least
    :data:`COST_SAMPLE_NOUNS`.

    Timed in batches as full as the real chunks', the sample's cost per prompt is the
    chunks' own: 48 nouns x 7 templates ran in batches of a few dozen prompts, whose fixed
    costs made the estimate 1.6 to 2.8 times too high. Measured on a busy 2-core CPU
    (ViT-B-32, 7 templates, batches of 256): 0.9 s per noun for 48 nouns, 0.52 for 128,
    0.29 for 256, 0.27 for 512 and 0.34 for 2,048 (``benchmarks/RESULTS.md``); the cost
    per noun settles from about seven full batches on.

    Examples
    --------
    >>> cost_sample_size(7, 256)
    293
    >>> cost_sample_size(7, 16)
    48
    """
    need = math.ceil(COST_SAMPLE_BATCHES * int(batch_size) / max(1, int(n_templates)))
    return max(COST_SAMPLE_NOUNS, need)


def describe_noun_cost(seconds, device) -> str:
    """The estimate in a few words: ``"about 12 min on cpu"``."""
    return f"about {format_duration(seconds)} on {device_name(device)}"


def noun_cost_message(seconds, n_nouns, n_templates, device, cache_folder, n_timed) -> str:
    """One paragraph: the estimate and the ways to make it shorter."""
    where = "a GPU (device='cuda')" if device.type == "cpu" else "a faster GPU"
    if cache_folder is None:
        cache = (
            "enable the cache (cache_dir=None or a folder), which makes the next run with "
            "the same model and nouns instant"
        )
    else:
        cache = (
            f"let it finish once: the embeddings are cached in {cache_folder}, and the next "
            "run with the same model and nouns is instant (an interrupted run resumes)"
        )
    return (
        f"Embedding {n_nouns:,} nouns x {n_templates} templates "
        f"({n_nouns * n_templates:,} prompts) will take {describe_noun_cost(seconds, device)} "
        f"(timed on {n_timed} of them). Ways to shorten it: run on "
        f"{where}; pass a smaller vocabulary; or {cache}."
    )


def announce_noun_cost(sample, n_nouns, n_templates, device, cache, *, warn, stacklevel=2):
    """The estimate for ``n_nouns`` from a :class:`TimedSample`, in seconds: logged, and
    warned (:class:`SlowNounBankWarning`) if ``warn`` and it is long."""
    seconds = sample.seconds_per_noun * n_nouns
    folder = None if cache is None else cache.root
    message = noun_cost_message(seconds, n_nouns, n_templates, device, folder, sample.n_nouns)
    logger.info(message)
    if warn and seconds > SLOW_NOUN_BANK_SECONDS:
        warnings.warn(message, SlowNounBankWarning, stacklevel=stacklevel + 1)
    return seconds


# --------------------------------------------------------------------------- inputs


def check_templates(templates):
    """The prompt templates to use (None: :data:`PAPER_TEMPLATES`), checked: a list of str."""
    templates = PAPER_TEMPLATES if templates is None else templates
    if isinstance(templates, str):
        raise ValueError(
            "templates must be a sequence of strings, not one string; "
            f"use templates=[{templates!r}]."
        )
    templates = list(templates)
    if not templates:
        raise ValueError(
            "templates is empty; give at least one template such as 'a photo of a {}.'."
        )
    for t in templates:
        if not isinstance(t, str) or t.count("{}") != 1:
            raise ValueError(
                f"each template must be a string with exactly one '{{}}' for the noun; got {t!r}."
            )
        try:
            t.format("noun")
        except (IndexError, KeyError, ValueError) as exc:
            raise ValueError(
                f"template {t!r} cannot be formatted with one noun ({exc}); double any "
                "literal braces ('{{' and '}}')."
            ) from exc
    return templates


def check_strings(values, name):
    """``values`` as a non-empty list of str, or a clear error."""
    if isinstance(values, str):
        raise TypeError(f"{name} must be a sequence of strings, not one string; use [{values!r}].")
    try:
        values = list(values)
    except TypeError:
        raise TypeError(
            f"{name} must be a sequence of strings; got {type(values).__name__}."
        ) from None
    if not values:
        raise ValueError(f"{name} is empty; pass at least one string.")
    for i, v in enumerate(values):
        if not isinstance(v, str):
            raise TypeError(f"{name}[{i}] is a {type(v).__name__}; all items must be str.")
        if not v.isascii():
            try:
                v.encode("utf-8")
            except UnicodeEncodeError as exc:  # a lone surrogate (e.g. a mis-decoded file)
                raise ValueError(
                    f"{name}[{i}] = {v!r} is not valid text ({exc.reason} at position "
                    f"{exc.start}); remove the character or read the file with its encoding."
                ) from None
    return [str(v) for v in values]


def sample_positions(n: int, size: int = COST_SAMPLE_NOUNS) -> np.ndarray:
    """The ``size`` nouns of a chunk of ``n`` that are timed for the cost estimate: spread
    evenly.

    Evenly spaced rather than the first ones, so that the sample's prompt lengths are
    those of the chunk (a sorted vocabulary starts with unusual entries).
    """
    if n <= size:
        return np.arange(n)
    return np.unique(np.linspace(0, n - 1, size).round().astype(np.intp))


def encode_noun_chunk(bundle, nouns, templates, *, batch_size, progress=None):
    """Embeddings of ``nouns``: each put into every template, the raw prompt embeddings
    averaged per noun, the mean L2-normalised (float32, ``(len(nouns), d)``).

    ``progress(k)`` is told as nouns are done. The prompts of one template share their
    first tokens, so they are encoded together; each noun is tokenized once and spliced into
    the templates (:mod:`._tokenizer`) when the model's tokenizer allows it.
    """
    n_t = len(templates)
    prompts = [t.format(noun) for noun in nouns for t in templates]
    # The prompts of one template share their first tokens: encode them together.
    groups = [np.arange(j, len(prompts), n_t) for j in range(n_t)]
    done = 0
    reported = 0

    def on_prompts(k):  # prompts done -> nouns done, for the noun progress bar
        nonlocal done, reported
        done += k
        step = done // n_t - reported
        if step and progress is not None:
            progress(step)
            reported += step

    # Each noun tokenized once and spliced into the templates (None: a tokenizer that
    # _tokenizer does not support; the model's tokenizer then tokenizes the prompts).
    tokens = tokenize_prompts(bundle.tokenizer, nouns, templates)
    raw = encode_prompts(
        bundle,
        prompts,
        batch_size=batch_size,
        groups=groups,
        on_progress=on_prompts,
        tokens=tokens,
    )
    mean = raw.reshape(len(nouns), n_t, -1).mean(axis=1)
    return l2_normalize_rows(mean, name="noun embeddings", copy=False, zero="keep")


# --------------------------------------------------------------------------- the chunks


class TimedSample:
    """A chunk's sample of nouns (:func:`sample_positions`), embedded and timed.

    Made for the cost estimate before the first chunk is computed; that chunk then uses its
    embeddings (:func:`embed_noun_chunk`), so nothing is embedded twice.
    """

    def __init__(self, bundle, chunk, templates, *, batch_size):
        size = cost_sample_size(len(templates), batch_size)
        picked = [chunk[i] for i in sample_positions(len(chunk), size)]
        self.key = sample_key(bundle, templates, picked)
        self.n_nouns = len(picked)
        self.embeddings, self.seconds_per_noun = encode_sample(
            bundle, picked, templates, batch_size=batch_size
        )
        self.announced = False


#: The sample's first nouns, embedded before the clock starts: a model's first run pays
#: one-time costs (memory pools, kernel choices; about a second on a CPU), which would
#: weigh on the estimate of a small model as much as the work itself.
COST_WARMUP_NOUNS = 8


def encode_sample(bundle, picked, templates, *, batch_size, progress=None):
    """``(embeddings, seconds per noun)`` of a chunk's sample: its first
    :data:`COST_WARMUP_NOUNS` nouns untimed, then the rest timed. The same two calls
    whether or not the sample is timed for an estimate, so the result never depends on it.
    """
    # A sample too small to time well (a chunk of a few nouns) is one call, untimed part
    # and all: splitting it would only add a call.
    k = COST_WARMUP_NOUNS if len(picked) >= 4 * COST_WARMUP_NOUNS else 0
    parts = []
    if k:
        parts.append(
            encode_noun_chunk(
                bundle, picked[:k], templates, batch_size=batch_size, progress=progress
            )
        )
    start = time.perf_counter()
    parts.append(
        encode_noun_chunk(bundle, picked[k:], templates, batch_size=batch_size, progress=progress)
    )
    seconds = (time.perf_counter() - start) / max(1, len(picked) - k)
    return np.concatenate(parts), seconds


def sample_key(bundle, templates, picked) -> tuple:
    """What a timed sample is valid for: the model, the templates and the nouns."""
    return (bundle.params, tuple(templates), tuple(picked))


def embed_noun_chunk(bundle, chunk, templates, *, batch_size, sample=None, progress=None):
    """One cache chunk: its sample (:func:`sample_positions`) apart, then the rest.

    The split is the same whether or not the sample was timed beforehand, so an estimate
    never changes the result, and a matching :class:`TimedSample` is reused, not recomputed.
    Returns ``(embeddings, used_sample)``.
    """
    positions = sample_positions(len(chunk), cost_sample_size(len(templates), batch_size))
    picked = [chunk[i] for i in positions]
    rest_positions = np.setdiff1d(np.arange(len(chunk)), positions)
    used = sample is not None and sample.key == sample_key(bundle, templates, picked)
    if used:
        first = sample.embeddings
        if progress is not None:
            progress(len(picked))
    else:
        first, _ = encode_sample(
            bundle, picked, templates, batch_size=batch_size, progress=progress
        )
    out = np.empty((len(chunk), first.shape[1]), dtype=np.float32)
    out[positions] = first
    if len(rest_positions):
        rest = [chunk[i] for i in rest_positions]
        out[rest_positions] = encode_noun_chunk(
            bundle, rest, templates, batch_size=batch_size, progress=progress
        )
    return out, used


def noun_cache_for(bundle, nouns, templates, cache_root):
    """The noun cache of these inputs, or ``None`` (cache off or random weights)."""
    if cache_root is None or bundle.source_kind == "random":
        return None
    try:
        weights = bundle.weights_identity(cache_root)
    except OSError as exc:  # pragma: no cover - the weights vanished since loading
        logger.info("noun cache off: cannot identify the weights (%s)", exc)
        return None
    key = _noun_cache.noun_cache_key(
        arch_name=bundle.arch_name,
        weights=weights,
        nouns=nouns,
        templates=templates,
        precision=bundle.precision,
    )
    return _noun_cache.NounEmbeddingCache(
        cache_root, key, chunk_size=_noun_cache.DEFAULT_CHUNK_SIZE
    )


def pending_nouns(cache, n_nouns, chunk_size=None):
    """``(n_pending, first_start)``: the nouns not cached yet and where the first such chunk
    starts (``first_start`` is None when everything is cached)."""
    chunk_size = _noun_cache.DEFAULT_CHUNK_SIZE if chunk_size is None else chunk_size
    starts = range(0, n_nouns, chunk_size)
    pending = [i for i in range(len(starts)) if cache is None or not cache.has_chunk(i)]
    if not pending:
        return 0, None
    n_pending = sum(min(n_nouns, starts[i] + chunk_size) - starts[i] for i in pending)
    return n_pending, starts[pending[0]]


def _cache_unavailable(cache, exc) -> None:
    warnings.warn(
        f"the noun-embedding cache in {cache.directory} cannot be used "
        f"({type(exc).__name__}: {exc}); the nouns are embedded without it and will be "
        "embedded again next time. Pass a writable cache_dir (or cache_dir=False to "
        "silence this).",
        CacheUnavailableWarning,
        stacklevel=4,
    )


def _cached_chunks(cache, starts, n, chunk_size):
    """``(cache, pending, stored)``: the chunks to compute and the arrays read from the
    cache; the cache becomes None (with one warning) when its folder cannot be used."""
    if cache is None:
        return None, list(range(len(starts))), {}
    pending, stored, dim = [], {}, None
    try:
        cache.check_folder()
        cache.remove_orphans()
        for index, start in enumerate(starts):
            rows = min(n, start + chunk_size) - start
            array = cache.load_chunk(index, rows, dim)
            if array is None:
                pending.append(index)
            else:
                dim = array.shape[1]
                stored[index] = array
    except OSError as exc:  # the folder itself; load_chunk reports damaged chunks
        _cache_unavailable(cache, exc)
        return None, list(range(len(starts))), {}
    if stored:
        logger.info(
            "noun cache %s: %d of %d chunks found", cache.directory, len(stored), len(starts)
        )
    return cache, pending, stored


def embed_nouns_in_chunks(
    nouns, compute, *, cache=None, chunk_size=None, verbose=False, on_start=None
):
    """Embed ``nouns`` chunk by chunk, reusing and filling ``cache`` when given.

    Parameters
    ----------
    nouns : list of str
        The vocabulary.
    compute : callable
        ``compute(list_of_nouns, progress) -> ndarray (n, d)``: embeds one chunk and may
        call ``progress(k)`` to report ``k`` more nouns done (for the progress bar).
    cache : NounEmbeddingCache or None
        Where finished chunks are read from and written to. ``None`` computes everything.
    chunk_size : int, optional
        Nouns per chunk; defaults to ``cache.chunk_size`` or :data:`DEFAULT_CHUNK_SIZE`.
    verbose : bool
        Show a progress bar.
    on_start : callable, optional
        ``on_start(n_pending, first_chunk)``: called once, before any computing, with the
        number of nouns to compute and the nouns of the first chunk to compute (used to
        estimate and announce the cost). Not called when everything is cached. It may
        return how many nouns of the first chunk it embedded already (the timed sample,
        which ``compute`` reports first): the bar starts with them done, so that they do
        not show as a burst of speed.

    Returns
    -------
    embeddings : ndarray of shape (len(nouns), d), float32
    """
    if cache is not None:
        chunk_size = cache.chunk_size
    elif chunk_size is None:
        chunk_size = _noun_cache.DEFAULT_CHUNK_SIZE
    n = len(nouns)
    starts = list(range(0, n, chunk_size))
    out = None
    dim = None
    cache, pending, stored = _cached_chunks(cache, starts, n, chunk_size)

    def place(index, array):
        nonlocal out, dim
        if out is None:
            dim = array.shape[1]
            out = np.empty((n, dim), dtype=np.float32)
        start = starts[index]
        out[start : start + array.shape[0]] = array

    for index, array in stored.items():
        place(index, array)
    done_rows = n - sum(min(n, starts[i] + chunk_size) - starts[i] for i in pending)
    ready = 0  # nouns of the first pending chunk embedded by on_start (the timed sample)
    if pending and on_start is not None:
        first = starts[pending[0]]
        ready = int(on_start(n - done_rows, nouns[first : first + chunk_size]) or 0)
    with progress_bar(
        total=n,
        initial=done_rows + ready,
        unit="noun",
        desc="Embedding nouns",
        enabled=verbose,
        smoothing=AVERAGE_SINCE_START,  # shortest prompts first: the rate falls in a block
    ) as bar:
        for index in pending:
            start = starts[index]
            chunk = nouns[start : start + chunk_size]
            # The first ``ready`` nouns reported of the first chunk are already on the bar.
            reported, skip = (ready, ready) if index == pending[0] else (0, 0)
            limit = len(chunk)

            def progress(k, _limit=limit):
                nonlocal reported, skip
                k = int(k)
                skipped = min(skip, max(0, k))
                skip, k = skip - skipped, k - skipped
                k = max(0, min(k, _limit - reported))
                if k:
                    reported += k
                    bar.update(k)

            array = np.asarray(compute(chunk, progress), dtype=np.float32)
            if array.ndim != 2 or array.shape[0] != len(chunk):
                raise RuntimeError(
                    f"compute returned shape {array.shape} for {len(chunk)} nouns"
                )  # pragma: no cover - internal contract
            if cache is not None:
                try:
                    cache.save_chunk(index, array)
                except OSError as exc:  # read-only, unwritable or full: go on without it
                    _cache_unavailable(cache, exc)
                    cache = None
            place(index, array)
            bar.update(len(chunk) - reported)
    return out
