"""Benchmark the spliced noun-prompt tokenizer against open_clip's, and check it on the bank.

Reproduce (from the repository root; about 5 minutes on a 2-core CPU, most of it the
exactness check by open_clip's slow tokenizer, nothing downloaded)::

    HF_HUB_OFFLINE=1 nice .venv/bin/python benchmarks/bench_tokenizer.py

Options: ``--variant paper`` (the noun bank), ``--sample-nouns 3000`` (nouns of the
side-by-side timing), ``--rounds 2``, ``--jobs 2`` (processes of the exactness check),
``--reference-cache FILE.npz`` (keep open_clip's ids of the whole bank there and reuse
them on the next run, if the bank, templates and open_clip version match).

What is measured
----------------
The prompts are ``template.format(noun)`` for every distinct noun of the bank (what
``CLIPEncoder.encode_nouns`` embeds: it embeds each distinct string once) and the paper's
seven templates, in noun-major order: 833,238 prompts for the paper bank.

* speed, side by side: on one thread (``torch.set_num_threads(1)``, one process), a spread
  sample of ``--sample-nouns`` nouns with every template, tokenized by open_clip's
  ``SimpleTokenizer`` and by the spliced tokenizer (``skgradnorm._clip._tokenizer``), each with a
  new tokenizer per round (cold BPE caches, as in a new process), in interleaved rounds;
* the spliced tokenizer on the whole bank, cold (a new tokenizer: its self-check, every
  BPE merge of the bank, the fallback prompts), warm (the same tokenizer again), and in
  chunks of 4,096 nouns as ``encode_nouns`` calls it (a new tokenizer, kept across chunks);
* exactness: open_clip's ids of the whole bank (``open_clip.tokenize``, the default
  ``SimpleTokenizer``; in ``--jobs`` processes, not timed) against the spliced tokenizer's,
  row by row; and how many prompts took the fallback, and why.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402
import torch  # noqa: E402

from skgradnorm._clip._noun_cache import DEFAULT_CHUNK_SIZE  # noqa: E402
from skgradnorm._clip._tokenizer import (  # noqa: E402
    _CLASS_OF,
    _JOINS,
    NounPromptTokenizer,
    _is_safe_text,
    tokenize_prompts,
)
from skgradnorm._utils._compat import import_open_clip  # noqa: E402
from skgradnorm.vocabulary import PAPER_TEMPLATES, wordnet_nouns  # noqa: E402


def _reference_chunk(root, nouns, templates):
    """open_clip's ids of a chunk of prompts (runs in a worker process), as int32."""
    sys.path.insert(0, root)
    from skgradnorm._utils._compat import import_open_clip

    open_clip = import_open_clip()
    prompts = [t.format(n) for n in nouns for t in templates]
    return open_clip.tokenize(prompts).numpy().astype(np.int32)


def reference_ids(nouns, templates, jobs, cache_path=None):
    """open_clip's ids of every prompt, noun-major, (n * len(templates), 77) int32."""
    from joblib import Parallel, delayed

    open_clip = import_open_clip()
    meta = np.asarray(
        [open_clip.__version__, str(len(nouns)), repr(tuple(templates)), nouns[0], nouns[-1]]
    )
    if cache_path is not None and Path(cache_path).is_file():
        with np.load(cache_path) as data:
            if data["meta"].tolist() == meta.tolist():
                print(f"open_clip's ids read from {cache_path}")
                return data["ids"]
    step = 4000
    chunks = [nouns[i : i + step] for i in range(0, len(nouns), step)]
    start = time.perf_counter()
    parts = Parallel(n_jobs=jobs)(
        delayed(_reference_chunk)(str(ROOT), chunk, templates) for chunk in chunks
    )
    ids = np.concatenate(parts)
    print(
        f"open_clip's ids of {len(ids):,} prompts computed in {time.perf_counter() - start:.0f} s "
        f"({jobs} processes)"
    )
    if cache_path is not None:
        np.savez(cache_path, ids=ids, meta=meta)
    return ids


def fallback_reasons(nouns, templates, mask):
    """Count the fallback prompts by reason (mirrors _tokenizer's rule)."""
    reasons = {}
    for i, j in zip(*np.nonzero(mask), strict=True):
        noun, template = nouns[i], templates[j]
        prefix, suffix = template.split("{}")
        if not _is_safe_text(noun):
            why = "noun has characters outside safe ASCII"
        elif not noun.strip(" "):
            why = "empty noun"
        elif suffix and _JOINS[_CLASS_OF[noun[-1]], _CLASS_OF[suffix[0]]]:
            why = f"noun ends in {noun[-1]!r} before the template's {suffix[0]!r}"
        elif prefix and _JOINS[_CLASS_OF[prefix[-1]], _CLASS_OF[noun[0]]]:
            why = f"template's {prefix[-1]!r} before the noun's first {noun[0]!r}"
        else:
            why = "template"
        reasons.setdefault(why, []).append(f"{template.format(noun)!r}")
    return reasons


