"""The trained heads beyond the evidence families' sizes: neighbours and the safeguard.

``MutualDistillationClusterer`` (TAC's heads, warm-started) on calibrated worlds of tens of
thousands of images, where TAC's heads are meant to be used, and on the evidence families
at their own sizes. Two parts, one JSON line per fit on stdout:

* ``neighbors``: the trained heads' ACC (``fallback=None``) with
  ``neighbor_algorithm="exact"`` and ``"hnsw"``, and with the default safeguard, on
  ``make_calibrated_world(n_samples=N, n_classes=K)`` for K = 20, 50 and seeds 0, 1;
* ``safeguard``: one fit per world and seed with ``fallback=None``, and for both label
  vectors (the trained heads', ``init_labels_``) the ACC, the safeguard's silhouettes
  (``_warm_start.choose``) and the 10- and 50-NN label agreement on ``u``, so that any
  fallback rule can be replayed on the same fits (``--summary`` prints the table of
  ``benchmarks/RESULTS.md``, "The heads at 20,000 and 50,000 images"). ``--family`` is one of
  ``bench_evidence.py``'s families (5 seeds) or ``cal-N``: its five calibrated settings at
  N images (3 seeds up to 20,000, 2 above).

Reproduce (2 cores; a 50,000-image fit takes about 25 s)::

    HF_HUB_OFFLINE=1 .venv/bin/python benchmarks/bench_heads_scale.py neighbors --n 50000
    # above neighbor_algorithm="auto"'s threshold (about 3 min a fit)
    .venv/bin/python benchmarks/bench_heads_scale.py neighbors --n 250000 --k 50 --trained-only
    export HF_HUB_OFFLINE=1 SKGRADNORM_EVIDENCE_BANK=common
    for f in planted calibrated real cal-20000 cal-50000; do
        .venv/bin/python benchmarks/bench_heads_scale.py safeguard --family $f
    done > safeguard.jsonl
    .venv/bin/python benchmarks/bench_heads_scale.py --summary safeguard.jsonl
"""

from __future__ import annotations

import argparse
import collections
import json
import os
import sys
import time
from pathlib import Path

import numpy as np

os.environ.setdefault("HF_HUB_OFFLINE", "1")
sys.path.insert(0, str(Path(__file__).resolve().parent))

#: The calibrated settings of ``bench_evidence.calibrated_worlds``, at any size.
CALIBRATED = {
    "default": {},
    "easier": {"image_noise": 1.7},
    "harder": {"image_noise": 2.1},
    "weakly aligned": {"alignment": 0.6},
    "20 cl. imb 3": {"n_classes": 20, "imbalance": 3.0},
}


def _heads(world, seed, k, **params):
    from skgradnorm import GradNormNounSelector, MutualDistillationClusterer

    selector = GradNormNounSelector(world.noun_embeddings, random_state=seed)
    return MutualDistillationClusterer(k, selector=selector, random_state=seed, **params)


def neighbors_part(n, ks=(20, 50), seeds=(0, 1), fallbacks=(None, "silhouette")):
    from skgradnorm.datasets import make_calibrated_world
    from skgradnorm.metrics import clustering_accuracy_score

    for k in ks:
        for seed in seeds:
            world = make_calibrated_world(n_samples=n, n_classes=k, random_state=seed)
            for algorithm in ("exact", "hnsw"):
                for fallback in fallbacks:
                    t0 = time.perf_counter()
                    model = _heads(
                        world, seed, k, neighbor_algorithm=algorithm, fallback=fallback
                    ).fit(world.data)
                    acc = clustering_accuracy_score(world.target, model.labels_)
                    init = clustering_accuracy_score(world.target, model.init_labels_)
                    print(json.dumps({
                        "n": n, "k": k, "seed": seed, "algorithm": algorithm,
                        "fallback": fallback, "acc": acc, "init_acc": init,
                        "chosen": model.chosen_, "seconds": time.perf_counter() - t0,
                    }), flush=True)  # fmt: skip


def _agreement(neighbors, labels):
    return float((labels[neighbors] == labels[:, None]).mean())


