"""Saying what embedding a noun bank will cost, before it starts.

The full WordNet bank is about 118k nouns x 7 templates: seconds to minutes on a GPU,
hours on a CPU. :class:`~skgradnorm.CLIPEncoder` times a short batch of the nouns it is
about to embed (:data:`COST_SAMPLE_NOUNS` of them, with every template), extrapolates to
all the nouns that are not cached yet, and reports the estimate here: always through
``logging``, and as a :class:`~skgradnorm.exceptions.SlowNounBankWarning` when the encoder
is verbose and the estimate exceeds :data:`SLOW_NOUN_BANK_SECONDS`. The timed batch is part
of the work (its embeddings are used, never computed twice). Small batches cost more per
prompt than the full chunks, so the estimate errs high (``benchmarks/bench_noun_cost.py``).
"""

from __future__ import annotations

import logging
import warnings

from ..exceptions import SlowNounBankWarning

__all__ = [
    "COST_SAMPLE_NOUNS",
    "SLOW_NOUN_BANK_SECONDS",
    "announce_noun_cost",
    "format_duration",
]

logger = logging.getLogger(__name__)

#: Nouns timed (each with every template) to estimate the cost of a noun bank.
COST_SAMPLE_NOUNS = 48
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


def noun_cost_message(seconds, n_nouns, n_templates, device, cache_folder) -> str:
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
        f"({n_nouns * n_templates:,} prompts) will take about {format_duration(seconds)} "
        f"on {device} (timed on {COST_SAMPLE_NOUNS} nouns; usually on the high side). Ways "
        "to shorten it: run on "
        f"{where}; pass a smaller vocabulary; or {cache}."
    )


def announce_noun_cost(
    seconds, n_nouns, n_templates, device, cache_folder, *, warn, stacklevel=2
) -> None:
    """Log the estimate; also warn (:class:`SlowNounBankWarning`) if ``warn`` and it is long."""
    message = noun_cost_message(seconds, n_nouns, n_templates, device, cache_folder)
    logger.info(message)
    if warn and seconds > SLOW_NOUN_BANK_SECONDS:
        warnings.warn(message, SlowNounBankWarning, stacklevel=stacklevel + 1)
