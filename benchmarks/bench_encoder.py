"""Benchmark CLIPEncoder's text paths against open_clip's plain encode_text, and images.

Reproduce (from the repository root; about 2 minutes on a 2-core CPU, nothing downloaded)::

    HF_HUB_OFFLINE=1 .venv/bin/python benchmarks/bench_encoder.py

Options: ``--nouns 512`` (the noun sample), ``--baseline-nouns 96`` (its first nouns, which
the slow plain path encodes too), ``--rounds 4``, ``--text-batch 256``,
``--baseline-batch 64``, ``--images 64``, ``--image-batch 32``, ``--device cpu``,
``--seed 0``.

What is measured
----------------
The model is open_clip's real ViT-B-32 architecture with random weights
(``pretrained=None``: weights cannot be downloaded here), which gives real shapes and
speeds. The prompts are WordNet nouns drawn at random, each put into the paper's seven
templates (noun-major order, as ``encode_nouns`` builds them).

* plain: ``model.encode_text`` on the tokenizer's output (the full 77-token context), in
  batches of ``--baseline-batch``, on the baseline nouns' prompts.
* noun path: what ``CLIPEncoder.encode_nouns`` runs on those prompts (before averaging):
  each template's shared first tokens are computed once; the rest of every prompt, up to
  its end-of-text token, is sorted by length, cut into batches of little padding, and each
  batch is cut to its longest member; the last block runs for the pooled token only.
* ``encode_texts``: the same for arbitrary texts, where only the start token is shared.

All run on the same model object under ``torch.inference_mode`` with torch's default
thread count. The paths run in interleaved rounds so that a busy machine slows them
alike. The plain path costs the same for every prompt (always 77 tokens), so its rate on
the baseline subset is its rate on the whole sample; the speed-ups are ratios of prompts
per second. Outputs are compared on the prompts all paths encode (max absolute difference
of the unit embeddings).
"""

from __future__ import annotations

import argparse
import os
import sys
import time
import warnings
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np  # noqa: E402
import torch  # noqa: E402

from skgradnorm._clip._encoder import CLIPEncoder  # noqa: E402
from skgradnorm._clip._text import encode_prompts
from skgradnorm.vocabulary import (
    PAPER_TEMPLATES,  # noqa: E402
    wordnet_nouns,  # noqa: E402
)


