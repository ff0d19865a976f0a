"""How good is the noun-bank cost estimate? The estimate against the time really taken.

Reproduce (from the repository root; about 3 minutes on a 2-core CPU, nothing downloaded)::

    HF_HUB_OFFLINE=1 .venv/bin/python benchmarks/bench_noun_cost.py

Options: ``--nouns 1000`` (the slice of WordNet nouns really embedded), ``--rounds 3``,
``--device cpu``, ``--model ViT-B-32``, ``--seed 0``.

What is measured
----------------
The model is open_clip's ViT-B-32 architecture with random weights (``pretrained=None``:
weights cannot be downloaded here; speed does not depend on what the weights mean), the
paper's seven templates and the cache off. Each round draws ``--nouns`` random WordNet
nouns, asks a fresh encoder for :meth:`CLIPEncoder.estimate_noun_seconds` on them (which
embeds and times 48 of them), then times :meth:`CLIPEncoder.encode_nouns` on the same
nouns (which reuses the 48). The ratio estimate / measured (the measured time including
the timed batch) says how far the extrapolation is off; the script also prints the
estimate for the whole bundled bank (117,798 nouns) from the same encoder.
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
from skgradnorm._clip._nouns import format_duration  # noqa: E402
from skgradnorm.vocabulary import wordnet_nouns  # noqa: E402


def main(argv=None):
    parser = argparse.ArgumentParser(description="noun-bank cost estimate vs measured time")
    parser.add_argument("--nouns", type=int, default=1000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--model", default="ViT-B-32")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)

    bank = wordnet_nouns()
    rng = np.random.default_rng(args.seed)
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, device {args.device}")
    ratios = []
    for r in range(args.rounds):
        nouns = [bank[i] for i in rng.choice(len(bank), size=args.nouns, replace=False)]
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            enc = CLIPEncoder(
                args.model, pretrained=None, device=args.device, cache_dir=False, verbose=False
            )
            enc.load_model()
            start = time.perf_counter()
            estimate = enc.estimate_noun_seconds(nouns)
            enc.encode_nouns(nouns)
            measured = time.perf_counter() - start
            whole = enc.estimate_noun_seconds(bank)
        ratios.append(estimate / measured)
        print(
            f"round {r}: {args.nouns} nouns, estimate {estimate:.1f} s, measured "
            f"{measured:.1f} s, ratio {estimate / measured:.2f}; whole bank "
            f"({len(bank)} nouns): about {format_duration(whole)}"
        )
    print(
        f"estimate / measured over {args.rounds} rounds: mean {np.mean(ratios):.2f}, "
        f"min {np.min(ratios):.2f}, max {np.max(ratios):.2f}"
    )


if __name__ == "__main__":
    main()