def timed(fn):
    start = time.perf_counter()
    out = fn()
    return out, time.perf_counter() - start


def main(argv=None):
    parser = argparse.ArgumentParser(description="noun-prompt tokenizer benchmark")
    parser.add_argument("--variant", default="paper")
    parser.add_argument("--sample-nouns", type=int, default=3000)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("--reference-cache", default=None)
    args = parser.parse_args(argv)

    torch.set_num_threads(1)
    open_clip = import_open_clip()
    SimpleTokenizer = open_clip.tokenizer.SimpleTokenizer
    templates = list(PAPER_TEMPLATES)
    nouns = list(dict.fromkeys(wordnet_nouns(args.variant)))
    n_prompts = len(nouns) * len(templates)
    print(f"open_clip {open_clip.__version__}, torch {torch.__version__}, 1 thread")
    print(f"uptime: {subprocess.run(['uptime'], capture_output=True, text=True).stdout.strip()}")
    print(f"{len(nouns):,} distinct nouns x {len(templates)} templates = {n_prompts:,} prompts")

    # Speed, side by side, on a spread sample (cold caches each round).
    picks = np.linspace(0, len(nouns) - 1, min(args.sample_nouns, len(nouns))).astype(int)
    sample = [nouns[i] for i in picks]
    prompts = [t.format(n) for n in sample for t in templates]
    rates = {"open_clip SimpleTokenizer": [], "spliced (skgradnorm._tokenizer)": []}
    for _ in range(args.rounds):
        tok = SimpleTokenizer()
        want, sec = timed(lambda tok=tok: tok(prompts))
        rates["open_clip SimpleTokenizer"].append(len(prompts) / sec)
        tok = SimpleTokenizer()
        got, sec = timed(lambda tok=tok: NounPromptTokenizer.for_tokenizer(tok)(sample, templates))
        rates["spliced (skgradnorm._tokenizer)"].append(len(prompts) / sec)
        assert torch.equal(got, want), "the sample's ids differ"
    print(
        f"\nSide by side, {len(prompts):,} prompts ({len(sample):,} nouns), {args.rounds} rounds:"
    )
    print("| tokenizer | prompts/s (each round) | ratio |")
    print("|---|---|---|")
    base = np.median(rates["open_clip SimpleTokenizer"])
    for name, values in rates.items():
        each = ", ".join(f"{v:,.0f}" for v in values)
        print(f"| {name} | {each} | {np.median(values) / base:.1f} |")

    # The whole bank: cold, then warm.
    tok = SimpleTokenizer()
    fast, build_s = timed(lambda: NounPromptTokenizer.for_tokenizer(tok))
    ids, cold_s = timed(lambda: fast(nouns, templates))
    mask = fast.last_fallback.copy()
    _, warm_s = timed(lambda: fast(nouns, templates))
    cold_total = build_s + cold_s
    print(f"\nWhole bank, spliced tokenizer ({n_prompts:,} prompts, 1 thread):")
    print(
        f"  cold (new tokenizer, self-check included): {cold_total:.2f} s, "
        f"{n_prompts / cold_total:,.0f} prompts/s"
    )
    print(f"  warm (same tokenizer again): {warm_s:.2f} s, {n_prompts / warm_s:,.0f} prompts/s")
    # As encode_nouns calls it: one cache chunk of nouns at a time, one tokenizer throughout.
    tok = SimpleTokenizer()
    size = DEFAULT_CHUNK_SIZE

    def by_chunks():
        for i in range(0, len(nouns), size):
            tokenize_prompts(tok, nouns[i : i + size], templates)

    _, chunked_s = timed(by_chunks)
    print(
        f"  in chunks of {size:,} nouns as encode_nouns runs it (new tokenizer): "
        f"{chunked_s:.2f} s, {n_prompts / chunked_s:,.0f} prompts/s"
    )
    open_clip_estimate = n_prompts / base
    print(
        f"  open_clip at its sample rate would take about {open_clip_estimate:.0f} s "
        f"({open_clip_estimate / cold_total:.0f} x the cold spliced run)"
    )
    print(f"\nFallback (open_clip's own tokenizer): {int(mask.sum()):,} prompts")
    for why, items in fallback_reasons(nouns, templates, mask).items():
        print(f"  {len(items):,}: {why}; e.g. {', '.join(items[:3])}")

    # Exactness on the whole bank.
    want = reference_ids(nouns, templates, args.jobs, args.reference_cache)
    differ = np.nonzero((ids.numpy() != want).any(axis=1))[0]
    print(f"\nExactness: {len(differ):,} of {n_prompts:,} rows differ from open_clip's ids")
    for r in differ[:10]:
        print(f"  {templates[r % len(templates)].format(nouns[r // len(templates)])!r}")
    print(f"uptime: {subprocess.run(['uptime'], capture_output=True, text=True).stdout.strip()}")
    return 1 if len(differ) else 0


if __name__ == "__main__":
    sys.exit(main())
