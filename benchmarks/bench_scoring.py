"""GradNorm scoring + per-centre selection at ImageNet-1K scale, fast path vs reference.

Sizes (PAPER.md, ImageNet-1K row): 2,000 centres, 117,798 nouns (WordNet's noun lemmas),
d = 512, T = 0.02, top_k = 3. Inputs are random unit vectors (speed does not depend on
the values). Each implementation runs in its own child process, so that its peak memory
is measured alone: "peak extra" is the growth of the process's maximum resident set size
during the call, over what it held with the inputs loaded.

- fast: ``skgradnorm.gradnorm_scores`` (torch, float32, chunked) +
  ``select_top_k_per_center`` (one lexsort);
- reference: ``_reference`` (a loop over centres in float64 numpy, the
  paper's formula, then a loop over centres for the selection).

Reproduce (about 1 to 2 minutes on 2 cores)::

    .venv/bin/python benchmarks/bench_scoring.py

Options: ``--centers``, ``--nouns``, ``--dim``, ``--threads``. The table reports
times, the speed-up ratio measured in the same run, peak extra memory, and whether the
selections are identical.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from _common import lifetime_peak_rss, peak_rss, reset_peak_rss


def _inputs(n_centers, n_nouns, dim, seed=0):
    rng = np.random.default_rng(seed)
    E = rng.standard_normal((n_nouns, dim), dtype=np.float32)
    E /= np.linalg.norm(E, axis=1, keepdims=True)
    W = rng.standard_normal((n_centers, dim), dtype=np.float32)
    W /= np.linalg.norm(W, axis=1, keepdims=True)
    return E, W


def _worker(args):
    import torch

    torch.set_num_threads(args.threads)
    E, W = _inputs(args.centers, args.nouns, args.dim)
    if args.worker == "fast":
        from skgradnorm import gradnorm_scores
        from skgradnorm._gradnorm import select_top_k_per_center

        gradnorm_scores(E[:256], W, temperature=args.temperature)  # warm-up (thread pools)

        def run():
            scores, assign = gradnorm_scores(E, W, temperature=args.temperature)
            return select_top_k_per_center(scores, assign, args.top_k)
    else:
        sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
        from _reference import (  # the tests' plain oracle
            reference_gradnorm_scores,
            reference_select_top_k_per_center,
        )

        def run():
            scores, assign = reference_gradnorm_scores(E, W, temperature=args.temperature)
            return reference_select_top_k_per_center(scores, assign, args.top_k)

    before = reset_peak_rss()
    t0 = time.perf_counter()
    selected = run()
    seconds = time.perf_counter() - t0
    peak_extra = max(0, peak_rss() - before)
    np.save(args.out, np.sort(selected))
    print(
        json.dumps(
            {
                "seconds": seconds,
                "peak_extra_bytes": peak_extra,
                "peak": lifetime_peak_rss(),
                "n_selected": int(selected.size),
            }
        )
    )


def measure(args):
    """Run both implementations, each in its own process; their results and selections."""
    results, selections = {}, {}
    with tempfile.TemporaryDirectory() as tmp:
        for name in ("fast", "reference"):
            out = os.path.join(tmp, f"{name}.npy")
            cmd = [sys.executable, __file__, "--worker", name, "--out", out] + [
                f"--centers={args.centers}",
                f"--nouns={args.nouns}",
                f"--dim={args.dim}",
                f"--temperature={args.temperature}",
                f"--top-k={args.top_k}",
                f"--threads={args.threads}",
            ]
            proc = subprocess.run(cmd, check=True, capture_output=True, text=True)
            results[name] = json.loads(proc.stdout.strip().splitlines()[-1])
            selections[name] = np.load(out)
    return results, selections


#: What ``benchmarks/run.py`` runs: the ImageNet-1K sizes, or a tenth of the nouns.
SUITE = {"small": dict(nouns=11_780), "imagenet": dict(nouns=117_798)}


def run_suite(scale, threads):
    """The scoring rows of ``benchmarks/run.py``."""
    from _common import Row, mib

    args = argparse.Namespace(
        centers=2000, dim=512, temperature=0.02, top_k=3, threads=threads, **SUITE[scale]
    )
    results, selections = measure(args)
    same = np.array_equal(selections["fast"], selections["reference"])
    size = f"{args.centers:,} centres x {args.nouns:,} nouns x d={args.dim}, top_k={args.top_k}"
    fast = results["fast"]["seconds"]
    rows = []
    for name, impl in (("fast", "package"), ("reference", "per-centre float64 numpy loop")):
        r = results[name]
        if name == "fast":
            note = f"{r['n_selected']:,} nouns; " + (
                "identical selections" if same else "selections differ"
            )
        else:
            note = "reference"
        rows.append(
            Row(
                "GradNorm scoring + selection",
                size,
                impl,
                r["seconds"],
                mib(r["peak"]),
                mib(r["peak_extra_bytes"]),
                None if name == "fast" else r["seconds"] / fast,
                note,
            )
        )
    return rows


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--centers", type=int, default=2000)
    parser.add_argument("--nouns", type=int, default=117_798)
    parser.add_argument("--dim", type=int, default=512)
    parser.add_argument("--temperature", type=float, default=0.02)
    parser.add_argument("--top-k", dest="top_k", type=int, default=3)
    parser.add_argument("--threads", type=int, default=os.cpu_count())
    parser.add_argument("--worker", choices=["fast", "reference"], help=argparse.SUPPRESS)
    parser.add_argument("--out", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        return _worker(args)

    results, selections = measure(args)
    identical = np.array_equal(selections["fast"], selections["reference"])
    fast, ref = results["fast"], results["reference"]
    print(
        f"GradNorm scoring + selection: {args.centers} centres x {args.nouns} nouns "
        f"x d={args.dim}, "
        f"T={args.temperature}, top_k={args.top_k}, {args.threads} threads"
    )
    print(f"{'implementation':<12} {'time (s)':>9} {'peak extra (MiB)':>17} {'selected':>9}")
    for name, r in results.items():
        print(
            f"{name:<12} {r['seconds']:>9.2f} {r['peak_extra_bytes'] / 2**20:>17.0f} "
            f"{r['n_selected']:>9}"
        )
    print(f"speed-up (reference / fast): {ref['seconds'] / fast['seconds']:.1f}x")
    print(f"identical selections: {identical}")
    if not identical:
        diff = np.setxor1d(selections["fast"], selections["reference"])
        print(f"  {diff.size} nouns differ (near-ties at float32 precision)")


if __name__ == "__main__":
    main()
