"""How good is the noun-bank cost estimate? The estimate against the time really taken.

Reproduce (from the repository root; nothing downloaded; on a 2-core CPU about 15 minutes
for ViT-B-32 and 2 for the tiny model)::

    HF_HUB_OFFLINE=1 nice .venv/bin/python benchmarks/bench_noun_cost.py
    HF_HUB_OFFLINE=1 nice .venv/bin/python benchmarks/bench_noun_cost.py --model tiny

Options: ``--nouns 1500`` (the slice of WordNet nouns really embedded), ``--rounds 3``,
``--device cpu``, ``--model ViT-B-32`` (or ``tiny``: the test suite's 2-layer, 64-wide
architecture, where fixed costs weigh most), ``--seed 0``.

What is measured
----------------
The model is open_clip's architecture with random weights (``pretrained=None``: weights
cannot be downloaded here; speed does not depend on what the weights mean), the paper's
seven templates and the cache off. Each round draws ``--nouns`` random WordNet nouns, asks
a fresh encoder for :meth:`CLIPEncoder.estimate_noun_seconds` on them (which embeds and
times a sample of them in full batches: 293 nouns with the defaults), then times
:meth:`CLIPEncoder.encode_nouns` on the same nouns (which reuses the sample). The ratio
estimate / measured (the measured time including the timed sample) says how far the
extrapolation is off. Side by side, in the same round on the same nouns, another fresh
encoder makes the former estimate (48 nouns timed, ``COST_SAMPLE_BATCHES = 0``).

On a shared machine the load changes between the sample and the rest, which moves the
wall-time ratio either way; the same ratios from this process's CPU time (the sample's CPU
seconds per noun, extrapolated, over the CPU seconds of the whole job) show the bias of the
extrapolation itself. ``--threads 1`` makes CPU time cleanest (no threads waiting on
each other). The script also prints the estimate for the whole bundled bank, naming the
device as the command line does.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
import warnings
from pathlib import Path
from unittest.mock import patch

os.environ.setdefault("HF_HUB_OFFLINE", "1")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np  # noqa: E402
import torch  # noqa: E402

from skgradnorm._clip import _nouns  # noqa: E402
from skgradnorm._clip._encoder import CLIPEncoder  # noqa: E402
from skgradnorm._clip._nouns import (  # noqa: E402
    COST_SAMPLE_NOUNS,
    cost_sample_size,
    describe_noun_cost,
)
from skgradnorm._utils._compat import import_open_clip  # noqa: E402
from skgradnorm.vocabulary import PAPER_TEMPLATES, wordnet_nouns  # noqa: E402

#: The test suite's tiny architecture (tests/_clip_fixtures.py), registered by name.
TINY = {
    "embed_dim": 32,
    "vision_cfg": {"image_size": 32, "layers": 2, "width": 64, "patch_size": 8},
    "text_cfg": {"context_length": 77, "vocab_size": 49408, "width": 64, "heads": 4, "layers": 2},
}


def _encoder(args):
    enc = CLIPEncoder(args.model, pretrained=None, device=args.device, cache_dir=False)
    return enc.load_model()


def _timed(fn):
    """``(result, wall seconds, CPU seconds of this process)``."""
    wall, cpu = time.perf_counter(), time.process_time()
    out = fn()
    return out, time.perf_counter() - wall, time.process_time() - cpu


def main(argv=None):
    parser = argparse.ArgumentParser(description="noun-bank cost estimate vs measured time")
    parser.add_argument("--nouns", type=int, default=1500)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--model", default="ViT-B-32")
    parser.add_argument(
        "--threads", type=int, default=None, help="torch threads (default: torch's)"
    )
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    if args.model == "tiny":
        import_open_clip().factory._MODEL_CONFIGS["tiny"] = dict(TINY)
    if args.threads:
        torch.set_num_threads(args.threads)
    warnings.simplefilter("ignore")  # random weights, said once per encoder

    bank = wordnet_nouns()
    rng = np.random.default_rng(args.seed)
    n_templates = len(CLIPEncoder().templates or PAPER_TEMPLATES)
    size = cost_sample_size(n_templates, CLIPEncoder().text_batch_size)
    print(
        f"torch {torch.__version__}, {torch.get_num_threads()} threads, device {args.device}, "
        f"model {args.model}; sample: {size} nouns (before: {COST_SAMPLE_NOUNS})"
    )
    ratios = {"wall": [], "wall48": [], "cpu": [], "cpu48": []}
    for r in range(args.rounds):
        nouns = [bank[i] for i in rng.choice(len(bank), size=args.nouns, replace=False)]
        # The former estimate, side by side: 48 nouns timed (no full batches).
        old = _encoder(args)
        with patch.object(_nouns, "COST_SAMPLE_BATCHES", 0):
            est48, _, cpu48 = _timed(lambda o=old, n=nouns: o.estimate_noun_seconds(n))
        enc = _encoder(args)
        estimate, wall_sample, cpu_sample = _timed(
            lambda e=enc, n=nouns: e.estimate_noun_seconds(n)
        )
        _, wall_rest, cpu_rest = _timed(
            lambda e=enc, n=nouns: e.encode_nouns(n)
        )  # reuses the sample
        measured, cpu_total = wall_sample + wall_rest, cpu_sample + cpu_rest
        ratios["wall"].append(estimate / measured)
        ratios["wall48"].append(est48 / measured)
        ratios["cpu"].append(cpu_sample / size * len(nouns) / cpu_total)
        ratios["cpu48"].append(cpu48 / COST_SAMPLE_NOUNS * len(nouns) / cpu_total)
        print(
            f"round {r}: {len(nouns)} nouns, measured {measured:.1f} s wall; estimate "
            f"{estimate:.1f} s (ratio {ratios['wall'][-1]:.2f}; CPU time "
            f"{ratios['cpu'][-1]:.2f}), former 48-noun estimate {est48:.1f} s (ratio "
            f"{ratios['wall48'][-1]:.2f}; CPU time {ratios['cpu48'][-1]:.2f})"
        )
    whole = _encoder(args).estimate_noun_seconds(bank)
    print(f"whole bank ({len(set(bank))} distinct nouns): {describe_noun_cost(whole, args.device)}")
    for key, label in (
        ("wall", "estimate / measured, wall time"),
        ("wall48", "former 48-noun estimate / measured, wall time"),
        ("cpu", "the same from CPU time"),
        ("cpu48", "former, from CPU time"),
    ):
        v = ratios[key]
        print(
            f"{label} over {args.rounds} rounds: mean {np.mean(v):.2f}, min {np.min(v):.2f}, "
            f"max {np.max(v):.2f}"
        )


if __name__ == "__main__":
    main()
