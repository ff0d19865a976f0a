"""Results without labels: consensus selection, label-free tuning and ``n_clusters="auto"``.

Over many planted worlds (both families of :mod:`skgradnorm.datasets`, with 5 to 50
classes, 1 to 4 visual modes per class, varying noise, bank size and share of positive
nouns), this prints:

1. consensus: mean and std over seeds of the ACC of ``LanguageAssistedClusterer`` with
   ``GradNormNounSelector(n_rounds=R)`` for R = 1, 3, 5, 9, and the time ratio to R = 1
   (of the selector's fit, and of the whole pipeline);
2. label-free search over a grid of (T, tau, C): the true ACC of the setting each
   label-free criterion picks, of the oracle (best true ACC in the grid) and of the
   package defaults;
3. K: how often ``n_clusters="auto"`` finds the number of classes, and the mean |error|,
   for each K criterion and tie rule.

Run (about 30 minutes on one CPU core; ``--quick`` for a 3-world smoke run)::

    python benchmarks/bench_label_free.py [--worlds 20] [--seeds 10] [--quick]

On the evidence families of ``bench_evidence.py`` (planted, calibrated, real; the real
family needs ``benchmarks/real_worlds.py build`` first, and
``SKGRADNORM_EVIDENCE_BANK=common`` while the paper's bank is not embedded yet), the parts
of ``_label_free_families.py``, one JSON record per world and seed (resumable)::

    # K: every criterion on the images u and on [u ; t], exact share and mean |error|
    python benchmarks/bench_label_free.py --parts k --family calibrated --seeds 3
    # language vs the images alone: ACC of tune's pick with and without the image-only
    # candidate, per decision criterion
    python benchmarks/bench_label_free.py --parts language --family real --seeds 3
    # speed, side by side in one run: n_clusters="auto" / one fit with K given, and the
    # label-free grid (GridSearchCV + label_free_scorer, and tune) / (settings x one fit)
    python benchmarks/bench_label_free.py --parts speed --family real --quick
"""

from __future__ import annotations

import argparse
import itertools
import os
import sys
import time
from datetime import datetime, timezone
from pathlib import Path

import numpy as np

from skgradnorm import GradNormNounSelector, LanguageAssistedClusterer
from skgradnorm._cluster._label_free import (
    cosine_silhouette,
    generalization_score,
    refit_labels,
    stability_score,
)
from skgradnorm.datasets import make_long_tail_world, make_planted_world
from skgradnorm.metrics import clustering_accuracy_score

#: (n_rounds, min_votes): None is a strict majority; (R, 2) keeps the nouns of >= 2 rounds.
ROUNDS = ((1, None), (3, None), (5, None), (9, None), (5, 2), (9, 2))
CRITERIA = ("generalization", "silhouette", "silhouette_image", "stability")
GRID = {"temperature": (0.02, 0.05, 0.1), "retrieval_temperature": (0.005, 0.01, 0.03)}
CENTERS_PER_CLASS = (2, 4)
FINAL_N_INIT = 20  # part 1: the clusterer's default, so the final k-means adds little noise
SEARCH_N_INIT = 10  # part 2
K_N_INIT = 5  # part 3


def make_worlds(n_worlds, seed=0):
    """``n_worlds`` worlds, alternating the two families, with drawn parameters."""
    rng = np.random.RandomState(seed)
    worlds = []
    for i in range(n_worlds):
        k = int(rng.choice([5, 8, 12, 20, 30, 50], p=[0.2, 0.2, 0.2, 0.2, 0.1, 0.1]))
        n = max(500, 20 * k)
        bank = int(rng.choice([500, 1000, 2000]))
        if i % 2 == 0:
            modes = int(rng.randint(1, 5))
            w = make_planted_world(
                n_samples=n,
                n_classes=k,
                n_subclasses=modes,
                n_positive_nouns=int(rng.choice([5, 10, 20])),
                n_random_nouns=bank,
                image_noise=float(rng.uniform(0.6, 1.0)),
                random_state=1000 + i,
            )
        else:
            w = make_long_tail_world(
                n_samples=n,
                n_classes=k,
                max_modes=int(rng.randint(1, 5)),
                n_positive_nouns=int(rng.choice([4, 8, 12])),
                confusion=float(rng.uniform(0.1, 0.5)),
                n_random_nouns=bank,
                image_noise=float(rng.uniform(0.7, 1.1)),
                random_state=1000 + i,
            )
        w.n_classes = k
        worlds.append(w)
    return worlds


def pipeline(w, *, n_centers, seed, n_rounds=1, min_votes=None, n_init=FINAL_N_INIT, **sel):
    selector = GradNormNounSelector(
        w.noun_embeddings,
        n_centers=n_centers,
        top_k=3,
        n_rounds=n_rounds,
        min_votes=min_votes,
        random_state=seed,
        **sel,
    )
    return LanguageAssistedClusterer(
        w.n_classes, selector=selector, n_init=n_init, random_state=seed
    )