def _l2(x):
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def main(argv=None):
    parser = argparse.ArgumentParser(description="CLIPEncoder throughput benchmark")
    parser.add_argument("--nouns", type=int, default=512)
    parser.add_argument("--baseline-nouns", type=int, default=96)
    parser.add_argument("--rounds", type=int, default=4)
    parser.add_argument("--text-batch", type=int, default=256)
    parser.add_argument("--baseline-batch", type=int, default=64)
    parser.add_argument("--images", type=int, default=64)
    parser.add_argument("--image-batch", type=int, default=32)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    n_t = len(PAPER_TEMPLATES)

    rng = np.random.default_rng(args.seed)
    vocab = sorted(set(wordnet_nouns()))  # distinct strings: each is embedded once
    nouns = [vocab[i] for i in rng.choice(len(vocab), size=args.nouns, replace=False)]
    prompts = [t.format(n) for n in nouns for t in PAPER_TEMPLATES]
    base_prompts = prompts[: args.baseline_nouns * n_t]

    enc = CLIPEncoder(
        "ViT-B-32",
        pretrained=None,
        device=args.device,
        text_batch_size=args.text_batch,
        batch_size=args.image_batch,
        cache_dir=False,
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the "random weights" warning: intended here
        t0 = time.perf_counter()
        bundle = enc._get_bundle()
        load_s = time.perf_counter() - t0
    model, tokenizer, device = bundle.model, bundle.tokenizer, bundle.device
    print(
        f"torch {torch.__version__}, {torch.get_num_threads()} threads, device {device}; "
        f"ViT-B-32 (random weights) built in {load_s:.1f} s"
    )
    lengths = bundle.text_tower.pool_index(tokenizer(prompts)) + 1
    print(
        f"{len(prompts)} prompts ({args.nouns} WordNet nouns x {n_t} templates); tokens per "
        f"prompt: mean {lengths.float().mean():.1f}, max {int(lengths.max())} "
        f"(context {tokenizer.context_length})"
    )

    def sync():
        if device.type == "cuda":
            torch.cuda.synchronize()

    def noun_path(ps):  # what encode_nouns runs on noun-major prompts (raw features)
        groups = [np.arange(j, len(ps), n_t) for j in range(n_t)]
        return _l2(encode_prompts(bundle, ps, groups=groups, batch_size=enc.text_batch_size))

    def plain_path(ps):
        parts = []
        with torch.inference_mode():
            for s in range(0, len(ps), args.baseline_batch):
                tok = tokenizer(ps[s : s + args.baseline_batch]).to(device)
                parts.append(model.encode_text(tok).float().cpu())
        return _l2(torch.cat(parts).numpy())

    paths = {"plain": plain_path, "noun": noun_path, "texts": enc.encode_texts}
    # Warm-up (allocator, kernels).
    for fn in paths.values():
        fn(prompts[: 2 * n_t])

    seconds = dict.fromkeys(paths, 0.0)
    outputs = {name: [] for name in paths}
    base_share = -(-args.baseline_nouns // args.rounds) * n_t
    all_share = -(-args.nouns // args.rounds) * n_t
    for r in range(args.rounds):
        for name, fn in paths.items():
            source = base_prompts if name == "plain" else prompts
            share = base_share if name == "plain" else all_share
            chunk = source[r * share : (r + 1) * share]
            sync()
            t0 = time.perf_counter()
            outputs[name].append(fn(chunk))
            sync()
            seconds[name] += time.perf_counter() - t0
    out = {name: np.concatenate(parts) for name, parts in outputs.items()}
    n_base = len(base_prompts)
    diff_noun = float(np.abs(out["noun"][:n_base] - out["plain"]).max())
    diff_texts = float(np.abs(out["texts"][:n_base] - out["plain"]).max())

    # Images: random 224 x 224 pictures, through the model's own preprocessing.
    images = list(rng.integers(0, 256, size=(args.images, 224, 224, 3), dtype=np.uint8))
    enc.transform(images[:2])
    sync()
    t0 = time.perf_counter()
    U = enc.transform(images)
    sync()
    img_s = time.perf_counter() - t0
    assert U.shape == (args.images, bundle.embed_dim)

    rate = {
        "plain": n_base / seconds["plain"],
        "noun": len(prompts) / seconds["noun"],
        "texts": len(prompts) / seconds["texts"],
    }
    rows = [
        ("open_clip encode_text (77 tokens)", n_base, seconds["plain"], rate["plain"], ""),
        (
            "noun path (encode_nouns)",
            len(prompts),
            seconds["noun"],
            rate["noun"],
            f"{rate['noun'] / rate['plain']:.1f}x",
        ),
        (
            "encode_texts (any texts)",
            len(prompts),
            seconds["texts"],
            rate["texts"],
            f"{rate['texts'] / rate['plain']:.1f}x",
        ),
        ("transform (224 px images)", args.images, img_s, args.images / img_s, ""),
    ]
    print()
    print(f"{'what':<36}{'items':>7}{'seconds':>10}{'items/s':>10}{'speed-up':>10}")
    for name, n, s, r, x in rows:
        print(f"{name:<36}{n:>7}{s:>10.2f}{r:>10.1f}{x:>10}")
    print()
    print(
        f"max |fast - plain| over the unit embeddings of the {n_base} shared prompts: "
        f"noun path {diff_noun:.2e}, encode_texts {diff_texts:.2e}"
    )
    n_bank = len(vocab) * n_t
    print(
        f"whole WordNet bank ({len(vocab)} nouns, {n_bank} prompts) at these rates: plain "
        f"{n_bank / rate['plain'] / 3600:.1f} h, noun path {n_bank / rate['noun'] / 3600:.1f} h"
    )


if __name__ == "__main__":
    main()