def _safeguard_record(family, name, seed, world):
    from skgradnorm._cluster._neighbors import nearest_neighbors
    from skgradnorm._warm_start import choose
    from skgradnorm.metrics import clustering_accuracy_score

    k = int(np.unique(world.target).size)
    model = _heads(world, seed, k, fallback=None).fit(world.data)
    U = (world.data / np.linalg.norm(world.data, axis=1, keepdims=True)).astype(np.float32)
    _, silhouettes = choose(U, model.labels_, model.init_labels_)
    neighbors = nearest_neighbors(U, 50)
    out = {
        "family": family, "world": name, "seed": seed, "n": len(U),
        "heads": clustering_accuracy_score(world.target, model.labels_),
        "init": clustering_accuracy_score(world.target, model.init_labels_),
        "sil_h": silhouettes["heads"], "sil_t": silhouettes["training-free"],
    }  # fmt: skip
    for kk in (10, 50):
        out[f"agr{kk}_h"] = _agreement(neighbors[:, :kk], model.labels_)
        out[f"agr{kk}_t"] = _agreement(neighbors[:, :kk], model.init_labels_)
    print(json.dumps(out), flush=True)


def safeguard_part(family):
    if family.startswith("cal-"):
        from skgradnorm.datasets import make_calibrated_world

        n = int(family.split("-")[1])
        for name, params in CALIBRATED.items():
            for seed in (0, 1, 2) if n <= 20_000 else (0, 1):
                world = make_calibrated_world(n_samples=n, random_state=seed, **params)
                _safeguard_record(family, name, seed, world)
        return
    import bench_evidence

    for spec in bench_evidence.FAMILIES[family](False):
        fixed = None
        for seed in range(5):
            if spec.fixed:
                fixed = fixed if fixed is not None else spec.make(0)
            _safeguard_record(family, spec.name, seed, fixed if spec.fixed else spec.make(seed))


def _rules():
    yield "always the heads", lambda r: r["heads"]
    for margin in (0.0, 0.02, 0.04, 0.1):
        yield (
            f"silhouette, margin {margin:g}",
            lambda r, m=margin: (
                r["init"] if r["sil_t"] - r["sil_h"] > m * abs(r["sil_h"]) else r["heads"]
            ),
        )
    for kk in (10, 50):
        yield (
            f"{kk}-NN agreement on u",
            lambda r, kk=kk: r["init"] if r[f"agr{kk}_t"] > r[f"agr{kk}_h"] else r["heads"],
        )
    yield "the better of the two (oracle)", lambda r: max(r["init"], r["heads"])


def summary(path):
    """ACC minus the training-free clusters per rule and family: mean over fits (worst
    world mean; fits that fell back)."""
    records = [json.loads(line) for line in Path(path).read_text().splitlines() if line]
    families = list(dict.fromkeys(r["family"] for r in records))
    print("| rule | " + " | ".join(families) + " |")
    print("|---" * (len(families) + 1) + "|")
    for name, pick in _rules():
        cells = []
        for family in families:
            rows = [r for r in records if r["family"] == family]
            gains = [pick(r) - r["init"] for r in rows]
            fell_back = sum(pick(r) == r["init"] != r["heads"] for r in rows)
            by_world = collections.defaultdict(list)
            for r, g in zip(rows, gains, strict=True):
                by_world[r["world"]].append(g)
            worst = min(np.mean(v) for v in by_world.values())
            cells.append(f"{np.mean(gains):+.4f} ({worst:+.3f}; {fell_back}/{len(rows)})")
        print(f"| {name} | " + " | ".join(cells) + " |")


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("part", nargs="?", choices=["neighbors", "safeguard"])
    parser.add_argument("--n", type=int, default=50_000, help="images (part neighbors)")
    parser.add_argument("--k", type=int, nargs="+", default=[20, 50], help="part neighbors")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1], help="part neighbors")
    parser.add_argument(
        "--trained-only", action="store_true", help="part neighbors: fallback=None fits only"
    )
    parser.add_argument("--family", default="cal-20000", help="part safeguard")
    parser.add_argument("--summary", help="a file of safeguard records: print the table")
    args = parser.parse_args(argv)
    if args.summary:
        summary(args.summary)
    elif args.part == "neighbors":
        fallbacks = (None,) if args.trained_only else (None, "silhouette")
        neighbors_part(args.n, args.k, args.seeds, fallbacks)
    elif args.part == "safeguard":
        safeguard_part(args.family)
    else:
        parser.error("give a part (neighbors, safeguard) or --summary FILE")


if __name__ == "__main__":
    main()