def bench_consensus(worlds, seeds):
    acc = {r: np.zeros((len(worlds), seeds)) for r in ROUNDS}
    t_sel = {r: 0.0 for r in ROUNDS}
    t_all = {r: 0.0 for r in ROUNDS}
    for i, w in enumerate(worlds):
        for r, s in itertools.product(ROUNDS, range(seeds)):
            model = pipeline(w, n_centers=4 * w.n_classes, seed=s, n_rounds=r[0], min_votes=r[1])
            t0 = time.perf_counter()
            model.fit(w.data)
            t_all[r] += time.perf_counter() - t0
            if s == 0:  # the selector alone, timed apart (once per world)
                t0 = time.perf_counter()
                model.selector_.fit(w.data)
                t_sel[r] += time.perf_counter() - t0
            acc[r][i, s] = clustering_accuracy_score(w.target, model.labels_)
        print(
            f"  world {i}: "
            + " ".join(f"R={r}: {acc[r][i].mean():.3f}+-{acc[r][i].std():.3f}" for r in ROUNDS),
            flush=True,
        )
    print("\n== 1. Consensus selection (ACC over seeds, per world, then averaged) ==")
    print(
        "   R | min_votes | mean ACC | mean std over seeds | std / std(R=1) | time sel x "
        "| time all x"
    )
    one = ROUNDS[0]
    base_std = acc[one].std(axis=1).mean()
    for r in ROUNDS:
        std = acc[r].std(axis=1).mean()
        votes = "majority" if r[1] is None else str(r[1])
        print(
            f"{r[0]:4d} | {votes:9s} | {acc[r].mean():8.3f} | {std:19.3f} | "
            f"{std / base_std:14.2f} | {t_sel[r] / t_sel[one]:10.2f} | "
            f"{t_all[r] / t_all[one]:10.2f}"
        )
    return acc


def criteria(model, X, seed):
    labels = model.labels_
    u = X
    z = model._joint_embedding(X)
    others = refit_labels(model, X, [seed + 7919])
    return {
        "generalization": generalization_score(u, labels),
        "silhouette": cosine_silhouette(z, labels),
        "silhouette_image": cosine_silhouette(u, labels),
        "stability": stability_score(labels, others),
    }


def bench_search(worlds, seed=0):
    rows = []
    for w in worlds:
        settings = list(
            itertools.product(GRID["temperature"], GRID["retrieval_temperature"], CENTERS_PER_CLASS)
        )
        accs, crits = [], {c: [] for c in CRITERIA}
        for t, tau, cpk in settings:
            model = pipeline(
                w,
                n_centers=cpk * w.n_classes,
                seed=seed,
                n_init=SEARCH_N_INIT,
                temperature=t,
                retrieval_temperature=tau,
            ).fit(w.data)
            accs.append(clustering_accuracy_score(w.target, model.labels_))
            for c, v in criteria(model, w.data, seed).items():
                crits[c].append(v)
        default = LanguageAssistedClusterer(
            w.n_classes,
            selector=GradNormNounSelector(w.noun_embeddings, random_state=seed),
            n_init=SEARCH_N_INIT,
            random_state=seed,
        ).fit(w.data)
        row = {
            "oracle": max(accs),
            "defaults": clustering_accuracy_score(w.target, default.labels_),
        }
        for c in CRITERIA:
            row[c] = accs[int(np.argmax(crits[c]))]
        rows.append(row)
        print("  " + " ".join(f"{k}={v:.3f}" for k, v in row.items()), flush=True)
    print("\n== 2. Label-free search over T x tau x C (18 settings; true ACC of the pick) ==")
    oracle = np.array([r["oracle"] for r in rows])
    print("criterion         | mean ACC | pick/oracle | beats defaults (share of worlds)")
    for name in (*CRITERIA, "defaults", "oracle"):
        a = np.array([r[name] for r in rows])
        d = np.array([r["defaults"] for r in rows])
        print(f"{name:17s} | {a.mean():8.3f} | {np.mean(a / oracle):11.3f} | {np.mean(a > d):.2f}")
    return rows


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--worlds", type=int, default=20)
    parser.add_argument("--seeds", type=int, default=None, help="seeds per world")
    parser.add_argument("--quick", action="store_true", help="fewer worlds and seeds")
    parser.add_argument(
        "--parts", default="12", help="1, 2 (generated worlds), or k, language, speed"
    )
    parser.add_argument("--family", choices=("planted", "calibrated", "real"), default=None)
    parser.add_argument("--out", type=Path, default=None, help="folder of the JSON records")
    parser.add_argument(
        "--no-reference-k",
        action="store_true",
        help="part speed: do not time the K search as it was before (100-300 fits)",
    )
    args = parser.parse_args(argv)
    # One thread: on a shared 2-core machine, two spinning torch/OpenMP threads per process
    # made every small fit about 10x slower (measured); the time ratios need one thread.
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from _common import limit_threads

    limit_threads(1)
    t0 = time.perf_counter()
    print(f"started {datetime.now(timezone.utc):%Y-%m-%d %H:%M} UTC, load {os.getloadavg()}")
    if args.parts in ("k", "language", "speed"):
        import _label_free_families
        import bench_evidence
        from _label_free_families import run_part

        _label_free_families.REFERENCE_K_SEARCH = not args.no_reference_k

        if args.family is None:
            parser.error(f"--parts {args.parts} needs --family")
        default_seeds = 1 if args.parts == "speed" else (2 if args.quick else 5)
        seeds = range(args.seeds or default_seeds)
        out = args.out or bench_evidence._default_out()
        run_part(args.parts, args.family, seeds, args.quick, out)
    else:
        n_worlds, seeds = (3, 3) if args.quick else (args.worlds, args.seeds or 10)
        worlds = make_worlds(n_worlds)
        print(
            f"{n_worlds} worlds: "
            + "; ".join(w.DESCR.split(":")[0] + f" K={w.n_classes}" for w in worlds)
        )
        if "1" in args.parts:
            bench_consensus(worlds, seeds)
        if "2" in args.parts:
            bench_search(worlds)
    print(f"\ntotal {time.perf_counter() - t0:.0f} s, load at the end {os.getloadavg()}")


if __name__ == "__main__":
    main()
